"""While an alert fires on, the JSON API and notify's record tell the value evaluated
last, in the summary too (a daemon in-process on the simulator; the clock is moved)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from agent.daemon.grouping import group_rules
from agent.daemon.http_api import ApiServer
from agent.notify import storage

from .support import daemon_on_simulator

NOW = datetime(2024, 6, 15, 12, 0, 30, tzinfo=UTC)
RULES = """
[[rule]]
name = "cdn-traffic"
summary = "{{ value | human }} CDN requests on {{ labels.stack_name }}"
interval = "1m"
[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = ["Website"]
window = "1m"
[rule.value]
function = "sum"
[rule.condition]
type = "threshold"
op = ">"
value = 1
"""


def test_api_and_notify_follow_the_value_of_a_firing_alert(tmp_path: Path):
    with daemon_on_simulator(tmp_path, RULES, NOW) as daemon:
        engine = daemon.pipeline.engine
        seen = []
        for _minute in range(3):
            for group in group_rules(
                list(engine.rules.values()), engine.default_interval, engine.query_keys
            ):
                daemon.run_group(group)
            api = ApiServer(daemon, "127.0.0.1", 0, "test-token").start()
            try:
                with urllib.request.urlopen(f"{api.url}/api/v1/alerts", timeout=10) as answer:
                    (alert,) = json.loads(answer.read())["alerts"]
            finally:
                api.stop()
            assert alert["state"] == "firing"
            assert alert["summary"] == f"{alert['value']:.0f} CDN requests on Website"
            tracked = storage.alert(daemon.store.connection(), alert["fingerprint"])
            assert tracked is not None and tracked.value == alert["value"]
            assert tracked.annotations["summary"] == alert["summary"]
            seen.append(alert["value"])
            daemon.clock.advance(60)
        assert len(set(seen)) > 1, seen  # the traffic moved, and the summary with it
