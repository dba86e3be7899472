"""Does the recommended rule generalize? Cross-validated NAB scores and generated series.

    python -m bench.nab.validate [NAB_DIR] [--rule FILE ...] [--grid KNOB=V1,V2 ...]
                                 [--instructions] [--write]

Every knob of the rule that was set by looking at the data is chosen from a small grid
(bench/nab/folds.py: ``sensitivity``, ``recovery_window``, ``history`` and, for method
extremes, its ``tolerated`` extremes), only on training folds, and only among the settings
that raise no alert on any clean generated series in two weeks and at most one in eight, and
one, on time, on each anomalous one (bench/nab/synthetic.py; if none does, among the quiet
ones, else among all):

* leave-one-category-out: for each of the four categories, pick the setting that scores
  best (standard profile) on the other three, then score the held-out category with it.
  Each held-out score is compared with the total all-files score and with the category's
  in-sample score (the setting chosen on all 36 files);
* leave-one-file-out: the same with each of the 36 files held out; the held-out files are
  pooled into one score;
* generated series: at the setting chosen on all 36 files, which alerts each clean and
  each anomalous series raises (clean: none, or at most one in eight weeks; anomalous:
  one, on time).

Every replay is the path ``stackwatch backtest --csv`` takes (``replay_series`` over the rule
file's rule), spread over the machine's cores. ``--instructions`` adds the detector's
instruction count per point (bench/nab/cpu.py). ``--write`` also writes bench/nab/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.evaluate.anomaly import AnomalyCondition
from agent.evaluate.rules import Rule
from bench.nab.cpu import INSTRUCTIONS_PER_US, cpu_per_point, instructions_per_point
from bench.nab.folds import (
    Setting,
    Sweep,
    alert_rows,
    apply,
    default_grid,
    describe,
    detector_constants,
    load_rule,
)
from bench.nab.run import RULE
from bench.nab.scorer import PROFILES, FileScore, default_nab_dir, probationary_length
from bench.nab.synthetic import Synthetic, SyntheticResult, judge, stress_series

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def category(key: str) -> str:
    return key.split("/")[0]


def synthetic(rule: Rule, setting: Setting, generated: list[Synthetic]) -> list[SyntheticResult]:
    tuned = apply(rule, setting)
    condition = tuned.condition
    assert isinstance(condition, AnomalyCondition)
    results = []
    with detector_constants(condition.method, setting):
        for series in generated:
            rows = series.rows()
            learning = max(condition.warmup, probationary_length(len(rows)))
            results.append(judge(series, alert_rows(tuned, rows), learning))
    return results


def parse_grid(text: str) -> tuple[str, tuple[str, ...]]:
    name, _, values = text.partition("=")
    if not values:
        raise argparse.ArgumentTypeError(f"expected KNOB=V1,V2,..., got {text!r}")
    return name, tuple(values.split(","))


def cross_validate(sweep: Sweep, gate: str, say: Callable[..., None]) -> Setting:
    """Leave-one-category-out and leave-one-file-out with the folds choosing within ``gate``.

    Returns the setting chosen on all files.
    """
    keys = sweep.keys
    categories = sorted({category(k) for k in keys})
    level = "##" if gate == "exact" else "####"
    chosen = sweep.best(keys, gate)
    all_score = sweep.score(chosen, keys)
    say()
    say(
        f"chosen on all files: {describe(chosen)}: standard {all_score.normalized:.2f} "
        f"(hit {all_score.windows_hit}, missed {all_score.windows_missed}, "
        f"false {all_score.false_alerts})"
    )

    say()
    say(f"{level} Leave one category out (every knob chosen on the other three)")
    say()
    say(
        "| held-out category | files | chosen on the other three | held-out score "
        "| in-sample (all-files choice) | gap to in-sample | gap to all-files total |"
    )
    say("|---|---|---|---|---|---|---|")
    held_scores, in_gaps = [], []
    for held in categories:
        train = [k for k in keys if category(k) != held]
        test = [k for k in keys if category(k) == held]
        s = sweep.best(train, gate)
        part = sweep.score(s, test).normalized
        fitted = sweep.score(chosen, test).normalized
        held_scores.append(part)
        in_gaps.append(part - fitted)
        say(
            f"| {held} | {len(test)} | {describe(s)} | {part:.2f} | {fitted:.2f} | "
            f"{part - fitted:+.2f} | {part - all_score.normalized:+.2f} |"
        )
    say()
    say(
        f"held-out categories: mean {statistics.mean(held_scores):.2f}, "
        f"min {min(held_scores):.2f}, max {max(held_scores):.2f}, "
        f"spread {max(held_scores) - min(held_scores):.2f}; gap to in-sample: mean "
        f"{statistics.mean(in_gaps):+.2f}, worst {min(in_gaps):+.2f}; largest gap to the "
        f"all-files total {max(abs(h - all_score.normalized) for h in held_scores):.2f}"
    )

    say()
    say(f"{level} Leave one file out (every knob chosen on the other 35)")
    say()
    pooled = FileScore()
    by_category: dict[str, FileScore] = {c: FileScore() for c in categories}
    choices: Counter[Setting] = Counter()
    per_file = []
    for held in keys:
        s = sweep.best([k for k in keys if k != held], gate)
        choices[s] += 1
        score = sweep.scores[s]["standard"][held]
        pooled = pooled + score
        by_category[category(held)] = by_category[category(held)] + score
        per_file.append(score.normalized)
    say(
        f"pooled held-out score {pooled.normalized:.2f} (hit {pooled.windows_hit}, missed "
        f"{pooled.windows_missed}, false {pooled.false_alerts}); gap to in-sample "
        f"{pooled.normalized - all_score.normalized:+.2f}"
    )
    say()
    members = {c: [k for k in keys if category(k) == c] for c in categories}
    say(
        "pooled per category: "
        + "; ".join(
            f"{c} {by_category[c].normalized:.2f} "
            f"(in-sample {sweep.score(chosen, members[c]).normalized:.2f})"
            for c in categories
        )
    )
    say()
    say("chosen settings: " + "; ".join(f"{describe(s)} ×{n}" for s, n in choices.most_common()))
    quartiles = statistics.quantiles(per_file, n=4)
    say()
    say(
        f"per held-out file: median {statistics.median(per_file):.2f}, quartiles "
        f"{quartiles[0]:.2f}–{quartiles[2]:.2f}, min {min(per_file):.2f}"
    )
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nab_dir", nargs="?", type=Path, default=None)
    parser.add_argument(
        "--rule", type=Path, action="append", help="rule file (repeatable); default rule.toml"
    )
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS}")
    parser.add_argument(
        "--grid",
        type=parse_grid,
        action="append",
        default=[],
        help="KNOB=V1,V2,... replaces that knob's default values (repeatable)",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count the detector's instructions"
    )
    args = parser.parse_args(argv)
    nab_dir: Path = args.nab_dir or default_nab_dir()
    if not (nab_dir / "data").is_dir():
        parser.error(f"no NAB data folder at {nab_dir}")
    out: list[str] = []
    for rule_path in args.rule or [RULE]:
        rule = load_rule(rule_path)
        grid = default_grid(rule.condition.method)  # type: ignore[union-attr]
        for name, values in args.grid:
            if name not in grid:
                parser.error(f"unknown knob {name!r} for this rule; knobs: {', '.join(grid)}")
            grid[name] = values
        report(rule_path, rule, nab_dir, grid, args.instructions, out)
        out.append("")
    if args.write:
        command = " ".join(
            ["python -m bench.nab.validate", *(sys.argv[1:] if argv is None else argv)]
        )
        RESULTS.write_text(
            f"# NAB generalization check (bench/nab/validate.py)\n\n`{command}`\n\n"
            + "\n".join(out)
        )
        print(f"\nwrote {RESULTS}")
    return 0


def report(
    rule_path: Path,
    rule: Rule,
    nab_dir: Path,
    grid: dict[str, tuple[str, ...]],
    instructions: bool,
    out: list[str],
) -> None:
    """Grid, folds, profiles, generated series and CPU of one rule file, as Markdown."""

    def say(line: str = "") -> None:
        print(line)
        out.append(line)

    started = time.monotonic()
    sweep = Sweep(rule, nab_dir, grid)
    keys = sweep.keys
    say(f"# `{rule_path}`")
    say()
    say(
        f"rule `{rule_path.name}` (method {rule.condition.method}), "  # type: ignore[union-attr]
        f"{len(keys)} files; grid: "
        + "; ".join(f"{name} {', '.join(values)}" for name, values in grid.items())
        + f" ({len(sweep.settings)} settings, {len(sweep.gates['exact'])} of them raising "
        "exactly the alerts they should on every generated series"
        + ("" if sweep.gates["exact"] else ", so the folds choose among all")
        + ")"
    )

    def row(s: Setting) -> str:
        t = sweep.score(s, keys)
        fp = sweep.score(s, keys, "reward_low_FP_rate").normalized
        fn = sweep.score(s, keys, "reward_low_FN_rate").normalized
        return (
            f"| {describe(s)} | {t.normalized:.2f} | {t.windows_hit} | {t.windows_missed} | "
            f"{t.false_alerts} | {fp:.2f} | {fn:.2f} | {sweep.clean_alerts[s]} | "
            f"{sweep.as_expected[s]} |"
        )

    say()
    say("## Best settings on all files (standard profile) among those the folds choose from")
    say()
    say(
        "| setting | score | hit | missed | false | low-FP | low-FN | clean-series alerts "
        "| generated series as expected |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    ranked = sorted(sweep.choices("exact"), key=lambda s: -sweep.score(s, keys).normalized)
    for s in ranked[:8]:
        say(row(s))
    chosen = cross_validate(sweep, "exact", say)
    say()
    say(
        "### The same folds choosing among the settings merely quiet on the clean series "
        f"({len(sweep.gates['quiet'])} settings{'' if sweep.gates['quiet'] else ': none, so all'})"
    )
    cross_validate(sweep, "quiet", say)

    say()
    say(f"## Profiles at {describe(chosen)} (all files)")
    say()
    for name in PROFILES:
        say(f"- {name}: {sweep.score(chosen, keys, name).normalized:.2f}")

    say()
    say(f"## Generated series at {describe(chosen)}")
    say()
    say("| series | anomaly | alert on time | false alerts | allowed | ok |")
    say("|---|---|---|---|---|---|")
    results = sweep.generated[chosen]
    for r in results:
        say(
            f"| {r.name} | {'yes' if r.anomaly else 'no'} | "
            f"{'yes' if r.on_time else ('no' if r.anomaly else '-')} | {r.false_alerts} | "
            f"{r.allowed} | {'ok' if r.ok else 'FAIL'} |"
        )
    say()
    say(
        f"alerts on clean series: {sum(r.false_alerts for r in results if not r.anomaly)}; "
        f"{sum(r.ok for r in results)}/{len(results)} series as expected"
    )
    say()
    say(
        "Stress series (clean, reported, not gated), alerts: "
        + "; ".join(f"{r.name} {r.false_alerts}" for r in synthetic(rule, chosen, stress_series()))
    )
    minutes = (time.monotonic() - started) / 60

    say()
    say(f"## CPU per point at {describe(chosen)}")
    say()
    cpu = cpu_per_point(rule, chosen, nab_dir)
    say(
        f"- CPU time, median of 5 runs: whole replay (rule engine state machine + tracker) "
        f"{cpu['replay']:.1f} µs, tracker (detector, filters, windows) {cpu['tracker']:.1f} µs, "
        f"detector alone (its step) {cpu['detector']:.1f} µs"
    )
    # CPU time per point grows with the machine's load (shared caches, cores): say it.
    say(
        f"- load average (1 min) when measured: {cpu['load_before']:.1f} before, "
        f"{cpu['load_after']:.1f} after, on {os.cpu_count()} cores"
    )
    if instructions:
        count = instructions_per_point(rule_path, chosen, nab_dir)
        if count is not None:
            say(
                f"- detector's instructions (cachegrind, independent of load): {count:,.0f} "
                f"per point = {count / INSTRUCTIONS_PER_US:.1f} µs at the "
                f"{INSTRUCTIONS_PER_US:,} instructions/µs measured on the quiet machine"
            )
    say(f"- validation run time (grid, folds, generated series): {minutes:.1f} min")


if __name__ == "__main__":
    raise SystemExit(main())
