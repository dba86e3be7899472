"""Backtest the recommended anomaly rule over the NAB subset and score it.

    python bench/nab/run.py [NAB_DIR] [--rule bench/nab/rule.toml] [--loco] [--files-detail]

Alerts are the rule's transitions to ``firing`` from ``agent.evaluate.backtest.backtest_csv``,
the same path the daemon's own backtests take. CPU time covers the whole backtest (CSV
parsing, rule engine state machine and detector), divided by the number of rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the repository root importable for ``bench.nab``.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.evaluate.backtest import backtest_csv
from bench.nab.scorer import (
    PROFILES,
    STANDARD,
    FileScore,
    data_files,
    default_nab_dir,
    file_key,
    load_windows,
    read_series,
    score_rows,
    total,
    window_rows,
)

RULE = Path(__file__).resolve().parent / "rule.toml"


def run_alerts(rule: Path, nab_dir: Path) -> tuple[dict[str, list[datetime]], float, int]:
    """Firing transitions per file key, CPU seconds spent, rows replayed."""
    paths = data_files(nab_dir)
    alerts: dict[str, list[datetime]] = {file_key(nab_dir, p): [] for p in paths}
    by_path = {str(p): file_key(nab_dir, p) for p in paths}
    start = time.process_time()
    for transition in backtest_csv(rule, paths):
        if transition["state"] == "firing":
            at = datetime.fromisoformat(transition["at"]).replace(tzinfo=None)
            alerts[by_path[transition["series"]]].append(at)
    cpu = time.process_time() - start
    rows = sum(len(read_series(p)[0]) for p in paths)
    return alerts, cpu, rows


def score_all(
    nab_dir: Path, alerts: dict[str, list[datetime]], profile_name: str = STANDARD.name
) -> dict[str, FileScore]:
    windows = load_windows(nab_dir)
    profile = PROFILES[profile_name]
    scores: dict[str, FileScore] = {}
    for path in data_files(nab_dir):
        key = file_key(nab_dir, path)
        times, _ = read_series(path)
        index = {t: i for i, t in enumerate(times)}
        rows = [index[t] for t in alerts.get(key, [])]
        scores[key] = score_rows(len(times), window_rows(times, windows[key]), rows, profile)
    return scores


def by_category(scores: dict[str, FileScore]) -> dict[str, FileScore]:
    groups: dict[str, list[FileScore]] = defaultdict(list)
    for key, score in scores.items():
        groups[key.split("/")[0]].append(score)
    return {name: total(group) for name, group in sorted(groups.items())}


def print_table(title: str, rows: dict[str, FileScore]) -> None:
    print(f"\n{title}")
    print(f"{'':34s} {'score':>7s} {'hit':>4s} {'missed':>6s} {'false':>5s} {'files':>5s}")
    for name, s in rows.items():
        print(
            f"{name:34s} {s.normalized:7.2f} {s.windows_hit:4d} {s.windows_missed:6d} "
            f"{s.false_alerts:5d} {s.files:5d}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab_dir", nargs="?", type=Path, default=None)
    parser.add_argument("--rule", type=Path, default=RULE)
    parser.add_argument("--files-detail", action="store_true", help="one line per file")
    args = parser.parse_args(argv)
    nab_dir: Path = args.nab_dir or default_nab_dir()
    if not (nab_dir / "data").is_dir():
        parser.error(f"no NAB data folder at {nab_dir}")

    alerts, cpu, rows = run_alerts(args.rule, nab_dir)
    standard = score_all(nab_dir, alerts)
    overall = total(standard.values())
    print(f"rule: {args.rule}")
    print(f"data: {nab_dir} ({len(standard)} files, {rows} rows)")
    print(
        f"normalized standard score: {overall.normalized:.2f}  "
        f"(windows hit {overall.windows_hit}, missed {overall.windows_missed}, "
        f"false alerts {overall.false_alerts})"
    )
    for name in PROFILES:
        if name != STANDARD.name:
            other = total(score_all(nab_dir, alerts, name).values())
            print(f"normalized {name} score: {other.normalized:.2f}")
    print(f"CPU: {1e6 * cpu / rows:.1f} µs per point ({cpu:.2f} s for the whole backtest)")
    print_table("per category (standard profile)", {**by_category(standard), "all": overall})
    if args.files_detail:
        print_table("per file (standard profile)", standard)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
