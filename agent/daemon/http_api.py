"""The daemon's HTTP endpoint: health, readiness, Prometheus metrics and a small JSON API.

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog

from agent.daemon.metrics import CONTENT_TYPE_LATEST
from agent.redact import redact

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024
_SILENCE = re.compile(r"^/api/v1/silences/([A-Za-z0-9_-]{1,64})$")
_ACK = re.compile(r"^/api/v1/alerts/([0-9a-f]{1,64})/ack$")
_SAMPLES = re.compile(r"^/api/v1/alerts/([0-9a-f]{1,64})/samples$")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    """What the endpoint asks of the daemon."""

    def healthy(self) -> bool: ...

    def ready(self) -> bool: ...

    def metrics_text(self) -> bytes: ...

    def alerts(self, *, include_inactive: bool) -> list[dict[str, Any]]: ...

    def samples(self, fingerprint: str) -> list[dict[str, Any]]: ...

    def silences(self, *, include_expired: bool) -> list[dict[str, Any]]: ...

    def audit(self, query: dict[str, list[str]]) -> list[dict[str, Any]]: ...

    def add_silence(self, body: dict[str, Any], actor: str) -> dict[str, Any]: ...

    def expire_silence(self, silence_id: str, actor: str) -> bool: ...

    def ack(self, fingerprint: str, by: str, comment: str) -> list[str]: ...


class ApiServer:
    def __init__(self, backend: Backend, host: str, port: int, token: str | None) -> None:
        self.backend = backend
        self.token = token
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
                    self._json(200, {"alerts": backend.alerts(include_inactive=flag)})
                elif path == "/api/v1/audit":
                    self._json(200, {"actions": backend.audit(query)})
                elif path == "/api/v1/silences":
                    self._json(200, {"silences": backend.silences(include_expired=flag)})
                elif match := _SAMPLES.match(path):
                    self._json(200, {"samples": backend.samples(match.group(1))})
                else:
                    raise ApiError(404, "not found")
                return
            if method == "POST" and path == "/api/v1/silences":
                self._require_token()
                body = self._body()
                self._json(201, backend.add_silence(body, self._actor(body)))
                return
            if method == "DELETE" and (match := _SILENCE.match(path)):
                self._require_token()
                if not backend.expire_silence(match.group(1), self._actor({})):
                    raise ApiError(404, "no such active silence")
                self._json(200, {"expired": match.group(1)})
                return
            if method == "POST" and (match := _ACK.match(path)):
                self._require_token()
                body = self._body()
                by = self._actor(body)
                channels = backend.ack(match.group(1), by, str(body.get("comment", ""))[:500])
                self._json(200, {"acknowledged": match.group(1), "by": by, "channels": channels})
                return
            raise ApiError(404 if method in ("POST", "DELETE") else 405, "not found")
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
