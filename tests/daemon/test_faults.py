"""API faults against the real daemon process, over real HTTP: for each fault one
source-down page, no per-rule notification, automatic recovery, a bounded request rate.

One daemon run goes through every fault in turn (each begins once the previous episode
has resolved and ends once its page is seen), so the suite pays for one start-up. The
request and job timeouts are short so that timeouts and stuck jobs cost seconds. Last,
a reload adds an execution-log rule: a revoked token on the Automations API pages too,
while a 503 there alone (Analytics still answers) only puts that rule in error, silently.
"""

from __future__ import annotations

import bisect
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.simulator import Fault, Simulator

from .support import DaemonProcess, WebhookReceiver, ratio_rule, wait_until, write_config
from .test_process import SPEED, _simulator

pytestmark = pytest.mark.timeout(300)

#: (what the episode rehearses, the fault, a word the page's summary must carry)
FAULTS = [
    ("429 storm", Fault("http_status", path_prefix="/analytics", status=429, retry_after=1), "429"),
    ("5xx burst", Fault("http_status", path_prefix="/analytics", status=503), "503"),
    ("500 on Retrieve Data", Fault("http_status", path_prefix="/analytics/v2/job/"), "500"),
    # the simulator holds the request well past the client's 3 s timeout, then drops it
    ("timeout", Fault("timeout", path_prefix="/analytics", delay=6), "timed out"),
    ("connection reset", Fault("reset", path_prefix="/analytics"), "ReadError"),
    ("connection closed", Fault("disconnect", path_prefix="/analytics"), "RemoteProtocolError"),
    ("truncated body", Fault("truncated", path_prefix="/analytics"), "RemoteProtocolError"),
    ("malformed JSON", Fault("malformed_json", path_prefix="/analytics"), "not JSON"),
    ("job never finishes", Fault("job_never_finishes", path_prefix="/analytics"), "not finished"),
    ("Job Failed", Fault("job_failed", path_prefix="/analytics"), "failed"),
    ("revoked token", Fault("http_status", path_prefix="/analytics", status=401), "401"),
]


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def _most_in_one_second(times: list[float]) -> int:
    """The most requests the server received within any one-second window."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


def _pages(hook: WebhookReceiver, status: str) -> int:
    return len(hook.matching("ContentstackSourceDown", status))


def _wait_pages(
    hook: WebhookReceiver, daemon: DaemonProcess, status: str, count: int, what: str
) -> None:
    try:
        wait_until(lambda: _pages(hook, status) >= count, 60, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_story(daemon)}") from None


def _story(daemon: DaemonProcess) -> str:
    """What the daemon said about the source and its deliveries (for a failure message)."""
    entries = [
        entry
        for entry in daemon.events("alert_transition") + daemon.events("notification_delivered")
        if entry.get("rule", "ContentstackSourceDown") == "ContentstackSourceDown"
    ]
    entries.sort(key=lambda entry: str(entry["timestamp"]))
    return "\n".join(json.dumps(entry, sort_keys=True) for entry in entries[-20:])


EXECUTIONS_RULE = """
[[rule]]
name = "automation-failures"
interval = "20s"
on_nodata = "ok"

[rule.query]
metric = "executions"
window = "15m"

[rule.value]
function = "count"
where = { status = "!success" }

[rule.condition]
type = "threshold"
op = ">="
value = 1000
"""


def _episode(
    sim: Simulator, hook: WebhookReceiver, daemon: DaemonProcess, number: int, fault: Fault
) -> str:
    """Fault on until the ``number``-th page, then off until its resolve; what it took."""
    began, first_request = time.monotonic(), len(sim.requests)
    sim.add_fault(fault)
    _wait_pages(hook, daemon, "FIRING", number, f"source-down page #{number}")
    paged = time.monotonic()
    sim.clear_faults()
    _wait_pages(hook, daemon, "RESOLVED", number, f"source back #{number}")
    daemon.check_alive()
    times = [r.received_at for r in sim.requests[first_request:]]
    return (
        f"paged after {paged - began:.1f}s, back {time.monotonic() - paged:.1f}s later; "
        f"{len(times)} requests, at most {_most_in_one_second(times)} in 1s"
    )


def _transitions(daemon: DaemonProcess, rule: str) -> list[str]:
    return [e["state"] for e in daemon.events("alert_transition") if e["rule"] == rule]


def test_every_api_fault_pages_once_as_source_down_and_recovers(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    origin = datetime.now(UTC)
    sim: Simulator
    with _simulator(origin) as sim:
        config = write_config(
            tmp_path,
            simulator_url=sim.url,
            hook_port=hook.port,
            origin=origin,
            speed=SPEED,
            # short, yet long enough that a busy machine's slow answer is no timeout
            request_timeout="3s",
            extra_contentstack='job_timeout = "4s"',
        )
        for name, stack in (("web-5xx", "Website"), ("mobile-5xx", "Mobile")):
            (tmp_path / "rules" / f"{name}.toml").write_text(
                ratio_rule(name, stack=stack, above=0.05, clear_below=0.02)
            )
        daemon = DaemonProcess(config)
        try:
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            for number, (what, fault, reason) in enumerate(FAULTS, start=1):
                print(f"{what}: {_episode(sim, hook, daemon, number, fault)}")
                page = hook.matching("ContentstackSourceDown", "FIRING")[-1]
                assert reason in page, (what, page)

            # the Automations API too: a revoked token there is the source down; a 503 there
            # alone is not (Analytics answers): its rule waits in error, silently
            (tmp_path / "rules" / "automations.toml").write_text(EXECUTIONS_RULE)
            daemon.signal(signal.SIGHUP)
            daemon.wait_log("reload_ok", 60)
            wait_until(lambda: [r for r in sim.requests if r.path == "/v1/projects"], 60, "/v1")
            revoked = Fault("http_status", path_prefix="/v1/", status=401)
            print(f"Automations 401: {_episode(sim, hook, daemon, len(FAULTS) + 1, revoked)}")
            sim.add_fault(Fault("http_status", path_prefix="/v1/", status=503))
            wait_until(lambda: "error" in _transitions(daemon, "automation-failures"), 60, "error")
            sim.clear_faults()
            wait_until(
                lambda: _transitions(daemon, "automation-failures")[-1] == "inactive", 60, "back"
            )

            texts = hook.texts()
            # one page and one resolve per episode: no flapping, no repeat
            episodes = len(FAULTS) + 1
            counts = (_pages(hook, "FIRING"), _pages(hook, "RESOLVED"))
            assert counts == (episodes, episodes), _story(daemon)
            # the rules waited in error, silently
            rules = {"web-5xx", "mobile-5xx", "automation-failures"}
            assert not [t for t in texts if any(rule in t for rule in rules)]
            errors = [e for e in daemon.events("alert_transition") if e["state"] == "error"]
            assert {e["rule"] for e in errors} == rules
            assert _most_in_one_second([r.received_at for r in sim.requests]) <= 10
            assert daemon.get("/healthz")[0] == 200
            assert not daemon.unparsed()  # no traceback, nothing but log records
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
