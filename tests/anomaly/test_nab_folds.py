"""The validation grid: settings, their knobs, and the gates the folds choose within."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from agent.evaluate.anomaly import extremes
from bench.nab.folds import Sweep, apply, describe, detector_constants, load_rule, settings
from bench.nab.run import RULE


def test_settings_cover_the_grid_in_order() -> None:
    grid = {"sensitivity": ("1.0", "2.0"), "recovery_window": ("6h",)}
    assert settings(grid) == [
        (("sensitivity", "1.0"), ("recovery_window", "6h")),
        (("sensitivity", "2.0"), ("recovery_window", "6h")),
    ]
    assert describe(settings(grid)[1]) == "sensitivity 2.0, recovery_window 6h"


def test_apply_sets_the_rule_knobs_and_leaves_the_rule_alone() -> None:
    rule = load_rule(RULE)
    tuned = apply(rule, (("sensitivity", "1.4"), ("recovery_window", "1h"), ("tolerated", "3")))
    assert tuned.condition.sensitivity == 1.4  # type: ignore[union-attr]
    assert tuned.condition.recovery_window == timedelta(hours=1)  # type: ignore[union-attr]
    assert rule.condition.recovery_window == timedelta(hours=6)  # type: ignore[union-attr]


def test_detector_constants_hold_inside_and_are_restored() -> None:
    before = extremes.TOLERATED
    other = before + 5
    with detector_constants("extremes", (("sensitivity", "1.0"), ("tolerated", str(other)))):
        assert other == extremes.TOLERATED
    assert before == extremes.TOLERATED
    with detector_constants("evt", (("tolerated", str(other)),)):  # not a knob of evt
        assert before == extremes.TOLERATED


def _nab_dir(root: Path) -> Path:
    """Two categories of one file each; the second has a labelled level shift."""
    rng = random.Random(7)
    start = datetime(2024, 1, 1)
    windows = {}
    for name, shift_at in (("calm/flat.csv", None), ("busy/shift.csv", 1500)):
        path = root / "data" / name
        path.parent.mkdir(parents=True)
        lines = ["timestamp,value"]
        for i in range(2000):
            value = rng.gauss(50.0, 2.0) + (30.0 if shift_at and i >= shift_at else 0.0)
            lines.append(f"{start + timedelta(minutes=5 * i):%Y-%m-%d %H:%M:%S},{value:.3f}")
        path.write_text("\n".join(lines) + "\n")
        windows[name] = []
        if shift_at:
            span = (
                start + timedelta(minutes=5 * (shift_at - 20)),
                start + timedelta(minutes=5 * (shift_at + 80)),
            )
            windows[name] = [[f"{t:%Y-%m-%d %H:%M:%S}" for t in span]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def test_folds_choose_only_settings_that_raise_the_alerts_they_should(tmp_path: Path) -> None:
    nab_dir = _nab_dir(tmp_path)
    grid = {"sensitivity": ("1.0", "2.0"), "recovery_window": ("6h",), "tolerated": ("6",)}
    sweep = Sweep(load_rule(RULE), nab_dir, grid)
    quiet, loud = settings(grid)
    assert sweep.keys == ["busy/shift.csv", "calm/flat.csv"]
    # At sensitivity 2 the rule alerts on clean generated series more than a good rule may:
    # no fold may choose it.
    assert sweep.within_allowance(quiet) and not sweep.within_allowance(loud)
    assert sweep.clean_alerts[quiet] < sweep.clean_alerts[loud]
    assert sweep.gates == {"exact": [quiet], "quiet": [quiet]}
    assert sweep.best(["calm/flat.csv"], "exact") == quiet
    assert sweep.score(quiet, ["busy/shift.csv"]).windows_hit == 1
