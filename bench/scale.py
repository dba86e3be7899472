"""Benchmark: rules × stacks at scale against the simulator on 127.0.0.1, beside a naive baseline.

    python -m bench.scale [--sizes 10x1,100x5,1000x20] [--runs 3] [--out bench/RESULTS.md]
    python -m bench.scale --full [--runs 1]     # every target of issue 13 at 1,000 × 20

For each size, in one run: the agent's evaluation cycle (HTTP requests counted at the
simulator, which runs in its own process; peak requests in any second, 429s, wall
time), evaluation CPU when a cycle brings one new minute (rows already fetched), the
daemon's peak RSS holding 7 days of minute history (a child process), ``stackwatch
check`` CPU on the rule set, and the naive one-job-per-rule baseline on the same
simulator. Medians of ``--runs`` runs; ratios against the baseline of the same run.
``--full`` adds the figures other commands measure alone (``bench.targets``) and a table of
issue 13's targets at the largest size, each with its verdict. Prints the tables and adds
them to ``--out`` as one section.
"""

from __future__ import annotations

import argparse
import bisect
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agent.clock import SystemClock
from agent.collect import build_clients
from agent.collect.block import samples_of
from agent.collect.models import AnalyticsQuery, Sample
from agent.collect.ratelimit import RateLimiter
from agent.config import ContentstackSettings
from agent.daemon import heap
from agent.daemon.grouping import group_rules
from agent.evaluate.engine import Engine
from agent.evaluate.planner import DataRequest, merge_key, plan
from agent.evaluate.rules import Rule
from agent.evaluate.sources import AnswerHook, LiveSource
from agent.logs import configure_logging
from agent.wiring import load_config, load_rule_set
from bench import naive, targets
from bench.rulemix import write_setup
from bench.simproc import AUTHTOKEN, ORGANIZATION, Arrival, SimulatorProcess, peak_rate
from bench.startup import compile_agent, measure_startup
from bench.usage import measure

#: jobs the naive baseline actually runs per size; its totals are extrapolated from them
NAIVE_SAMPLE = 40
JOB_DURATION = 2.0


@dataclass
class Size:
    rules: int
    stacks: int

    @property
    def label(self) -> str:
        return f"{self.rules:,} × {self.stacks}"


class RecordingSource:
    """Passes requests through and keeps every answer (for the offline CPU measurement)."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.rows: dict[tuple[object, ...], list[Sample]] = {}

    def fetch(self, request: DataRequest) -> list[Sample]:
        rows = self.source.fetch(request)
        self.rows[merge_key(request)] = rows
        return rows

    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]:
        """The live source's batch, recording each answer before the engine keeps it."""

        def record(request: DataRequest, answer: Sequence[Sample] | Exception) -> Any:
            if not isinstance(answer, Exception):  # a list, or the client's SampleBlock
                self.rows[merge_key(request)] = samples_of(answer)
            return on_answer(request, answer) if on_answer else answer

        assert isinstance(self.source, LiveSource)
        return self.source.fetch_many(requests, newer_than, record)


class ReplaySource:
    """Answers from recorded rows as the API would have at ``cutoff`` (buckets up to it),
    leaving out the rows the engine says it holds, as the live source does (it does not
    even parse them): what the daemon's evaluation sees of a cycle bringing one minute."""

    def __init__(self, rows: dict[tuple[object, ...], list[Sample]]) -> None:
        self.cutoff = datetime.max.replace(tzinfo=UTC)
        self._undated = {key: [s for s in found if s.at is None] for key, found in rows.items()}
        self._dated = {
            key: sorted((s for s in found if s.at is not None), key=_stamp)
            for key, found in rows.items()
        }
        self._stamps = {key: [_stamp(s) for s in found] for key, found in self._dated.items()}

    def fetch(self, request: DataRequest) -> list[Sample]:
        return self._answer(request, None)

    def fetch_many(
        self,
        requests: Sequence[DataRequest],
        newer_than: Mapping[AnalyticsQuery, datetime] | None = None,
        on_answer: AnswerHook | None = None,
    ) -> dict[DataRequest, list[Sample] | Exception]:
        held = newer_than or {}
        answers: dict[DataRequest, list[Sample] | Exception] = {}
        for request in requests:
            since = held.get(request) if isinstance(request, AnalyticsQuery) else None
            rows = self._answer(request, since)
            answers[request] = on_answer(request, rows) if on_answer else rows
        return answers

    def _answer(self, request: DataRequest, since: datetime | None) -> list[Sample]:
        key = merge_key(request)
        stamps = self._stamps[key]
        low = 0 if since is None else bisect.bisect_left(stamps, since.timestamp())
        high = bisect.bisect_right(stamps, self.cutoff.timestamp())
        return self._undated[key] + self._dated[key][low:high]


def _stamp(sample: Sample) -> float:
    assert sample.at is not None
    return sample.at.timestamp()


def settings_for(url: str) -> ContentstackSettings:
    return ContentstackSettings(
        organization_uid=ORGANIZATION,
        authtoken=SecretStr(AUTHTOKEN),
        analytics_base_url=url,
        automations_base_url=url,
    )


def summarize(arrivals: list[Arrival]) -> dict[str, float]:
    return {
        "requests": len(arrivals),
        "peak_rate": peak_rate(arrivals),
        "throttled": sum(1 for a in arrivals if a.status == 429),
    }


def agent_cycle(rules: list[Rule], sim: SimulatorProcess) -> dict[str, Any]:
    clock = SystemClock()
    sim.clear()
    with build_clients(settings_for(sim.url), clock, limiter=RateLimiter(10, clock)) as clients:
        recording = RecordingSource(LiveSource(clients.analytics, clients.automations))
        engine = Engine(rules, recording, default_interval=timedelta(minutes=1))
        now = clock.now()
        cpu = time.process_time()
        started = time.perf_counter()
        engine.evaluate(now)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    figures: dict[str, Any] = summarize(sim.arrivals())
    figures.update(
        queries=len(plan(rules, now).requests),
        wall=wall,
        cycle_cpu=cpu,
        instances=len(engine.all_instances()),
    )
    figures["per_query"] = figures["requests"] / max(1, figures["queries"])
    figures["incremental_cpu"] = incremental_cpu(rules, recording.rows, now)
    return figures


def incremental_cpu(
    rules: list[Rule], rows: dict[tuple[object, ...], list[Sample]], now: datetime
) -> float:
    """Median CPU seconds of the cycles at ``now - 4m`` … ``now``, each a minute after the
    one before (rows already fetched), after a first cycle at ``now - 5m``. The heap is
    settled first, as the daemon does once started (``agent.daemon.heap``)."""
    replay = ReplaySource(rows)
    engine = Engine(rules, replay, default_interval=timedelta(minutes=1), watch_source=False)
    heap.settle()
    replay.cutoff = now - timedelta(minutes=5)
    engine.evaluate(replay.cutoff)
    spent = []
    for minutes in range(4, -1, -1):
        replay.cutoff = now - timedelta(minutes=minutes)
        started = time.process_time()
        engine.evaluate(replay.cutoff)
        spent.append(time.process_time() - started)
    return statistics.median(spent)


def naive_cycle(rules: list[Rule], sim: SimulatorProcess) -> dict[str, Any]:
    clock = SystemClock()
    jobs = naive.naive_jobs(rules, clock.now())
    sample = jobs[:NAIVE_SAMPLE]
    sim.clear()
    with build_clients(settings_for(sim.url), clock, limiter=RateLimiter(10, clock)) as clients:
        wall = naive.run_jobs(clients.http, sample)
    figures: dict[str, Any] = summarize(sim.arrivals())
    scale = len(jobs) / len(sample)
    figures.update(
        queries=len(jobs),
        requests=figures["requests"] * scale,
        wall=wall * scale,
        extrapolated=scale > 1,
    )
    figures["per_query"] = figures["requests"] / len(jobs)
    return figures


def child_usage(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(CPU seconds, peak RSS in bytes, stdout) of a command run to completion."""
    usage = measure(command, env=env)
    if usage.exit_code != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {usage.exit_code}")
    return usage.cpu, usage.peak_rss, usage.output


def stackwatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", *args]


def measure_size(size: Size, runs: int, folder: Path, with_memory: bool) -> dict[str, Any]:
    config = write_setup(folder / f"s{size.rules}x{size.stacks}", size.rules, size.stacks)
    rules = load_rule_set(load_config(config, explicit=True))
    agent_runs: list[dict[str, Any]] = []
    naive_runs: list[dict[str, Any]] = []
    groups = len(group_rules(rules, timedelta(minutes=1)))
    with SimulatorProcess(size.stacks, job_duration=JOB_DURATION) as sim:
        for run in range(runs):
            print(f"  {size.label}: run {run + 1}/{runs}", file=sys.stderr, flush=True)
            agent_runs.append(agent_cycle(rules, sim))
            naive_runs.append(naive_cycle(rules, sim))
            agent_runs[-1].update(measure_startup(config, sim, groups, JOB_DURATION))
    compile_agent()
    check = [child_usage(stackwatch("check", "--config", str(config)))[0] for _ in range(runs)]
    memory = [
        [
            int(figure)
            for figure in child_usage(
                [sys.executable, "-m", "bench.memory", str(size.rules), str(size.stacks)],
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
            )[2].split()[:2]
        ]
        for _ in range(min(runs, 2) if with_memory else 0)
    ]
    return {
        "agent": median_of(agent_runs),
        "naive": median_of(naive_runs),
        "check_cpu": statistics.median(check),
        "rss": statistics.median(m[0] for m in memory) if memory else None,
        "peak_rss": statistics.median(m[1] for m in memory) if memory else None,
        "config": config,
        "groups": groups,
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(run[key] for run in runs)
        if isinstance(runs[0][key], int | float) and not isinstance(runs[0][key], bool)
        else runs[0][key]
        for key in runs[0]
    }


Row = tuple[str, Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], str]]


def _ratio(agent: float, baseline: float) -> str:
    return f"{agent / baseline:.2f}×" if baseline else "–"


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for label, result in results.items():
        a, n = result["agent"], result["naive"]
        per_10k = a["incremental_cpu"] * 1000 * 10_000 / max(1, a["instances"])
        note = " (extrapolated)" if n.get("extrapolated") else ""
        rows = [
            ("distinct queries (agent) / jobs (naive)", f"{a['queries']:.0f}", f"{n['queries']}"),
            (
                "HTTP requests per cycle (at the simulator)",
                f"{a['requests']:.0f}",
                f"{n['requests']:.0f}{note}",
                _ratio(a["requests"], n["requests"]),
            ),
            ("requests per query", f"{a['per_query']:.2f}", f"{n['per_query']:.2f}"),
            ("peak requests in any second", f"{a['peak_rate']:.0f}", f"{n['peak_rate']:.0f}"),
            ("429 answers", f"{a['throttled']:.0f}", f"{n['throttled']:.0f}"),
            (
                "cycle wall time",
                f"{a['wall']:.1f} s",
                f"{n['wall']:.1f} s{note}",
                _ratio(a["wall"], n["wall"]),
            ),
            ("cycle CPU (fetch + parse + evaluate)", f"{a['cycle_cpu']:.2f} s", "–"),
            ("alert instances", f"{a['instances']:.0f}", "–"),
            (
                "evaluation CPU, cycle bringing one new minute",
                f"{a['incremental_cpu'] * 1000:.0f} ms ({per_10k:.0f} ms per 10k instances; "
                "median of 5 cycles)",
                "–",
            ),
            (
                "daemon RSS holding 7 days of minute history (peak: cold first cycle)",
                f"{result['rss'] / 1e6:.0f} MB (peak {result['peak_rss'] / 1e6:.0f} MB)"
                if result["rss"]
                else "not measured",
                "–",
            ),
            ("`stackwatch check` CPU", f"{result['check_cpu']:.2f} s", "–"),
            ("`stackwatch run`: start to `/readyz` 200", f"{a['ready']:.2f} s", "–"),
            (
                "`stackwatch run`: start to every group's first cycle done (API floor: "
                "requests ÷ 10/s + one job)",
                f"{a['first_cycle']:.1f} s (floor {a['api_time']:.1f} s for "
                f"{a['startup_requests']:.0f} requests)",
                "–",
            ),
        ]
        lines += [
            f"### {label} rules × stacks",
            "",
            "| figure | agent | naive baseline | agent ÷ baseline |",
            "|---|---|---|---|",
        ]
        lines += [f"| {' | '.join(row)}{' | –' if len(row) == 3 else ''} |" for row in rows]
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes", default=None, help="default: 10x1,100x5,1000x20 (--full: 1000x20)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument("--title", default="Scale benchmark")
    parser.add_argument(
        "--memory-sizes", default=None, help="sizes whose RSS is measured (default: all)"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also `once` cold, the request rate over cycles, detection latency and --help: "
        "every target of issue 13 at the largest size, with its verdict",
    )
    args = parser.parse_args()
    args.sizes = args.sizes or ("1000x20" if args.full else "10x1,100x5,1000x20")
    configure_logging("error")
    sizes = [Size(*map(int, item.split("x"))) for item in args.sizes.split(",")]
    load_before = os.getloadavg()[0]
    results = {}
    verdicts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="stackwatch-bench-") as folder:
        for size in sizes:
            with_memory = args.memory_sizes is None or (
                f"{size.rules}x{size.stacks}" in args.memory_sizes.split(",")
            )
            results[size.label] = measure_size(size, args.runs, Path(folder), with_memory)
        if args.full:
            largest = max(sizes, key=lambda size: size.rules * size.stacks)
            result = results[largest.label]
            extras = targets.measure_extras(
                result["config"],
                largest.stacks,
                result["groups"],
                args.runs,
                JOB_DURATION,
                child_usage,
            )
            verdicts = [
                f"### Targets at {largest.label} rules × stacks",
                "",
                *targets.table(targets.targets(result, extras, JOB_DURATION)),
            ]
    full = " --full" if args.full else ""
    header = [
        f"## {args.title}",
        "",
        f"`python -m bench.scale{full} --sizes {args.sizes} --runs {args.runs}` on "
        f"{platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; simulator jobs take "
        f"{JOB_DURATION:g} s; medians of {args.runs} runs. The naive baseline runs "
        f"{NAIVE_SAMPLE} of its jobs (4 at a time) and scales requests and wall time to all. "
        f"Load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        "(other work on the machine slows CPU figures too).",
        "",
    ]
    text = "\n".join(header + verdicts + table(results))
    print(text)
    previous = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(text + "\n\n" + previous)


if __name__ == "__main__":
    main()
