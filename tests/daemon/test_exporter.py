"""The exporter: Contentstack's numbers on the daemon's /metrics, from the engine's fetches.

One daemon (in-process, on a ManualClock) evaluates its rules once against the simulator
over 127.0.0.1; its real HTTP endpoint is then read by ``promtool check metrics`` and
scraped by a real Prometheus (Debian's ``prometheus``; one per module), and the Grafana
dashboard in deploy/ is checked against what it serves.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agent.clock import ManualClock
from agent.collect.models import Metric, Sample
from agent.daemon.exporter import ContentstackCollector, stack_label
from agent.daemon.grouping import group_rules
from agent.daemon.http_api import ApiServer
from agent.evaluate.engine import Engine
from agent.evaluate.history import QueryHistory
from agent.evaluate.sources import MemorySource
from tests.binaries import free_port, get_json, require, running, wait_until

from .support import AUTHTOKEN, MOBILE, ROOT, WEBSITE, daemon_on_simulator

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2024, 6, 15, 12, 0, 30, tzinfo=UTC)
DASHBOARD = ROOT / "deploy" / "grafana" / "stackwatch.json"
RULES = """
[[rule]]
name = "cdn-5xx"
summary = "5xx"
[rule.query]
metric = "status_codes"
services = ["cdn", "cma"]
stacks = ["*"]
window = "5m"
[rule.value]
function = "ratio"
numerator = { status = "5xx" }
[rule.condition]
type = "threshold"
op = ">"
value = 0.5

[[rule]]
name = "cache"
summary = "cache"
[rule.query]
metric = "cache"
services = ["cdn"]
stacks = ["*"]
window = "10m"
[rule.value]
function = "ratio"
numerator = { cache = "HIT" }
denominator = { cache = ["HIT", "MISS"] }
[rule.condition]
type = "threshold"
op = "<"
value = 0.01

[[rule]]
name = "bandwidth"
summary = "bandwidth"
[rule.query]
metric = "usage"
stacks = ["*"]
window = "1h"
granularity = "hour"
[rule.value]
function = "sum"
field = "total_cdn_bandwidth"
[rule.condition]
type = "threshold"
op = ">"
value = 1e18
"""


@dataclass
class Served:
    url: str
    text: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with daemon_on_simulator(tmp_path_factory.mktemp("exporter"), RULES, NOW) as daemon:
        engine = daemon.pipeline.engine
        for group in group_rules(
            list(engine.rules.values()), engine.default_interval, engine.query_keys
        ):
            daemon.run_group(group)
        daemon.beat()
        api = ApiServer(daemon, "127.0.0.1", 0, "test-token").start()
        try:
            with urllib.request.urlopen(f"{api.url}/metrics", timeout=10) as response:
                text = response.read().decode()
            yield Served(api.url, text)
        finally:
            api.stop()


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            found.append((labels, float(match.group(2))))
    return found


def test_contentstack_series_carry_stack_names_and_their_bucket(served: Served):
    requests = _samples(served.text, "stackwatch_contentstack_requests")
    assert {labels["stack"] for labels, _ in requests} == {"Website", "Mobile"}
    assert {labels["service"] for labels, _ in requests} == {"cdn", "cma"}
    assert {labels["status_class"] for labels, _ in requests} <= {"2xx", "3xx", "4xx", "5xx"}
    assert any(labels["status_class"] == "2xx" and value > 0 for labels, value in requests)
    cache = _samples(served.text, "stackwatch_contentstack_cache_requests")
    assert {labels["cache"] for labels, _ in cache} == {"hit", "miss"}
    bandwidth = _samples(served.text, "stackwatch_contentstack_bandwidth_bytes")
    assert {(labels["stack"], labels["kind"]) for labels, _ in bandwidth} >= {("Website", "cdn")}
    assert all(labels["granularity"] == "hour" for labels, _ in bandwidth)
    stamps = _samples(served.text, "stackwatch_contentstack_bucket_timestamp_seconds")
    by_metric = {(labels["metric"], labels["stack"]): value for labels, value in stamps}
    # the last complete bucket: a minute (an hour for usage) wholly before the clock
    assert (
        by_metric[("requests", "Website")] == datetime(2024, 6, 15, 11, 59, tzinfo=UTC).timestamp()
    )
    assert by_metric[("usage", "Website")] == datetime(2024, 6, 15, 11, 0, tzinfo=UTC).timestamp()
    # no API key, token or credential in any label or value
    for secret in (WEBSITE, MOBILE, AUTHTOKEN):
        assert secret not in served.text


def test_promtool_accepts_the_exposition(served: Served):
    promtool = require("promtool")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=served.text.encode(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_a_real_prometheus_scrapes_the_daemon(served: Served, tmp_path: Path):
    binary = require("prometheus")
    port = free_port()
    target = urllib.parse.urlsplit(served.url).netloc
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        f"scrape_configs:\n  - job_name: stackwatch\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    args = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(args, f"http://127.0.0.1:{port}/-/ready", tmp_path / "prometheus.log"):
        query = urllib.parse.quote('stackwatch_contentstack_requests{stack="Website"}')

        def series() -> list:
            answer = get_json(f"http://127.0.0.1:{port}/api/v1/query?query={query}")
            return list(answer["data"]["result"])

        found = wait_until(series, "Prometheus to have the series")
        assert {item["metric"]["job"] for item in found} == {"stackwatch"}
        targets = get_json(f"http://127.0.0.1:{port}/api/v1/targets")["data"]["activeTargets"]
        assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]


def test_every_metric_the_dashboard_charts_is_served(served: Served):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(exprs) >= 8
    named = {name for expr in exprs for name in re.findall(r"\bstackwatch_[a-z_]+", expr)}
    # a series served, or a family declared whose labelled series have not happened yet
    # (a remediation, a reload): the panel then shows data as soon as there is some
    served_names = {
        line.split("{")[0].split(" ")[0] for line in served.text.splitlines() if line[:1] != "#"
    } | set(re.findall(r"^# TYPE (\S+)", served.text, re.MULTILINE))
    assert named and named <= served_names, sorted(named - served_names)
    assert {"stackwatch_contentstack_requests", "stackwatch_ready"} <= named
    for panel in dashboard["panels"]:
        assert panel.get("title") and panel.get("type"), panel


def _engine_with(histories: dict[tuple[object, ...], list[tuple[datetime, str]]]) -> Engine:
    """An engine whose columns hold, per query key, rows of (bucket, status) with count 1."""
    engine = Engine([], MemorySource([]), stack_names={WEBSITE: "Website"})
    for key, rows in histories.items():
        history = QueryHistory()
        samples = [
            Sample("http-statuses", at, {"service": "cdn", "status": status}, {"count": 1.0})
            for at, status in rows
        ]
        history.merge(samples, NOW.date(), NOW.date(), NOW)
        engine.history[key] = history
    return engine


def test_one_series_per_stack_from_the_least_filtered_query_and_no_api_key():
    minute = datetime(2024, 6, 15, 11, 58, tzinfo=UTC)
    later = datetime(2024, 6, 15, 11, 59, tzinfo=UTC)
    every = [(minute, "200"), (minute, "503"), (later, "200")]
    engine = _engine_with(
        {
            ("analytics", Metric.HTTP_STATUSES, "minute", WEBSITE, ()): every,
            # a rule filtering on 503 asks a query of its own: not exported twice
            ("analytics", Metric.HTTP_STATUSES, "minute", WEBSITE, (("httpStatusCode", "503"),)): [
                (later, "503")
            ],
            ("analytics", Metric.HTTP_STATUSES, "minute", "bltunnamed0000", ()): every,
            ("analytics", Metric.HTTP_STATUSES, "minute", None, ()): every,
        }
    )
    registry = CollectorRegistry()
    registry.register(ContentstackCollector(lambda: engine, ManualClock(NOW)))
    text = generate_latest(registry).decode()
    requests = _samples(text, "stackwatch_contentstack_requests")
    website = {
        labels["status_class"]: value for labels, value in requests if labels["stack"] == "Website"
    }
    assert website == {"2xx": 1.0}  # the 11:59 bucket of the unfiltered query
    stacks = {labels["stack"] for labels, _ in requests}
    assert stacks == {"Website", "all", stack_label("bltunnamed0000", {})}
    assert "bltunnamed0000" not in text and WEBSITE not in text
