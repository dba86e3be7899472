"""One local HTTP server for both Contentstack APIs, the HTTP trigger and an OAuth token endpoint.

Request pipeline (every step recorded in ``Simulator.requests``):

1. transport faults (``timeout``, ``disconnect``, ``reset``, ``truncated``, ``http_status``,
   ``slow``, ``malformed_json``);
2. the per-organization rate limit (all APIs together; ``/token`` and the user session are
   not counted, they live on other hosts in production);
3. authentication, then the API itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from agent.clock import Clock, SystemClock
from agent.simulator import control
from agent.simulator.analytics import ENDPOINTS, Result, compute, validate
from agent.simulator.automations import AutomationsState
from agent.simulator.errors import ApiError, ErrorCode, invalid, not_found
from agent.simulator.faults import REQUEST_FAULTS, TRIGGER_FAULTS, Fault, FaultSet
from agent.simulator.jobs import Job, JobState, JobStore
from agent.simulator.ratelimit import RateLimiter
from agent.simulator.scenario import SUBDAY_DATE_FORMATS, Incident, Quirks, Scenario, User
from agent.simulator.sessions import SESSION_PATH, Sessions
from agent.simulator.traffic import TrafficModel

ANALYTICS_PREFIX = "/analytics/v2/"
AUTOMATIONS_PREFIX = "/v1/"
TRIGGER_PREFIX = "/automations-api/run/"
TOKEN_PATH = "/token"
#: What Retrieve Data answers while a job runs; the real body is unverified, only
#: "HTTP 200 without a ``data`` key" is.
DEFAULT_JOB_ACTIVE_BODY: Mapping[str, Any] = {"status": "Job active"}

_JOB_DATA = re.compile(r"^job/([^/]+)/data$")
_ROUTES: list[tuple[re.Pattern[str], frozenset[str], str]] = [
    (re.compile(r"^/v1/projects$"), frozenset({"GET"}), "list_projects"),
    (re.compile(r"^/v1/projects/([^/]+)$"), frozenset({"GET"}), "get_project"),
    (re.compile(r"^/v1/projects/([^/]+)/automations$"), frozenset({"GET"}), "list_automations"),
    (
        re.compile(r"^/v1/projects/([^/]+)/automations/([^/]+)$"),
        frozenset({"GET", "PATCH"}),
        "automation",
    ),
    (re.compile(r"^/v1/projects/([^/]+)/executions$"), frozenset({"GET"}), "list_executions"),
    (re.compile(r"^/v1/projects/([^/]+)/executions/([^/]+)$"), frozenset({"GET"}), "execution"),
    (re.compile(r"^/v1/projects/([^/]+)/audit-logs$"), frozenset({"GET"}), "audit_logs"),
]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    #: lower-case names.
    headers: dict[str, str]
    body: bytes
    #: ``time.monotonic()`` on arrival (real time, for measuring request rates).
    received_at: float
    #: the status answered; 0 when the connection was dropped without an answer.
    status: int


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    received_at: float

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: instead of a whole answer: "close" (the connection, no answer), "reset" (a TCP RST,
    #: no answer) or "truncate" (the status, the headers and half the body, then close).
    cut: str | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def dropped(cls, how: str = "close") -> _Response:
        return cls(0, cut=how)


def _unauthorized(message: str = "You're not allowed in here unless you're logged in.") -> ApiError:
    return ApiError(401, message, error_code=ErrorCode.NOT_LOGGED_IN)


def _forbidden(message: str) -> ApiError:
    return ApiError(403, message, error_code=ErrorCode.ACCESS_DENIED)


def _method_not_allowed(allowed: frozenset[str]) -> ApiError:
    return ApiError(
        405,
        "Method not allowed",
        error_code=ErrorCode.INVALID_PARAMETERS,
        headers={"Allow": ", ".join(sorted(allowed))},
    )


class Simulator:
    """The simulated Contentstack, serving on ``url`` between ``start()`` and ``stop()``."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        clock: Clock | None = None,
        authtoken: str = "sim-authtoken",
        organization_uid: str = "sim-org",
        oauth_clients: Mapping[str, str] | None = None,
        oauth_token_ttl: float = 3600.0,
        job_duration: float = 2.0,
        rate_limit: int = 10,
        page_size: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        subday_date_format: str | None = None,
        quirks: Quirks | None = None,
        max_range_days: int = 90,
        job_active_body: Mapping[str, Any] | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if subday_date_format is not None and subday_date_format not in SUBDAY_DATE_FORMATS:
            raise ValueError(f"subday_date_format must be one of {SUBDAY_DATE_FORMATS}")
        self.clock: Clock = clock or SystemClock()
        self.scenario = (scenario or Scenario()).resolve(self.clock.now())
        self.authtoken = authtoken
        self.organization_uid = organization_uid
        self.oauth_clients = dict(oauth_clients or {})
        self.oauth_token_ttl = oauth_token_ttl
        self.page_size = page_size
        self.host = host
        self.subday_date_format = subday_date_format or self.scenario.subday_date_format
        self.quirks = quirks or self.scenario.quirks
        self.job_active_body = dict(job_active_body or DEFAULT_JOB_ACTIVE_BODY)
        self.rate_limit = rate_limit
        self._port = port
        self._model = TrafficModel(self.scenario)
        self._jobs = JobStore(self.clock, job_duration, max_range_days)
        self._automations = AutomationsState(self.scenario, self.clock, organization_uid)
        self._limiter = RateLimiter(rate_limit)
        self._faults = FaultSet(self.scenario.seed)
        self._oauth_tokens: dict[str, datetime] = {}
        self.sessions = Sessions(self.scenario.users)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler)
        server.simulator = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            # A short poll keeps stop() fast (tests start and stop a server each).
            kwargs={"poll_interval": 0.01},
            name=f"contentstack-simulator:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return f"http://{self.host}:{self._port}"

    # -- scripting --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def add_incident(self, incident: Incident) -> Incident:
        """Begin an incident while the simulator runs; offsets count from its clock's now.

        Tests and rehearsals start trouble once the agent is ready instead of at a moment
        fixed before anything started. Returns the incident with absolute times.
        """
        started = incident.at(self.clock.now())
        # The automations state reads the same incident list; the traffic model is built
        # from it, so it is rebuilt (its caches are only a speed-up).
        self.scenario.incidents.append(started)
        self._model = TrafficModel(self.scenario)
        return started

    def end_incident(self, incident: Incident) -> Incident:
        """End a running incident now (what came before stays as it was); returns it ended.

        With it a test lets trouble last until the agent has seen it, then ends it, instead
        of guessing how long a busy machine needs.
        """
        incidents = self.scenario.incidents
        index = incidents.index(incident)  # ValueError if it is not this simulator's
        begin, end = incident.window()
        ended = replace(incident, end=max(begin, min(end, self.clock.now())))
        if ended.end == begin:  # not started yet: it never happens
            del incidents[index]
        else:
            incidents[index] = ended
        self._model = TrafficModel(self.scenario)
        return ended

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """Faults still active (used-up ones are gone)."""
        return self._faults.active()

    # -- pipeline ---------------------------------------------------------------------------

    def _process(self, request: _Request) -> _Response:
        if request.path.startswith(control.CONTROL_PREFIX):
            # before faults, rate limit and the request log: a rehearsal can always be stopped
            status, payload = control.handle(self, request.method, request.path, request.body)
            return _Response.json(status, payload, {})
        fault = self._faults.take(request.path, REQUEST_FAULTS, request.method)
        if fault is None:
            response = self._dispatch(request)
        elif fault.kind == "timeout":
            time.sleep(fault.delay)
            response = _Response.dropped()
        elif fault.kind == "disconnect":
            response = _Response.dropped()
        elif fault.kind == "reset":
            response = _Response.dropped("reset")
        elif fault.kind == "http_status":
            response = self._fault_status(fault, request)
        elif fault.kind == "slow":
            time.sleep(fault.delay)
            response = self._dispatch(request)
        elif fault.kind == "truncated":
            response = replace(self._dispatch(request), cut="truncate")
        else:  # malformed_json: the real answer, cut in half, as a 200
            real = self._dispatch(request)
            cut = real.body[: max(1, len(real.body) // 2)] if real.body else b'{"data": ['
            response = _Response(200, cut, {**real.headers, "Content-Type": "application/json"})
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    headers=request.headers,
                    body=request.body,
                    received_at=request.received_at,
                    status=response.status,
                )
            )
        return response

    def _rate_key(self, request: _Request) -> str:
        return (
            request.param("orgUid")
            or request.headers.get("organization_uid")
            or self.organization_uid
        )

    def _rate_headers(self, remaining: int) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(remaining)}

    def _fault_status(self, fault: Fault, request: _Request) -> _Response:
        headers = self._rate_headers(self._limiter.remaining(self._rate_key(request)))
        if fault.retry_after is not None:
            value = fault.retry_after
            headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
        error = ApiError(
            fault.status,
            f"Simulated HTTP {fault.status}",
            error_code=ErrorCode.RATE_LIMITED if fault.status == 429 else ErrorCode.UPSTREAM,
        )
        return _Response.json(fault.status, error.body(), headers)

    def _dispatch(self, request: _Request) -> _Response:
        if request.path in (TOKEN_PATH, SESSION_PATH):
            headers = self._rate_headers(self._limiter.remaining(self.organization_uid))
            handler = self._token if request.path == TOKEN_PATH else self._user_session
            try:
                return _Response.json(200, handler(request), headers)
            except ApiError as error:
                return _Response.json(error.status, error.body(), {**headers, **error.headers})
        admitted, remaining = self._limiter.acquire(self._rate_key(request))
        headers = self._rate_headers(remaining)
        if not admitted:
            refusal = ApiError(
                429,
                f"Too many requests: the limit is {self.rate_limit} requests per second.",
                error_code=ErrorCode.RATE_LIMITED,
            )
            return _Response.json(429, refusal.body(), {**headers, "Retry-After": "1"})
        try:
            path = request.path
            if path.startswith(ANALYTICS_PREFIX):
                status, payload = self._analytics(request)
            elif path.startswith(AUTOMATIONS_PREFIX):
                status, payload = 200, self._automations_api(request)
            elif path.startswith(TRIGGER_PREFIX):
                status, payload = 200, self._trigger(request)
            else:
                raise not_found("Resource")
        except ApiError as error:
            return _Response.json(error.status, error.body(), {**headers, **error.headers})
        return _Response.json(status, payload, headers)

    # -- OAuth --------------------------------------------------------------------------------

    def _token(self, request: _Request) -> dict[str, Any]:
        def oauth_error(status: int, code: str, description: str) -> ApiError:
            return ApiError(
                status, description, payload={"error": code, "error_description": description}
            )

        if request.method != "POST":
            raise _method_not_allowed(frozenset({"POST"}))
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)

        def field_(name: str) -> str | None:
            values = form.get(name)
            return values[-1] if values else None

        if field_("grant_type") != "client_credentials":
            raise oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
        client_id, secret = field_("client_id"), field_("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic ") and client_id is None:
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                client_id = None
        if client_id is None or self.oauth_clients.get(client_id) != secret:
            raise oauth_error(401, "invalid_client", "unknown client or wrong secret")
        token = f"sim-oauth-{uuid.uuid4().hex}"
        with self._lock:
            self._oauth_tokens[token] = self.clock.now() + timedelta(seconds=self.oauth_token_ttl)
        return {
            "access_token": token,
            "expires_in": int(self.oauth_token_ttl),
            "token_type": "Bearer",
            "organization_uid": self.organization_uid,
            "scope": "analytics:read",
        }

    # -- user session -----------------------------------------------------------------------

    def _user_session(self, request: _Request) -> dict[str, Any]:
        if request.method == "POST":
            answer = self.sessions.login(request.body)
            answer["user"]["org_uid"] = [self.organization_uid]
            return answer
        if request.method == "DELETE":
            return self.sessions.logout(request.headers.get("authtoken"))
        raise _method_not_allowed(frozenset({"POST", "DELETE"}))

    def _authtoken_user(self, authtoken: str) -> User | None:
        """The user a valid authtoken belongs to; raises 401 for an unknown or evicted one.

        The simulator's own ``authtoken`` stands for an organization owner's token
        obtained elsewhere (None: no scenario user behind it)."""
        if authtoken == self.authtoken:
            return None
        user = self.sessions.user_of(authtoken)
        if user is None:
            raise _unauthorized("The authtoken is not valid.")
        return user

    # -- Analytics ----------------------------------------------------------------------------

    def _analytics_auth(self, request: _Request) -> None:
        authtoken = request.headers.get("authtoken")
        if authtoken is not None:
            user = self._authtoken_user(authtoken)
            if user is not None and user.role not in ("owner", "admin"):
                raise _forbidden(
                    "Only the organization's Owner and Admin users may read analytics."
                )
            return
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized()
        with self._lock:
            expiry = self._oauth_tokens.get(token.strip())
        if expiry is None:
            raise _unauthorized("The access token is not valid.")
        if self.clock.now() >= expiry:
            raise _unauthorized("The access token has expired.")

    def _analytics(self, request: _Request) -> tuple[int, Any]:
        self._analytics_auth(request)
        org = request.param("orgUid")
        if not org:
            raise invalid("orgUid", "is required")
        if org != self.organization_uid:
            raise _forbidden("You do not have access to this organization's analytics.")
        rest = request.path[len(ANALYTICS_PREFIX) :]
        job_match = _JOB_DATA.match(rest)
        if job_match is None and rest not in ENDPOINTS:
            raise not_found("Endpoint")
        if request.method != "GET":
            raise _method_not_allowed(frozenset({"GET"}))
        if job_match is not None:
            return self._retrieve(request, job_match.group(1), org)
        analytics_request = validate(
            rest,
            request.query,
            today=self.clock.now().date(),
            api_keys=set(self._model.stacks),
            quirks=self.quirks,
        )
        never = self._faults.take(request.path, frozenset({"job_never_finishes"})) is not None
        job = self._jobs.submit(org, analytics_request, never_finishes=never)
        return 200, {"jobId": job.id, "paginated": analytics_request.paginated}

    def _retrieve(self, request: _Request, job_id: str, org: str) -> tuple[int, Any]:
        job = self._jobs.get(job_id)
        if job is None or job.org != org:
            raise not_found("Job")
        raw_page = request.param("page") or "0"
        if not raw_page.isdigit():
            raise invalid("page", "must be a non-negative integer")
        page = int(raw_page)
        failed_by_fault = self._faults.take(request.path, frozenset({"job_failed"}))
        state = self._jobs.state(job)
        if failed_by_fault is not None or state is JobState.FAILED:
            problem = "the date range is too long" if job.failed else "the job failed"
            raise ApiError(
                500, "Job Failed", error_code=ErrorCode.JOB_FAILED, errors={"job": [problem]}
            )
        if state is JobState.ACTIVE:
            return 200, dict(self.job_active_body)
        result = self._jobs.result(job, self._compute)
        rows = result.rows
        if job.request.paginated:
            data = rows[page * self.page_size : (page + 1) * self.page_size]
        else:
            data = rows if page == 0 else []
        body: dict[str, Any] = {"data": data, "meta": dict(job.request.meta), "uid": job.id}
        if job.request.paginated:
            body["totalDocs"] = len(rows)
        body.update(result.extra)
        return 200, body

    def _compute(self, job: Job) -> Result:
        return compute(
            self._model,
            job.request,
            job.now,
            subday_format=self.subday_date_format,
            quirks=self.quirks,
        )

    # -- Automations ------------------------------------------------------------------------

    def _automations_api(self, request: _Request) -> Any:
        authtoken = request.headers.get("authtoken")
        org = request.headers.get("organization_uid")
        if not authtoken or not org:
            raise _unauthorized()
        self._authtoken_user(authtoken)
        if org != self.organization_uid:
            raise _forbidden("You do not have access to this organization.")
        state = self._automations
        for pattern, methods, name in _ROUTES:
            match = pattern.match(request.path)
            if match is None:
                continue
            if request.method not in methods:
                raise _method_not_allowed(methods)
            args = match.groups()
            query = request.query
            if name == "list_projects":
                return state.list_projects(query)
            if name == "get_project":
                return state.get_project(args[0])
            if name == "list_automations":
                return state.list_automations(args[0], query)
            if name == "automation" and request.method == "PATCH":
                return state.patch_automation(args[0], args[1], request.body)
            if name == "automation":
                return state.get_automation(args[0], args[1], query)
            if name == "list_executions":
                return state.list_executions(args[0], query)
            if name == "execution":
                return state.get_execution(args[0], args[1])
            return state.audit_logs(args[0], query)
        raise not_found("Resource")

    def _trigger(self, request: _Request) -> Any:
        if request.method not in ("GET", "POST"):
            raise _method_not_allowed(frozenset({"GET", "POST"}))
        trigger_id = request.path[len(TRIGGER_PREFIX) :]
        if not trigger_id or "/" in trigger_id:
            raise not_found("Trigger")
        testing = self._faults.take(request.path, TRIGGER_FAULTS, request.method) is not None
        return self._automations.trigger(
            trigger_id, request.headers, request.body, request.method, testing=testing
        )


# ------------------------------------------------------------------------------ HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive handler threads may idle on a client's socket; never wait for them.
    block_on_close = False
    request_queue_size = 128
    simulator: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeouts, faults) is expected; stay quiet about it.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ContentstackSimulator/1.0"
    timeout = 60
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        received = time.monotonic()
        parts = urlsplit(self.path)
        request = _Request(
            method=self.command,
            path=unquote(parts.path) or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
            received_at=received,
        )
        response = self.server.simulator._process(request)
        if response.cut in ("close", "reset"):
            self.close_connection = True
            with contextlib.suppress(OSError):
                if response.cut == "reset":
                    # a zero linger makes close() send RST instead of FIN
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = response.body
        if response.cut == "truncate":
            body = body[: len(body) // 2]
            self.close_connection = True
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(body)
            if response.cut == "truncate":
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle
