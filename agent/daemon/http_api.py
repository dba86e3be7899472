"""The daemon's HTTP endpoint: health, readiness, Prometheus metrics, a small JSON API and
the web pages (``agent.web``, at ``/``).

stdlib ``ThreadingHTTPServer`` in a thread: a handful of endpoints do not justify a web
framework. Reads are open (like ``/metrics``); calls that change something need
``Authorization: Bearer <api_token>`` when a token is configured, compared in constant
time. Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog

from agent.daemon.metrics import CONTENT_TYPE_LATEST
from agent.daemon.operations import Conflict, Invalid, NotFound, OperationError, Operations
from agent.durations import parse_duration
from agent.notify.silence import Silence
from agent.redact import redact
from agent.remediate.storage import AuditFilter
from agent.web import Backend as WebBackend
from agent.web import Request as WebRequest
from agent.web import WebUI

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024
_SILENCE = re.compile(r"^/api/v1/silences/([A-Za-z0-9_-]{1,64})$")
_ACK = re.compile(r"^/api/v1/alerts/([0-9a-f]{1,64})/ack$")
_SAMPLES = re.compile(r"^/api/v1/alerts/([0-9a-f]{1,64})/samples$")
_STATUS: dict[type[Exception], int] = {Invalid: 400, NotFound: 404, Conflict: 409}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(WebBackend, Protocol):
    """What the endpoint asks of the daemon (the web pages' needs included)."""

    def metrics_text(self) -> bytes: ...


class ApiServer:
    def __init__(self, backend: Backend, host: str, port: int, token: str | None) -> None:
        self.backend = backend
        self.token = token
        self.web = WebUI(backend, token, refused=_STATUS)
        self._server = _Server((host, port), _Handler)
        self._server.api = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> ApiServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="stackwatch-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def authorised(self, header: str | None) -> bool:
        if self.token is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: ApiServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    #: an idle kept-alive connection (a browser tab) is closed after this many seconds,
    #: ending its thread and so its state-store connection
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:  # access logs: debug only
        log.debug("http_request", line=redact(format % args))

    # -- plumbing ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        body = (json.dumps(payload, sort_keys=True) + "\n").encode()
        self._send(status, body, "application/json", extra or {})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "request body too large")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "request body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def _web(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "request body too large")
        body = self.rfile.read(length) if length else b""
        request = WebRequest(method, path, query, self.headers, body, self.client_address[0])
        page = self.server.api.web.handle(request)
        self._send(page.status, page.body, page.content_type, page.headers)

    def _require_token(self) -> None:
        if not self.server.api.authorised(self.headers.get("Authorization")):
            raise ApiError(401, "missing or wrong bearer token")

    def _actor(self, body: dict[str, Any]) -> str:
        given = body.get("created_by") or body.get("by")
        return str(given)[:100] if given else f"api@{self.client_address[0]}"

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        backend = api.backend
        parts = urlsplit(self.path)
        path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query)
        flag = query.get("all", ["0"])[0].lower() in ("1", "true", "yes")
        try:
            ops = backend.operations()
            if method in ("GET", "HEAD"):
                if path == "/healthz":
                    ok = backend.healthy()
                    self._json(200 if ok else 503, {"status": "ok" if ok else "unhealthy"})
                elif path == "/readyz":
                    ok = backend.ready()
                    self._json(200 if ok else 503, {"status": "ready" if ok else "starting"})
                elif path == "/metrics":
                    self._send(200, backend.metrics_text(), CONTENT_TYPE_LATEST, {})
                elif path == "/api/v1/alerts":
                    self._json(200, {"alerts": ops.alerts(include_inactive=flag)})
                elif path == "/api/v1/silences":
                    silences = ops.silences(include_expired=flag)
                    self._json(200, {"silences": [_silence_json(s) for s in silences]})
                elif match := _SAMPLES.match(path):
                    self._json(200, {"samples": ops.samples(match.group(1))})
                elif api.web.serves(path):
                    self._web(method, path, query)
                elif path == "/api/v1/audit":  # the operators' trail, remediation's actions
                    try:
                        wanted = AuditFilter.from_query(query, ops.clock.now())
                    except ValueError as error:
                        raise ApiError(400, str(error)) from None
                    actions = [record.to_json() for record in ops.remediation_actions(wanted)]
                    self._json(200, {"audit": ops.audit_trail(_limit(query)), "actions": actions})
                else:
                    raise ApiError(404, "not found")
                return
            if method == "POST" and api.web.serves(path):
                self._web(method, path, query)
                return
            if method == "POST" and path == "/api/v1/silences":
                self._require_token()
                body = self._body()
                self._json(201, _silence_json(_add_silence(ops, body, self._actor(body))))
                return
            if method == "DELETE" and (match := _SILENCE.match(path)):
                self._require_token()
                ops.expire_silence(match.group(1), actor=self._actor({}))
                self._json(200, {"expired": match.group(1)})
                return
            if method == "POST" and (match := _ACK.match(path)):
                self._require_token()
                body = self._body()
                by = self._actor(body)
                comment = str(body.get("comment", ""))[:500]
                channels = ops.ack(match.group(1), actor=by, comment=comment)
                self._json(200, {"acknowledged": match.group(1), "by": by, "channels": channels})
                return
            raise ApiError(404 if method in ("POST", "DELETE") else 405, "not found")
        except OperationError as error:
            self._json(_STATUS[type(error)], {"error": error.message})
        except ApiError as error:
            extra = {"WWW-Authenticate": 'Bearer realm="stackwatch"'} if error.status == 401 else {}
            self._json(error.status, {"error": error.message}, extra)
        except Exception as error:  # a bug must not kill the server thread; say what failed
            log.exception("http_handler_failed", path=path)
            self._json(500, {"error": redact(f"{type(error).__name__}: {error}")})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def _add_silence(ops: Operations, body: dict[str, Any], actor: str) -> Silence:
    matchers = body.get("matchers")
    if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
        raise ApiError(400, "matchers must be a list of strings such as 'alertname=X'")
    try:
        duration = parse_duration(str(body["duration"])) if "duration" in body else None
    except ValueError as error:
        raise ApiError(400, redact(str(error))) from None
    return ops.add_silence(
        matchers,
        actor=actor,
        duration=duration,
        ends_at=_when(body.get("ends_at")),
        starts_at=_when(body.get("starts_at")),
        comment=str(body.get("comment", ""))[:500],
    )


def _silence_json(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": list(silence.matchers),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"cannot read {value!r} as an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ApiError(400, "times need a timezone, e.g. 2024-06-01T12:00:00Z")
    return parsed


def _limit(query: dict[str, list[str]]) -> int:
    text = query.get("limit", ["100"])[0]
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise ApiError(400, "limit must be a whole number from 1 to 10000")
    return int(text)
