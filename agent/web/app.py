"""The web pages the daemon serves at ``/``: routing, the guard on every change, rendering.

Plumbing-free: the daemon's HTTP server hands over a ``Request`` and sends back the
``Response``. The daemon passes in what the pages read and change (its operations, its
settings and pipeline, its health), so this package never imports the daemon. Every
change goes through ``Operations``, which writes its audit row, recorded as coming
``via`` the web.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, quote

from agent.clock import Clock, SystemClock
from agent.durations import parse_duration
from agent.redact import redact
from agent.web import views
from agent.web.guard import SESSION_COOKIE, SESSION_TTL, Guard, Headers, same_origin

if TYPE_CHECKING:
    from jinja2 import Environment

    from agent.config import Settings
    from agent.daemon.operations import Operations
    from agent.wiring import Pipeline

_ALERT = re.compile(r"^/alerts/([0-9a-f]{1,64})$")
_ACK = re.compile(r"^/alerts/([0-9a-f]{1,64})/ack$")
_EXPIRE = re.compile(r"^/silences/([A-Za-z0-9_-]{1,64})/expire$")
#: what a redirect after a change says on the next page (fixed texts: no spoofing).
NOTES = {
    "acked": "Alert acknowledged.",
    "silenced": "Silence created.",
    "expired": "Silence expired.",
    "login": "Logged in: you can acknowledge and silence.",
    "logout": "Logged out.",
}
#: auto-refresh of the alerts and health pages (seconds).
REFRESH = 15
#: every page: nothing but our own stylesheet, no scripts, never framed (the ack button
#: must not be clicked through another site's page), forms post only here.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class Backend(Protocol):
    """What the pages ask of the daemon."""

    pipeline: Pipeline

    @property
    def settings(self) -> Settings: ...

    def operations(self) -> Operations: ...

    def healthy(self) -> bool: ...

    def ready(self) -> bool: ...


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    #: ``email.message.Message`` from ``http.server``, or a dict: only ``get`` is used.
    headers: Headers
    body: bytes = b""
    client: str = ""

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def cookie(self, name: str) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie") or "")
        except CookieError:  # a malformed Cookie header is no session
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WebUI:
    def __init__(
        self,
        backend: Backend,
        token: str | None,
        refused: Mapping[type[Exception], int],
        clock: Clock | None = None,
    ) -> None:
        """``refused``: the errors ``Operations`` raises for requests it turns down (their
        message is safe to show), with the HTTP status of each. ``clock`` times sessions
        and forms (real time by default: a demo's fast clock must not end a session in
        minutes)."""
        self.backend = backend
        self.guard = Guard(token, clock or SystemClock())
        self._refused = dict(refused)
        self._env: Environment | None = None

    @staticmethod
    def serves(path: str) -> bool:
        return path == "/" or path.split("/")[1] in (
            "alerts", "silences", "maintenance", "audit", "health", "login", "logout", "static",
        )  # fmt: skip

    # -- entry ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            if request.method in ("GET", "HEAD"):
                return self._read(request)
            if request.method == "POST":
                return self._change(request)
            raise Refused(405, "method not allowed")
        except Refused as error:
            return self._error(request, error.status, error.message)
        except tuple(self._refused) as error:
            return self._error(request, self._refused[type(error)], redact(str(error)))

    def _read(self, request: Request) -> Response:
        path, query = request.path, request.query
        if path == "/static/style.css":
            css = resources.files("agent.web").joinpath("static/style.css").read_bytes()
            return Response(200, css, "text/css; charset=utf-8")
        ops = self.backend.operations()
        settings = self.backend.settings
        if path == "/":
            view = views.alerts_view(ops, settings, query)
            return self._page("alerts.html", request, refresh=REFRESH, **view)
        if match := _ALERT.match(path):
            found = views.alert_view(ops, settings, match.group(1))
            if found is None:
                raise Refused(404, f"no alert with fingerprint {match.group(1)}")
            return self._page("alert.html", request, **found)
        if path == "/silences":
            return self._page("silences.html", request, **views.silences_view(ops, query))
        if path == "/maintenance":
            view = views.maintenance_view(ops, settings)
            return self._page("maintenance.html", request, **view)
        if path == "/audit":
            return self._page("audit.html", request, **views.audit_view(ops, query))
        if path == "/health":
            backend = self.backend
            view = views.health_view(backend.pipeline, backend.healthy(), backend.ready())
            return self._page("health.html", request, refresh=REFRESH, **view)
        if path == "/login":
            return self._page("login.html", request, next=_next(query, "/"))
        raise Refused(404, "no such page")

    # -- changes ----------------------------------------------------------------------

    def _change(self, request: Request) -> Response:
        if not same_origin(request.headers):
            raise Refused(403, "refused: the form was not sent from this site (Origin)")
        form = request.form()
        if not self.guard.form_ok(_field(form, "csrf")):
            raise Refused(403, "refused: the form has expired or is not ours; reload the page")
        path = request.path
        back = _next(form, "/")
        if path == "/login":
            session = self.guard.session_for(_field(form, "token"))
            if session is None:
                raise Refused(401, "wrong API token")
            ttl = int(SESSION_TTL.total_seconds())
            cookie = f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}"
            return _redirect(back, "login", {"Set-Cookie": cookie})
        if path == "/logout":
            cookie = f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
            return _redirect(back, "logout", {"Set-Cookie": cookie})
        if not self.signed_in(request):
            raise Refused(401, "log in with the API token to change anything")
        ops = dataclasses.replace(self.backend.operations(), via="web")
        actor = _field(form, "by")[:100] or f"web@{request.client}"
        comment = _field(form, "comment")[:500]
        if match := _ACK.match(path):
            ops.ack(match.group(1), actor=actor, comment=comment)
            return _redirect(back, "acked")
        if path == "/silences":
            given = re.split(r"[\n,]", _field(form, "matchers"))
            matchers = [m.strip() for m in given if m.strip()]
            try:
                duration = parse_duration(_field(form, "duration") or "2h")
            except ValueError as error:
                raise Refused(400, redact(str(error))) from None
            ops.add_silence(matchers, actor=actor, duration=duration, comment=comment)
            return _redirect(back, "silenced")
        if match := _EXPIRE.match(path):
            ops.expire_silence(match.group(1), actor=actor)
            return _redirect(back, "expired")
        raise Refused(404, "no such action")

    def signed_in(self, request: Request) -> bool:
        return self.guard.session_ok(request.cookie(SESSION_COOKIE)) or self.guard.bearer_ok(
            request.headers.get("Authorization")
        )

    # -- rendering --------------------------------------------------------------------

    def _error(self, request: Request, status: int, message: str) -> Response:
        return self._page("error.html", request, status, message=message, code=status)

    def _environment(self) -> Environment:
        if self._env is None:
            from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

            env = Environment(
                loader=PackageLoader("agent.web"),
                autoescape=select_autoescape(default=True),
                undefined=StrictUndefined,
            )
            env.filters.update(when=_when, ago=_ago, number=views.number)
            env.globals.update(quote=quote)
            self._env = env
        return self._env

    def _page(self, template: str, request: Request, status: int = 200, **values: Any) -> Response:
        note = NOTES.get((request.query.get("note") or [""])[-1])
        values.setdefault("refresh", None)
        page = (
            self._environment()
            .get_template(template)
            .render(
                request=request,
                now=self.backend.operations().clock.now(),
                csrf=self.guard.form_token(),
                signed_in=self.signed_in(request),
                note=note,
                **values,
            )
        )
        return Response(status, page.encode(), headers=dict(PAGE_HEADERS))


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value))


def _ago(value: Any, now: datetime) -> str:
    at = _parse(value)
    if at is None:
        return ""
    seconds = int((now - at).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _when(value: Any) -> str:
    at = _parse(value)
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _field(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[-1].strip()


def _next(form: Mapping[str, list[str]], default: str) -> str:
    """Where to go after a change: a path on this site only."""
    target = _field(form, "next")
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else default


def _redirect(target: str, note: str, headers: dict[str, str] | None = None) -> Response:
    location = f"{target}{'&' if '?' in target else '?'}note={note}"
    return Response(303, b"", headers={"Location": location, **(headers or {})})
