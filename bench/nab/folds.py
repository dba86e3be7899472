"""The grid of data-chosen knobs, its replays, and the choice a training fold makes from it.

A *setting* gives every knob of the grid one value. Rule knobs (``sensitivity``,
``recovery_window``, ``history``) are fields of the rule's condition; detector knobs are
module constants of the rule's detector (``tolerated`` is ``extremes.TOLERATED``), set in the
process that replays and restored after it, so a fold can choose them like the rule's own.
Every replay is the path ``stackwatch backtest --csv`` takes (``replay_series``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType

from agent.durations import parse_duration
from agent.evaluate.anomaly import AnomalyCondition
from agent.evaluate.anomaly import extremes as extremes_module
from agent.evaluate.backtest import Row, read_csv, replay_series, series_rules
from agent.evaluate.loader import load_rules
from agent.evaluate.rules import Rule
from bench.nab.scorer import (
    PROFILES,
    STANDARD,
    FileScore,
    data_files,
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
    long_clean_series,
)

#: rule knob → how its values are read, and the values a fold chooses among.
RULE_KNOBS: dict[str, tuple[Callable[[str], object], tuple[str, ...]]] = {
    "sensitivity": (float, ("0.5", "0.7", "1.0", "1.4", "2.0")),
    "recovery_window": (parse_duration, ("1h", "3h", "6h", "12h")),
    # Eight and fourteen days of 5-minute points: a weekly pattern seen once, or twice.
    "history": (int, ("2304", "4032")),
}
#: per method, its detector constants a fold chooses: knob → (module, constant, values).
DETECTOR_KNOBS: dict[str, dict[str, tuple[ModuleType, str, tuple[str, ...]]]] = {
    "extremes": {"tolerated": (extremes_module, "TOLERATED", ("3", "6", "12"))},
}

Setting = tuple[tuple[str, str], ...]


def load_rule(path: Path) -> Rule:
    rules = series_rules([item.rule for item in load_rules([path])])
    if len(rules) != 1 or not isinstance(rules[0].condition, AnomalyCondition):
        raise SystemExit(f"{path}: expected exactly one anomaly rule with metric = 'series'")
    return rules[0]


def default_grid(method: str) -> dict[str, tuple[str, ...]]:
    rule = {name: values for name, (_, values) in RULE_KNOBS.items()}
    detector = {name: values for name, (_, _, values) in DETECTOR_KNOBS.get(method, {}).items()}
    return {**rule, **detector}


def settings(grid: dict[str, tuple[str, ...]]) -> list[Setting]:
    """Every combination, in grid order (ties between settings go to the earlier one)."""
    names = list(grid)
    return [tuple(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def describe(setting: Setting) -> str:
    return ", ".join(f"{name} {value}" for name, value in setting)


def apply(rule: Rule, setting: Setting) -> Rule:
    """The rule with the setting's rule knobs."""
    updates = {name: RULE_KNOBS[name][0](value) for name, value in setting if name in RULE_KNOBS}
    condition = rule.condition.model_copy(update=updates)
    return rule.model_copy(update={"condition": condition})


@contextmanager
def detector_constants(method: str, setting: Setting) -> Iterator[None]:
    """The setting's detector knobs in force, restored afterwards."""
    knobs = DETECTOR_KNOBS.get(method, {})
    saved = []
    for name, value in setting:
        if name in knobs:
            module, constant, _ = knobs[name]
            saved.append((module, constant, getattr(module, constant)))
            setattr(module, constant, type(getattr(module, constant))(value))
    try:
        yield
    finally:
        for module, constant, old in saved:
            setattr(module, constant, old)


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


@cache
def generated() -> list[Synthetic]:
    """The generated series, clean ones (two weeks, then eight) first; made once per process."""
    return [*clean_series(), *long_clean_series(), *anomalous_series()]


@cache
def _generated_rows() -> list[list[Row]]:
    return [series.rows() for series in generated()]


def _replay(task: tuple[Rule, Setting, Path | int]) -> list[int]:
    """Alert rows of one NAB file (a path) or one generated series (its index)."""
    rule, setting, source = task
    tuned = apply(rule, setting)
    rows = read_csv(source) if isinstance(source, Path) else _generated_rows()[source]
    with detector_constants(tuned.condition.method, setting):  # type: ignore[union-attr]
        return alert_rows(tuned, rows)


class Sweep:
    """Every setting's score per profile and file, and what it raises on generated series.

    ``gates`` are the settings a fold may choose among: ``exact``, those raising exactly the
    alerts they should on every generated series (on a clean one none in two weeks and at
    most one in eight, on an anomalous one one on time), and the looser ``quiet``, those
    within that allowance on the clean ones (:meth:`within_allowance`). When no setting
    passes a gate, its folds choose among all (:meth:`choices`).
    """

    def __init__(self, rule: Rule, nab_dir: Path, grid: dict[str, tuple[str, ...]]) -> None:
        paths = data_files(nab_dir)
        windows = load_windows(nab_dir)
        self.settings = settings(grid)
        series = generated()
        tasks: list[tuple[Rule, Setting, Path | int]] = [
            (rule, s, p) for s in self.settings for p in paths
        ]
        tasks += [(rule, s, i) for s in self.settings for i in range(len(series))]
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            outcomes = iter(list(pool.map(_replay, tasks, chunksize=4)))
        self.keys = [file_key(nab_dir, p) for p in paths]
        spans = {}
        for key, path in zip(self.keys, paths, strict=True):
            times = [row.at for row in read_csv(path)]
            spans[key] = (len(times), window_rows(times, windows[key]))
        self.scores: dict[Setting, dict[str, dict[str, FileScore]]] = {}
        for s in self.settings:
            per_profile: dict[str, dict[str, FileScore]] = {name: {} for name in PROFILES}
            for key in self.keys:
                fired = next(outcomes)
                n, windows_of = spans[key]
                for name, profile in PROFILES.items():
                    per_profile[name][key] = score_rows(n, windows_of, fired, profile)
            self.scores[s] = per_profile
        self.generated: dict[Setting, list[SyntheticResult]] = {}
        self.clean_alerts: dict[Setting, int] = {}
        self.as_expected: dict[Setting, int] = {}
        warmup = rule.condition.warmup  # type: ignore[union-attr]
        for s in self.settings:
            results = [
                judge(one, next(outcomes), max(warmup, probationary_length(len(rows))))
                for one, rows in zip(series, _generated_rows(), strict=True)
            ]
            self.generated[s] = results
            self.clean_alerts[s] = sum(r.false_alerts for r in results if not r.anomaly)
            self.as_expected[s] = sum(r.ok for r in results)
        self.gates = {
            "exact": [s for s in self.settings if self.as_expected[s] == len(series)],
            "quiet": [s for s in self.settings if self.within_allowance(s)],
        }

    def within_allowance(self, setting: Setting) -> bool:
        """No clean generated series raises more false alerts than it allows."""
        return all(r.quiet for r in self.generated[setting] if not r.anomaly)

    def score(
        self, setting: Setting, keys: Sequence[str], profile: str = STANDARD.name
    ) -> FileScore:
        return total(self.scores[setting][profile][k] for k in keys)

    def choices(self, gate: str) -> list[Setting]:
        return self.gates[gate] or self.settings

    def best(self, keys: Sequence[str], gate: str) -> Setting:
        """The setting passing ``gate`` that scores best (standard profile) on ``keys``."""
        return max(self.choices(gate), key=lambda s: round(self.score(s, keys).normalized, 6))
