"""Does the recommended rule generalize? Cross-validated NAB scores and generated series.

    python bench/nab/validate.py [NAB_DIR] [--rule FILE ...] [--sensitivities 0.5,1,2] [--write]

The rule's one knob, ``sensitivity``, is the only parameter chosen from data, and only on
training folds, among the grid's settings that raise no alert on any clean generated series
(bench/nab/synthetic.py; if none does, among all):

* leave-one-category-out: for each of the four categories, pick the sensitivity that scores
  best (standard profile) on the other three, then score the held-out category with it;
* leave-one-file-out: the same with each of the 36 files held out; the held-out files are
  pooled into one score;
* generated series: at the sensitivity chosen on all 36 files, which alerts each clean and
  each anomalous series raises (clean: none; anomalous: one, on time).

Every replay is the path ``stackwatch backtest --csv`` takes (``replay_series`` over the rule
file's rule). ``--write`` also writes bench/nab/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.anomaly.detectors import build_detector
from agent.evaluate.backtest import Row, read_csv, replay_series, series_rules
from agent.evaluate.loader import load_rules
from agent.evaluate.rules import Rule
from bench.nab.run import RULE
from bench.nab.scorer import (
    PROFILES,
    STANDARD,
    FileScore,
    data_files,
    default_nab_dir,
    file_key,
    load_windows,
    probationary_length,
    score_rows,
    total,
    window_rows,
)
from bench.nab.synthetic import (
    Synthetic,
    SyntheticResult,
    anomalous_series,
    clean_series,
    judge,
    stress_series,
)

SENSITIVITIES = (0.5, 0.7, 1.0, 1.4, 2.0)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def load_rule(path: Path) -> Rule:
    rules = series_rules([item.rule for item in load_rules([path])])
    if len(rules) != 1 or not isinstance(rules[0].condition, AnomalyCondition):
        raise SystemExit(f"{path}: expected exactly one anomaly rule with metric = 'series'")
    return rules[0]


def with_sensitivity(rule: Rule, sensitivity: float) -> Rule:
    condition = rule.condition.model_copy(update={"sensitivity": sensitivity})
    return rule.model_copy(update={"condition": condition})


def alert_rows(rule: Rule, rows: Sequence[Row]) -> list[int]:
    """Rows where the rule's alert goes to firing."""
    index = {
        row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at: i
        for i, row in enumerate(rows)
    }
    fired = []
    for transition in replay_series(rule, rows, series="-"):
        if transition["state"] == "firing":
            at = datetime.fromisoformat(transition["at"])
            fired.append(index[at if at.tzinfo else at.replace(tzinfo=UTC)])
    return fired


def _replay_file(task: tuple[Rule, Path]) -> tuple[list[int], float, int]:
    rule, path = task
    rows = read_csv(path)
    start = time.process_time()
    fired = alert_rows(rule, rows)
    return fired, time.process_time() - start, len(rows)


def sweep(
    rule: Rule, nab_dir: Path, sensitivities: Sequence[float]
) -> tuple[dict[float, dict[str, dict[str, FileScore]]], dict[float, float]]:
    """Per sensitivity: per profile, per file key, the file's score; and CPU µs per row."""
    paths = data_files(nab_dir)
    windows = load_windows(nab_dir)
    tasks = [(with_sensitivity(rule, s), p) for s in sensitivities for p in paths]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(_replay_file, tasks, chunksize=2))
    scores: dict[float, dict[str, dict[str, FileScore]]] = {
        s: {name: {} for name in PROFILES} for s in sensitivities
    }
    cpu: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])
    lengths: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for path in paths:
        key = file_key(nab_dir, path)
        times = [row.at for row in read_csv(path)]
        lengths[key] = (len(times), window_rows(times, windows[key]))
    for (tuned, path), (fired, seconds, rows) in zip(tasks, outcomes, strict=True):
        key = file_key(nab_dir, path)
        s = tuned.condition.sensitivity  # type: ignore[union-attr]
        n, spans = lengths[key]
        for name, profile in PROFILES.items():
            scores[s][name][key] = score_rows(n, spans, fired, profile)
        cpu[s][0] += seconds
        cpu[s][1] += rows
    return scores, {s: 1e6 * c / r for s, (c, r) in cpu.items()}


def category(key: str) -> str:
    return key.split("/")[0]


def best_sensitivity(
    per_file: dict[float, dict[str, FileScore]], keys: Sequence[str], allowed: Sequence[float]
) -> float:
    """The allowed sensitivity scoring best on ``keys``; ties go to the lowest."""
    return max(
        sorted(allowed), key=lambda s: round(total(per_file[s][k] for k in keys).normalized, 6)
    )


def detector_cpu(rule: Rule, nab_dir: Path) -> tuple[float, float]:
    """µs per point of the tracker (detector, filters, windows) and of its detector alone."""
    condition = rule.condition
    assert isinstance(condition, AnomalyCondition)
    tracked, detected, points = 0.0, 0.0, 0
    for path in data_files(nab_dir):
        rows = [(r.at.replace(tzinfo=UTC), r.value) for r in read_csv(path)]
        tracker = AnomalyTracker(condition)
        start = time.process_time()
        for at, value in rows:
            tracker.observe(at, value)
        tracked += time.process_time() - start
        detector = build_detector(condition)
        start = time.process_time()
        for at, value in rows:
            detector.step(at, value)
        detected += time.process_time() - start
        points += len(rows)
    return 1e6 * tracked / points, 1e6 * detected / points


def synthetic(rule: Rule, generated: Sequence[Synthetic] = ()) -> list[SyntheticResult]:
    condition = rule.condition
    assert isinstance(condition, AnomalyCondition)
    results = []
    for series in generated or [*clean_series(), *anomalous_series()]:
        rows = series.rows()
        learning = max(condition.warmup, probationary_length(len(rows)))
        results.append(judge(series, alert_rows(rule, rows), learning))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab_dir", nargs="?", type=Path, default=None)
    parser.add_argument(
        "--rule", type=Path, action="append", help="rule file (repeatable); default rule.toml"
    )
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS}")
    parser.add_argument(
        "--sensitivities",
        type=lambda text: tuple(float(x) for x in text.split(",")),
        default=SENSITIVITIES,
        help="comma-separated grid the folds choose from",
    )
    args = parser.parse_args(argv)
    nab_dir: Path = args.nab_dir or default_nab_dir()
    if not (nab_dir / "data").is_dir():
        parser.error(f"no NAB data folder at {nab_dir}")
    out: list[str] = []
    for rule_path in args.rule or [RULE]:
        report(rule_path, nab_dir, args.sensitivities, out)
        out.append("")
    if args.write:
        RESULTS.write_text(
            "# NAB generalization check (bench/nab/validate.py)\n\n" + "\n".join(out)
        )
        print(f"\nwrote {RESULTS}")
    return 0


def report(rule_path: Path, nab_dir: Path, grid: tuple[float, ...], out: list[str]) -> None:
    """Sweep, folds, profiles, generated series and CPU of one rule file, as Markdown."""
    rule = load_rule(rule_path)

    def say(line: str = "") -> None:
        print(line)
        out.append(line)

    scores, cpu = sweep(rule, nab_dir, grid)

    generated = {s: synthetic(with_sensitivity(rule, s)) for s in grid}
    clean_alerts = {s: sum(r.false_alerts for r in generated[s] if not r.anomaly) for s in grid}
    # The folds choose only among settings that stay quiet on every clean generated series.
    allowed = [s for s in grid if clean_alerts[s] == 0] or list(grid)
    standard = {s: scores[s][STANDARD.name] for s in grid}
    keys = sorted(next(iter(standard.values())))
    categories = sorted({category(k) for k in keys})

    say(f"# `{rule_path}`")
    say()
    say(
        f"rule `{rule_path.name}` (method {rule.condition.method}), "  # type: ignore[union-attr]
        f"{len(keys)} files, sensitivities {', '.join(map(str, grid))}"
    )
    say()
    say("## Sensitivity sweep (all files, standard profile)")
    say()
    say("| sensitivity | score | hit | missed | false | low-FP | low-FN | clean-series alerts |")
    say("|---|---|---|---|---|---|---|---|")
    for s in grid:
        t = total(standard[s].values())
        fp = total(scores[s]["reward_low_FP_rate"].values()).normalized
        fn = total(scores[s]["reward_low_FN_rate"].values()).normalized
        say(
            f"| {s} | {t.normalized:.2f} | {t.windows_hit} | {t.windows_missed} | "
            f"{t.false_alerts} | {fp:.2f} | {fn:.2f} | {clean_alerts[s]} |"
        )

    chosen = best_sensitivity(standard, keys, allowed)
    all_score = total(standard[chosen].values())
    say()
    say(f"chosen on all files: sensitivity {chosen}, standard {all_score.normalized:.2f}")
    say()
    say("## Leave one category out (sensitivity chosen on the other three)")
    say()
    say("| held-out category | files | chosen | held-out score | all-files fit on it | gap |")
    say("|---|---|---|---|---|---|")
    held_scores = []
    for held in categories:
        train = [k for k in keys if category(k) != held]
        test = [k for k in keys if category(k) == held]
        s = best_sensitivity(standard, train, allowed)
        part = total(standard[s][k] for k in test).normalized
        fitted = total(standard[chosen][k] for k in test).normalized
        held_scores.append(part)
        say(
            f"| {held} | {len(test)} | {s} | {part:.2f} | {fitted:.2f} | "
            f"{part - all_score.normalized:+.2f} |"
        )
    say()
    say(
        f"held-out categories: mean {statistics.mean(held_scores):.2f}, "
        f"min {min(held_scores):.2f}, max {max(held_scores):.2f}, "
        f"spread {max(held_scores) - min(held_scores):.2f}, "
        f"largest gap to all-files {max(abs(h - all_score.normalized) for h in held_scores):.2f}"
    )

    say()
    say("## Leave one file out (sensitivity chosen on the other 35)")
    say()
    pooled = FileScore()
    choices: dict[float, int] = defaultdict(int)
    per_file = []
    for held in keys:
        s = best_sensitivity(standard, [k for k in keys if k != held], allowed)
        choices[s] += 1
        pooled = pooled + standard[s][held]
        per_file.append(standard[s][held].normalized)
    say(
        f"pooled held-out score {pooled.normalized:.2f} (hit {pooled.windows_hit}, missed "
        f"{pooled.windows_missed}, false {pooled.false_alerts}); chosen sensitivities "
        + ", ".join(f"{s}×{n}" for s, n in sorted(choices.items()))
    )
    quartiles = statistics.quantiles(per_file, n=4)
    say(
        f"per held-out file: median {statistics.median(per_file):.2f}, quartiles "
        f"{quartiles[0]:.2f}–{quartiles[2]:.2f}, min {min(per_file):.2f}"
    )

    say()
    say(f"## Profiles at sensitivity {chosen} (all files)")
    say()
    for name in PROFILES:
        say(f"- {name}: {total(scores[chosen][name].values()).normalized:.2f}")

    say()
    say(f"## Generated series at sensitivity {chosen}")
    say()
    say("| series | anomaly | alert on time | false alerts | ok |")
    say("|---|---|---|---|---|")
    results = generated[chosen]
    for r in results:
        say(
            f"| {r.name} | {'yes' if r.anomaly else 'no'} | "
            f"{'yes' if r.on_time else ('no' if r.anomaly else '-')} | {r.false_alerts} | "
            f"{'ok' if r.ok else 'FAIL'} |"
        )
    say()
    say(
        f"alerts on clean series: {clean_alerts[chosen]}; "
        f"{sum(r.ok for r in results)}/{len(results)} series as expected"
    )
    say()
    say(
        f"Stress series (clean, reported, not gated), alerts at sensitivity {chosen}: "
        + "; ".join(
            f"{r.name} {r.false_alerts}"
            for r in synthetic(with_sensitivity(rule, chosen), stress_series())
        )
    )

    say()
    say("## CPU per point")
    say()
    say(
        f"- whole replay (rule engine state machine + tracker), sensitivity {chosen}: "
        f"{cpu[chosen]:.1f} µs"
    )
    tracked, detected = detector_cpu(with_sensitivity(rule, chosen), nab_dir)
    say(f"- tracker alone (detector, filters, windows): {tracked:.1f} µs")
    say(f"- detector alone (its step): {detected:.1f} µs")
    # CPU time per point grows with the machine's load (shared caches, frequency): say it.
    say(f"- load average (1 min) when measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    raise SystemExit(main())
