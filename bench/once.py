"""``stackwatch once`` cold (a new process, nothing cached) against the simulator process.

CPU and peak RSS of the process, its wall time, and the API's floor for it: the requests
it made at 10 per second, with the issue's allowance (1.5 x requests / 10 req/s + 10 s).
With ``--baseline DIR`` (a checkout of another commit, e.g. ``git worktree add DIR main``)
that checkout's ``once`` runs in turn with this one's against the same simulator, so
each pair of runs meets the same load; the ratios are per pair. The figures are printed
and added to ``--out``.

    python -m bench.once [--rules 1000] [--stacks 20] [--runs 3] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.rulemix import write_setup
from bench.simproc import SimulatorProcess, peak_rate
from bench.startup import compile_agent
from bench.usage import measure

#: the API's rate limit, requests per second
RATE = 10.0
#: the issue's allowances for ``once`` cold at 1,000 rules x 20 stacks
ONCE_CPU = 10.0
ONCE_RSS_MB = 150.0
#: this checkout (its ``agent`` is the one ``python -m agent.cli`` finds from here)
HERE = Path(__file__).resolve().parent.parent


def measure_once(config: Path, sim: SimulatorProcess, source: Path = HERE) -> dict[str, Any]:
    """One cold ``once`` of the ``agent`` in ``source`` (run from there, so that it is the
    one imported)."""
    compile_agent(source / "agent")
    run_config = config.with_name("once.toml")
    run_config.write_text(config.read_text().replace("http://127.0.0.1:9", sim.url))
    sim.clear()
    started = time.perf_counter()
    command = ["once", "--format", "json", "--config", str(run_config)]
    usage = measure([sys.executable, "-m", "agent.cli", *command], cwd=source, capture=False)
    wall = time.perf_counter() - started
    code = usage.exit_code
    if code not in (0, 1):  # 1: a rule could not be evaluated (reported, not a crash)
        raise RuntimeError(f"stackwatch once ({source}) exited with {code}")
    arrivals = sim.arrivals()
    return {
        "cpu": usage.cpu,
        "peak_rss": usage.peak_rss,
        "wall": wall,
        "requests": len(arrivals),
        "allowed_wall": 1.5 * len(arrivals) / RATE + 10.0,
        "peak_rate": peak_rate(arrivals),
        "throttled": sum(1 for a in arrivals if a.status == 429),
        "exit": code,
    }


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(
    args: argparse.Namespace, runs: list[dict[str, Any]], before: list[dict[str, Any]], load: str
) -> str:
    """The section for RESULTS.md: medians, the targets' verdicts, paired ratios."""

    def figures(of: list[dict[str, Any]]) -> str:
        return (
            f"{median(of, 'cpu'):.2f} s | {median(of, 'peak_rss') / 1e6:.0f} MB | "
            f"{median(of, 'wall'):.1f} s (allowed {median(of, 'allowed_wall'):.1f} s) | "
            f"{median(of, 'requests'):.0f}, {median(of, 'peak_rate'):.0f}, "
            f"{median(of, 'throttled'):.0f}"
        )

    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    met = (
        median(runs, "cpu") <= ONCE_CPU
        and median(runs, "peak_rss") / 1e6 <= ONCE_RSS_MB
        and median(runs, "wall") <= median(runs, "allowed_wall")
        and median(runs, "throttled") == 0
        and median(runs, "peak_rate") <= RATE
    )
    lines = [
        f"## `stackwatch once` cold at {args.rules:,} rules × {args.stacks} stacks",
        "",
        f"`python -m bench.once --rules {args.rules} --stacks {args.stacks} --runs {args.runs}"
        f"{baseline}` on {platform.node()} ({os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; simulator "
        f"jobs take {args.job_duration:g} s; medians of {args.runs} runs; load average {load}.",
        "",
        "| code | CPU | peak RSS | wall | requests, peak per second, 429s |",
        "|---|---|---|---|---|",
    ]
    if before:
        lines.append(f"| before ({_commit(args.baseline)}) | {figures(before)} |")
    lines += [
        f"| {'after' if before else 'this checkout'} ({_commit(HERE)}) | {figures(runs)} |",
        f"| target | ≤ {ONCE_CPU:g} s | ≤ {ONCE_RSS_MB:g} MB | ≤ 1.5 × requests ÷ "
        f"{RATE:g} + 10 s | 0 429s, ≤ {RATE:g}/s |",
        "",
        f"Targets {'met' if met else '**not met**'}.",
    ]
    if before:
        pairs = list(zip(runs, before, strict=True))
        ratios = {
            key: statistics.median(after[key] / earlier[key] for after, earlier in pairs)
            for key in ("cpu", "peak_rss", "wall")
        }
        lines += [
            "",
            f"After ÷ before, median of the {len(pairs)} pairs (each measured in turn "
            f"against the same simulator): CPU {ratios['cpu']:.2f}×, peak RSS "
            f"{ratios['peak_rss']:.2f}×, wall {ratios['wall']:.2f}×.",
        ]
    lines.append("")
    return "\n".join(lines)


def _commit(checkout: Path) -> str:
    """The checkout's commit (``+`` when its code has changes), or its folder's name."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            # (the results the bench writes are no change to what it measures)
            ["git", "-C", str(checkout), "status", "--porcelain", "-uno", "--", ":!bench/*.md"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return checkout.name
    return commit + ("+" if changed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--stacks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job-duration", type=float, default=2.0)
    parser.add_argument(
        "--baseline", type=Path, default=None, help="a checkout to measure in turn with this one"
    )
    parser.add_argument("--out", type=Path, default=HERE / "bench" / "RESULTS.md")
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "agent" / "cli.py").is_file():
        parser.error(f"--baseline {args.baseline}: no agent/cli.py there")
    load_before = os.getloadavg()[0]
    runs: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        config = write_setup(Path(folder), args.rules, args.stacks)
        with SimulatorProcess(args.stacks, job_duration=args.job_duration) as sim:
            for _ in range(args.runs):
                if args.baseline is not None:
                    before.append(measure_once(config, sim, args.baseline.resolve()))
                    print(json.dumps({"before": before[-1]}), flush=True)
                runs.append(measure_once(config, sim))
                print(json.dumps(runs[-1]), flush=True)
    for key in runs[0]:
        print(f"{key}: median {median(runs, key):.2f}", flush=True)
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    text = report(args, runs, before, load)
    print(text)
    previous = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(text + "\n\n" + previous)


if __name__ == "__main__":
    main()
