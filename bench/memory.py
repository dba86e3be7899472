"""Child process of ``bench.scale``: the whole daemon's RSS with 7 days of minute history.

    python -m bench.memory RULES STACKS

Runs a real ``Daemon`` in this process, as ``stackwatch run`` builds it: its SQLite
store, scheduler, HTTP API and web pages, the notifier with its channel (Apprise and its
plugins, loaded by the daemon's own channel loader) and the remediator. The rule mix
plus one week-over-week rule per stack (so the rules look back 7 days). Its Analytics
client talks to a synthetic Analytics API through an httpx transport in this process,
which answers every job with minute rows over the query's whole date range, as the API
would (JSON bodies, parsed by the client like any others). The cold first cycle is the
scheduler's (every group at once, as at start-up); then the scheduler is paused and two
more cycles a minute apart run the due groups and a notifier beat each, with the HTTP
endpoints a scraper and a visitor use read in between.

Prints the RSS after the third cycle, the peak RSS (the cold first cycle reads a week
of rows) and the number of alert instances.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from agent.clock import ManualClock
from agent.collect.analytics import AnalyticsClient
from agent.collect.http import HttpClient
from agent.collect.ratelimit import RateLimiter
from agent.config import load_settings
from agent.daemon.grouping import group_rules
from agent.daemon.service import Daemon
from agent.evaluate.sources import LiveSource
from agent.logs import configure_logging
from bench.rulemix import write_setup
from bench.simproc import stack_key
from bench.usage import own_peak_rss

STATUSES = {"200": 800, "304": 100, "404": 50, "500": 6, "503": 2}
CACHE = {"HIT": 900, "MISS": 100}
#: wall seconds the first cycle of every group may take
COLD_TIMEOUT = 900.0


class SyntheticAnalytics:
    """The Analytics API's two endpoints (submit a job, retrieve its data) as an httpx
    transport handler: every job is done at once, its rows end at the clock's now."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._jobs: dict[str, tuple[str, dict[str, str]]] = {}
        self._ids = itertools.count()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/analytics/v2/job/"):
            metric, params = self._jobs.pop(path.split("/")[4])
            body = self.rows(metric, params)
            return httpx.Response(200, content=body, headers={"content-type": "application/json"})
        job_id = f"job-{next(self._ids)}"
        self._jobs[job_id] = (path.rsplit("/", 1)[1], dict(request.url.params))
        return httpx.Response(200, json={"jobId": job_id, "paginated": False})

    def rows(self, metric: str, params: dict[str, str]) -> bytes:
        """The JSON body of one job, written as text (as it would arrive off the wire)."""
        step = timedelta(hours=1) if params.get("duration") == "hour" else timedelta(minutes=1)
        at = datetime.combine(date.fromisoformat(params["from"]), datetime.min.time(), UTC)
        last_day = date.fromisoformat(params["to"]) + timedelta(days=1)
        end = min(self.clock.now(), datetime.combine(last_day, datetime.min.time(), UTC))
        services = json.loads(params.get("services", "[]"))
        parts: list[str] = []
        while at < end:
            wobble = 1.0 + (at.minute % 7) / 10
            stamp = at.strftime("%Y-%m-%dT%H:%M:00.000Z")
            if metric == "usage":
                count = int(60_000 * wobble)
                parts.append(
                    f'{{"total_cdn_count":{count},"total_api_count":{count // 10},'
                    f'"total_cdn_bandwidth":{count * 900},"total_api_bandwidth":{count * 90},'
                    f'"date":"{stamp}"}}'
                )
            table = CACHE if metric == "hit-miss-ratio" else STATUSES
            for service in services if metric != "usage" else ():
                for value, count in table.items():
                    parts.append(
                        f'{{"count":{int(count * wobble)},"type":"{service}",'
                        f'"status":"{value}","date":"{stamp}"}}'
                    )
            at += step
        return ('{"data":[' + ",".join(parts) + "]}").encode()


def weekly_rules(stacks: int) -> str:
    return "\n".join(
        f"""[[rule]]
name = "week-over-week-{index}"
[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = ["{stack_key(index)}"]
window = "1h"
[rule.value]
function = "count"
[rule.condition]
type = "change"
reference = "7d"
mode = "percent"
op = ">"
value = 50
"""
        for index in range(stacks)
    )


def build_daemon(folder: Path, rules: int, stacks: int, clock: ManualClock) -> Daemon:
    """The daemon of the bench's setup, its Analytics API the synthetic one."""
    config = write_setup(folder, rules, stacks)
    (folder / "rules" / "weekly.toml").write_text(weekly_rules(stacks))
    config.write_text(config.read_text().replace("[agent]\n", "[agent]\nhttp_port = 0\n"))
    settings = load_settings(config)
    configure_logging(settings.agent.log_level)  # as ``stackwatch run`` does: to stderr
    daemon = Daemon(settings, config, clock=clock)
    http = HttpClient(
        settings.contentstack,
        clock,
        transport=httpx.MockTransport(SyntheticAnalytics(clock).handle),
        limiter=RateLimiter(1_000_000, clock),
    )
    clients = daemon.pipeline.clients
    daemon.pipeline.engine.source = LiveSource(AnalyticsClient(http, clock), clients.automations)
    return daemon


def visit(url: str) -> None:
    """What a scraper and an operator ask of a running daemon."""
    for path in ("/readyz", "/metrics", "/api/v1/alerts", "/"):
        with urllib.request.urlopen(url + path, timeout=60) as answer:
            answer.read()


def main() -> None:
    rules_count, stacks = int(sys.argv[1]), int(sys.argv[2])
    start = datetime.now(UTC).replace(second=5, microsecond=0)
    clock = ManualClock(start)
    with tempfile.TemporaryDirectory() as folder:
        daemon = build_daemon(Path(folder), rules_count, stacks, clock)
        engine = daemon.pipeline.engine
        daemon.start()  # the scheduler runs every group now: the cold first cycle
        deadline = time.monotonic() + COLD_TIMEOUT
        while len(engine.next_due) < len(engine.rules) or not daemon.notifier.channels.loaded:
            if time.monotonic() > deadline:  # a group crashed (its log says why)
                sys.exit(f"the cold cycle did not finish within {COLD_TIMEOUT:.0f} s")
            time.sleep(0.2)
        daemon.scheduler.pause()
        daemon.scheduler.wait_idle(60)
        assert daemon.api is not None
        visit(daemon.api.url)
        groups = group_rules(
            list(engine.rules.values()), engine.default_interval, engine.query_keys
        )
        for _ in range(2):
            clock.advance(timedelta(minutes=1))
            due = {rule.name for rule in engine.due(clock.now())}
            for group in groups:
                if due.intersection(group.rules):
                    daemon.run_group(group)
            daemon.beat()
            visit(daemon.api.url)
        gc.collect()
        peak = own_peak_rss()
        steady = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        print(f"{steady} {peak} {len(engine.all_instances())}")
        daemon.stop()


if __name__ == "__main__":
    main()
