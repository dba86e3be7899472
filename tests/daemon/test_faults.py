"""API faults against the real daemon process, over real HTTP: for each fault one
source-down page, no per-rule notification, automatic recovery, a bounded request rate.

One daemon run goes through every fault in turn (each begins once the previous episode
has resolved and ends once its page is seen), so the suite pays for one start-up. The
request and job timeouts are short so that timeouts and stuck jobs cost seconds.
"""

from __future__ import annotations

import bisect
import json
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
    # the simulator holds the request past the client's 1 s timeout
    ("timeout", Fault("timeout", path_prefix="/analytics", delay=1.5), "timed out"),
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


def _story(daemon: DaemonProcess) -> str:
    """What the daemon said about the source and its deliveries (for a failure message)."""
    lines = []
    for entry in daemon.events("alert_transition") + daemon.events("notification_delivered"):
        if entry.get("rule", "ContentstackSourceDown") == "ContentstackSourceDown":
            lines.append(json.dumps(entry, sort_keys=True))
    return "\n".join(sorted(lines, key=lambda line: json.loads(line)["timestamp"])[-20:])


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
            request_timeout="1s",
            extra_contentstack='job_timeout = "2s"',
        )
        for name, stack in (("web-5xx", "Website"), ("mobile-5xx", "Mobile")):
            (tmp_path / "rules" / f"{name}.toml").write_text(
                ratio_rule(name, stack=stack, above=0.05, clear_below=0.02)
            )
        daemon = DaemonProcess(config)
        figures: list[str] = []
        try:
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            for episode, (what, fault, reason) in enumerate(FAULTS, start=1):
                began, first_request = time.monotonic(), len(sim.requests)
                sim.add_fault(fault)
                wait_until(
                    lambda n=episode: len(hook.matching("ContentstackSourceDown", "FIRING")) >= n,
                    60,
                    f"source-down page for {what}\n{_story(daemon)}",
                )
                paged = time.monotonic()
                sim.clear_faults()
                wait_until(
                    lambda n=episode: len(hook.matching("ContentstackSourceDown", "RESOLVED")) >= n,
                    60,
                    f"source back after {what}\n{_story(daemon)}",
                )
                daemon.check_alive()
                page = hook.matching("ContentstackSourceDown", "FIRING")[-1]
                assert reason in page, (what, page)
                times = [r.received_at for r in sim.requests[first_request:]]
                back = time.monotonic() - paged
                figures.append(
                    f"{what}: paged after {paged - began:.1f}s, back {back:.1f}s later; "
                    f"{len(times)} requests, at most {_most_in_one_second(times)} in 1s"
                )
            print("\n".join(figures))
            texts = hook.texts()
            # one page and one resolve per episode: no flapping, no repeat
            assert len(hook.matching("ContentstackSourceDown", "FIRING")) == len(FAULTS)
            assert len(hook.matching("ContentstackSourceDown", "RESOLVED")) == len(FAULTS)
            # the rules waited in error, silently
            assert not [t for t in texts if "web-5xx" in t or "mobile-5xx" in t]
            errors = [e for e in daemon.events("alert_transition") if e["state"] == "error"]
            assert {e["rule"] for e in errors} == {"web-5xx", "mobile-5xx"}
            assert _most_in_one_second([r.received_at for r in sim.requests]) <= 10
            assert daemon.get("/healthz")[0] == 200
            assert not daemon.unparsed()  # no traceback, nothing but log records
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
