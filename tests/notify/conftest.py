"""Local receivers (HTTP and SMTP on 127.0.0.1) and helpers for notify tests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.clock import ManualClock
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.notify import Notifier, NotifyConfig
from agent.store import Store

START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday


@dataclass
class Received:
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class HttpReceiver:
    """Records JSON posts; ``fail`` makes it answer 503 (an outage)."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    fail: bool = False
    respond: Callable[[Received], tuple[int, dict[str, Any]]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def posts(self, path: str | None = None) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests if path is None or r.path.startswith(path)]


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            item = Received(self.path, body, dict(self.headers))
            if receiver.fail:
                status, answer = 503, {"error": "unavailable"}
            else:
                with receiver.lock:
                    receiver.requests.append(item)
                status, answer = receiver.respond(item) if receiver.respond else (202, {})
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@dataclass
class SmtpReceiver:
    port: int
    messages: list[Any]


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd's readiness check cannot use port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpReceiver(port, messages)
    controller.stop()


@pytest.fixture(autouse=True)
def _plain_structlog() -> Iterator[None]:
    """Other suites may leave structlog bound to a closed capture stream."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def make_notifier(tmp_path: Path, clock: ManualClock) -> Iterator[Callable[..., Notifier]]:
    stores: list[Store] = []

    def build(config: dict[str, Any] | NotifyConfig, *, db: str = "state.db") -> Notifier:
        parsed = config if isinstance(config, NotifyConfig) else NotifyConfig(**config)
        store = Store(tmp_path / db)
        stores.append(store)
        return Notifier(parsed, store, clock)

    yield build
    for store in stores:
        store.close()


class Alerts:
    """Builds transitions the way the evaluator emits them."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.states: dict[str, AlertState] = {}
        self.since: dict[str, datetime] = {}

    def t(
        self,
        rule: str,
        state: AlertState | str,
        *,
        severity: str = "warning",
        value: float | None = 7.5,
        threshold: float | None = 5.0,
        annotations: dict[str, str] | None = None,
        routes: tuple[str, ...] = (),
        **labels: str,
    ) -> Transition:
        state = AlertState(state)
        full = {"alertname": rule, "severity": severity, **labels}
        fp = fingerprint(rule, full)
        previous = self.states.get(fp, AlertState.INACTIVE)
        now = self.clock.now()
        if state == AlertState.FIRING and previous != AlertState.FIRING:
            self.since[fp] = now
        self.states[fp] = state
        return Transition(
            rule=rule,
            fingerprint=fp,
            labels=full,
            previous=previous,
            state=state,
            at=now,
            value=value,
            threshold=threshold,
            annotations=annotations
            if annotations is not None
            else {"summary": f"{rule} on {labels.get('stack', '?')}"},
            firing_since=self.since.get(fp)
            if state in (AlertState.FIRING, AlertState.RESOLVED)
            else None,
            routes=routes,
        )


@pytest.fixture
def alerts(clock: ManualClock) -> Alerts:
    return Alerts(clock)


def json_url(receiver: HttpReceiver, path: str = "hook") -> str:
    return f"json://{receiver.url}/{path}"
