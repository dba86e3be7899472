"""The SMTP receiver on 127.0.0.1 and helpers for notify tests (the HTTP receiver is in
tests/conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.clock import ManualClock
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.notify import Notifier, NotifyConfig
from agent.notify.links import Links
from agent.store import Store
from tests.conftest import HttpReceiver

START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday


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

    def build(
        config: dict[str, Any] | NotifyConfig, *, db: str = "state.db", links: Links | None = None
    ) -> Notifier:
        parsed = config if isinstance(config, NotifyConfig) else NotifyConfig(**config)
        store = Store(tmp_path / db)
        stores.append(store)
        return Notifier(parsed, store, clock, links)

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


def run_beat(notifier: Notifier, clock: ManualClock, seconds: float = 0) -> Any:
    """Advance the clock, then one notifier beat: timers, then delivery."""
    clock.advance(seconds)
    notifier.tick()
    return notifier.deliver()


def json_url(receiver: HttpReceiver, path: str = "hook") -> str:
    return f"json://{receiver.url}/{path}"
