"""Child process of ``bench.scale``: the daemon's peak RSS with 7 days of minute history.

    python -m bench.memory RULES STACKS

Imports the whole daemon, loads the rule mix plus one week-over-week rule per stack (so
the rules look back 7 days), and runs three cycles a minute apart on a synthetic source
that answers every query with minute rows over its whole date range, as the Analytics
API would (leaving out rows the caller holds, as the live source does). Prints the
RSS after the third cycle, the peak RSS (the cold first cycle holds a week of rows at
once) and the number of alert instances.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import agent.daemon.service  # noqa: F401  (the whole daemon's imports count)
from agent.collect.models import AnalyticsQuery, Metric, Sample
from agent.evaluate.engine import Engine
from agent.evaluate.planner import DataRequest
from agent.evaluate.rules import Rule
from agent.evaluate.sources import AnswerHook
from agent.wiring import load_config, load_rule_set
from bench.rulemix import write_setup
from bench.simproc import stack_key

STATUSES = {"200": 800.0, "304": 100.0, "404": 50.0, "500": 6.0, "503": 2.0}
CACHE = {"HIT": 900.0, "MISS": 100.0}


class SyntheticSource:
    """Minute (or hour) rows for every day of a query, ending at ``now``."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]:
        """Like the live source: rows already held are not even built, and each answer
        is handed over as soon as it is complete."""
        held = newer_than or {}
        answers: dict[DataRequest, list[Sample] | Exception] = {}
        for request in requests:
            assert isinstance(request, AnalyticsQuery)
            rows = self.rows(request, held.get(request))
            answers[request] = on_answer(request, rows) if on_answer else rows
        return answers

    def fetch(self, request: DataRequest) -> list[Sample]:
        assert isinstance(request, AnalyticsQuery)
        return self.rows(request, None)

    def rows(self, request: AnalyticsQuery, since: datetime | None) -> list[Sample]:
        step = timedelta(hours=1) if request.duration == "hour" else timedelta(minutes=1)
        at = datetime.combine(request.start, time(), UTC)
        while since is not None and at < since:
            at += step
        end = min(self.now, datetime.combine(request.end, time(), UTC) + timedelta(days=1))
        stack = request.api_key or ""
        rows: list[Sample] = []
        metric = request.metric.value
        while at < end:
            wobble = 1.0 + (at.minute % 7) / 10
            if request.metric is Metric.USAGE:
                rows.append(
                    Sample(metric, at, {"stack": stack}, {"total_cdn_count": 60_000 * wobble})
                )
            for service in request.services:
                table = CACHE if request.metric is Metric.CACHE else STATUSES
                label = "cache" if request.metric is Metric.CACHE else "status"
                for value, count in table.items():
                    rows.append(
                        Sample(
                            metric,
                            at,
                            {"service": service, label: value, "stack": stack},
                            {"count": count * wobble},
                        )
                    )
            at += step
        return rows


def weekly_rules(stacks: int) -> list[Rule]:
    return [
        Rule.model_validate(
            {
                "name": f"week-over-week-{index}",
                "query": {
                    "metric": "status_codes",
                    "services": ["cdn"],
                    "stacks": [stack_key(index)],
                    "window": "1h",
                },
                "value": {"function": "count"},
                "condition": {
                    "type": "change",
                    "reference": "7d",
                    "mode": "percent",
                    "op": ">",
                    "value": 50,
                },
            }
        )
        for index in range(stacks)
    ]


def main() -> None:
    rules_count, stacks = int(sys.argv[1]), int(sys.argv[2])
    with tempfile.TemporaryDirectory() as folder:
        config = write_setup(Path(folder), rules_count, stacks)
        rules = load_rule_set(load_config(config, explicit=True)) + weekly_rules(stacks)
    source = SyntheticSource()
    engine = Engine(rules, source, watch_source=False)
    start = source.now.replace(second=0, microsecond=0)
    for minute in range(3):
        source.now = start + timedelta(minutes=minute, seconds=5)
        engine.evaluate(source.now)
    gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    steady = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    print(f"{steady} {peak} {len(engine.all_instances())}")


if __name__ == "__main__":
    main()
