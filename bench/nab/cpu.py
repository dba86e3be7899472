"""CPU per point of a rule's detector, measured two ways.

    python -m bench.nab.cpu [NAB_DIR] [--rule FILE] [--set KNOB=VALUE ...] [--repeats 5]
                            [--instructions]

* CPU time (``time.process_time``) of the whole replay, of the tracker and of the detector's
  step alone over the 36 files: the median of ``--repeats`` runs, with the load average
  before and after. On this 2-core VM, other processes' load inflates it by up to 3×
  (shared caches and cores), so it is honest only when the machine is quiet.
* ``--instructions``: instructions the detector's steps execute per point, counted by
  ``valgrind --tool=cachegrind`` (a run with the steps minus one without), which load does
  not change; converted to µs with ``INSTRUCTIONS_PER_US``, this machine's rate measured on
  the same workload while it was quiet (``--calibrate`` measures it again).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.anomaly.detectors import build_detector
from agent.evaluate.backtest import Row, read_csv
from agent.evaluate.rules import Rule
from bench.nab.folds import (
    Setting,
    alert_rows,
    apply,
    default_grid,
    detector_constants,
    load_rule,
)
from bench.nab.run import RULE
from bench.nab.scorer import data_files, default_nab_dir

#: instructions per µs of CPU time of the detector's step, measured with --calibrate on
#: 2026-12-02: 11 600 at load 1.2 (11.3 µs and 131 000 instructions per point) and 12 300
#: at load 3.9 (10.7 µs) on 2 cores.
INSTRUCTIONS_PER_US = 12_000
#: the detector's budget per point (issue 14).
BUDGET_US = 20.0

Points = list[list[tuple[datetime, float]]]


def _points(csv_rows: Sequence[Sequence[Row]]) -> Points:
    """Each file's rows as the (time, value) points a detector steps through."""
    return [[(r.at.replace(tzinfo=UTC), r.value) for r in rows] for rows in csv_rows]


def _step_seconds(condition: AnomalyCondition, files: Points) -> float:
    seconds = 0.0
    for rows in files:
        detector = build_detector(condition)
        start = time.process_time()
        for at, value in rows:
            detector.step(at, value)
        seconds += time.process_time() - start
    return seconds


def cpu_per_point(
    rule: Rule, setting: Setting, nab_dir: Path, repeats: int = 5
) -> dict[str, float]:
    """Median µs per point of the replay, the tracker and the detector, and the load."""
    tuned = apply(rule, setting)
    condition = tuned.condition
    assert isinstance(condition, AnomalyCondition)
    paths = data_files(nab_dir)
    csv_rows = [read_csv(p) for p in paths]
    files = _points(csv_rows)
    n = sum(map(len, files))
    runs: dict[str, list[float]] = {"replay": [], "tracker": [], "detector": []}
    before = os.getloadavg()[0]
    with detector_constants(condition.method, setting):
        for _ in range(repeats):
            start = time.process_time()
            for rows in csv_rows:
                alert_rows(tuned, rows)
            runs["replay"].append(time.process_time() - start)
            seconds = 0.0
            for points in files:
                tracker = AnomalyTracker(condition)
                start = time.process_time()
                for at, value in points:
                    tracker.observe(at, value)
                seconds += time.process_time() - start
            runs["tracker"].append(seconds)
            runs["detector"].append(_step_seconds(condition, files))
    result = {name: 1e6 * statistics.median(values) / n for name, values in runs.items()}
    return {**result, "load_before": before, "load_after": os.getloadavg()[0]}


def _child_args(rule_path: Path, setting: Setting, nab_dir: Path) -> list[str]:
    sets = [f"--set={name}={value}" for name, value in setting]
    return [sys.executable, "-m", "bench.nab.cpu", str(nab_dir), f"--rule={rule_path}", *sets]


def instructions_per_point(rule_path: Path, setting: Setting, nab_dir: Path) -> float | None:
    """Instructions of the detector's steps per point (cachegrind); None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    counts = []
    for mode in ("--child=step", "--child=load"):
        command = [
            valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            *_child_args(rule_path, setting, nab_dir), mode,
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
        )
        match = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if match is None:
            raise RuntimeError(f"no instruction count in cachegrind's output:\n{done.stderr}")
        counts.append(int(match.group(1).replace(",", "")))
    points = sum(len(read_csv(p)) for p in data_files(nab_dir))
    return (counts[0] - counts[1]) / points


def parse_set(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"expected KNOB=VALUE, got {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab_dir", nargs="?", type=Path, default=None)
    parser.add_argument("--rule", type=Path, default=RULE)
    parser.add_argument("--set", type=parse_set, action="append", default=[], dest="setting")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count with cachegrind")
    parser.add_argument("--calibrate", action="store_true", help="measure INSTRUCTIONS_PER_US")
    parser.add_argument("--child", choices=("step", "load"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    nab_dir: Path = args.nab_dir or default_nab_dir()
    rule = load_rule(args.rule)
    setting: Setting = tuple(args.setting)
    knobs = default_grid(rule.condition.method)  # type: ignore[union-attr]
    unknown = [name for name, _ in setting if name not in knobs]
    if unknown:
        parser.error(f"unknown knob {unknown[0]!r} for this rule; knobs: {', '.join(knobs)}")
    if args.child:
        # Under cachegrind: load everything, then step the detectors (or not).
        tuned = apply(rule, setting)
        assert isinstance(tuned.condition, AnomalyCondition)
        files = _points([read_csv(p) for p in data_files(nab_dir)])
        with detector_constants(tuned.condition.method, setting):
            if args.child == "step":
                _step_seconds(tuned.condition, files)
        return 0
    figures = cpu_per_point(rule, setting, nab_dir, args.repeats)
    print(
        f"µs per point, median of {args.repeats}: replay {figures['replay']:.1f}, "
        f"tracker {figures['tracker']:.1f}, detector {figures['detector']:.1f} "
        f"(load {figures['load_before']:.1f} → {figures['load_after']:.1f} "
        f"on {os.cpu_count()} cores)"
    )
    if args.instructions or args.calibrate:
        count = instructions_per_point(args.rule, setting, nab_dir)
        if count is None:
            parser.error("valgrind is not installed")
        print(
            f"detector: {count:,.0f} instructions per point = {count / INSTRUCTIONS_PER_US:.1f} µs "
            f"at {INSTRUCTIONS_PER_US:,} instructions/µs"
        )
        if args.calibrate:
            print(f"rate of this run: {count / figures['detector']:,.0f} instructions/µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
