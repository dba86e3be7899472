"""The naive baseline: one Analytics job per rule and stack, each polled on its own backoff.

What an agent without query planning would do: no merging of rules that read the same
data, every job submitted and then polled at 0.5 s, 1 s, 2 s, ... until its rows are ready.
It shares the agent's HTTP layer (authentication, the 10 req/s limiter), so the only
difference measured is the fetching strategy.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from agent.collect.analytics import build_params
from agent.collect.http import HttpClient
from agent.collect.models import AnalyticsQuery
from agent.evaluate.planner import rule_requests
from agent.evaluate.rules import Rule


def naive_jobs(rules: list[Rule], now: datetime) -> list[AnalyticsQuery]:
    return [
        request
        for rule in rules
        for request in rule_requests(rule, now)
        if isinstance(request, AnalyticsQuery)
    ]


def run_job(http: HttpClient, query: AnalyticsQuery) -> int:
    """Submit one job and poll it until done; returns the rows read."""
    base = http.settings.analytics_url
    org = http.settings.organization_uid
    answer = http.get_json(
        "GET",
        f"{base}/analytics/v2/{query.metric.value}",
        params=build_params(query, query.start, query.end, org),
    )
    pause = 0.5
    while True:
        time.sleep(pause)
        body = http.get_json(
            "GET", f"{base}/analytics/v2/job/{answer['jobId']}/data", params={"orgUid": org}
        )
        if body.get("data") is not None:
            return len(body["data"])
        pause = min(pause * 2, 8.0)


def run_jobs(http: HttpClient, jobs: list[AnalyticsQuery], workers: int = 4) -> float:
    """Run the jobs ``workers`` at a time; returns the wall time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: run_job(http, job), jobs))
    return time.perf_counter() - started
