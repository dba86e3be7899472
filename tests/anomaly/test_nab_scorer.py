"""The NAB scorer reproduces the published scores of two reference detectors exactly."""

from __future__ import annotations

import json

import pytest

from bench.nab.scorer import (
    REWARD_LOW_FN,
    STANDARD,
    default_nab_dir,
    parse_timestamp,
    scaled_sigmoid,
    score_alert_times,
    score_rows,
    total,
)

NAB_DIR = default_nab_dir()
needs_nab = pytest.mark.skipif(not NAB_DIR.is_dir(), reason=f"no NAB data at {NAB_DIR}")


@needs_nab
@pytest.mark.parametrize(
    ("detector", "normalized", "hit", "missed", "false_alerts"),
    [("numenta", 75.8625, 55, 9, 55), ("windowedGaussian", 41.3920, 39, 25, 177)],
)
def test_reference_detections_score_as_published(
    detector: str, normalized: float, hit: int, missed: int, false_alerts: int
) -> None:
    reference = json.loads((NAB_DIR / f"reference-detections-{detector}.json").read_text())
    alerts = {
        key: [parse_timestamp(t) for t in times] for key, times in reference["detections"].items()
    }
    result = total(score_alert_times(NAB_DIR, alerts).values())
    assert round(result.normalized, 4) == normalized
    assert (result.windows_hit, result.windows_missed, result.false_alerts) == (
        hit,
        missed,
        false_alerts,
    )
    if "expected_raw_score" in reference:
        assert round(result.raw, 3) == round(reference["expected_raw_score"], 3)


def test_sigmoid_anchors() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)


def test_single_file_rules() -> None:
    # 1000 rows → probation 150; one window at rows 400..499.
    window = [(400, 499)]
    assert score_rows(1000, window, []).raw == -1.0
    assert score_rows(1000, window, [400]).raw == pytest.approx(1.0)
    # Only the earliest alert of a window counts; alerts in probation count for nothing.
    assert score_rows(1000, window, [100, 400, 450]).raw == pytest.approx(1.0)
    # An alert on the window's last row earns almost nothing, but it does avoid the miss.
    assert 0.0 < score_rows(1000, window, [499]).raw < 0.03
    # False alerts: before any window costs the full weight; far after costs the full weight.
    assert score_rows(1000, window, [200]).raw == pytest.approx(-1.0 - 0.11)
    assert score_rows(1000, window, [900]).raw == pytest.approx(-1.0 - 0.11)
    assert score_rows(1000, window, [200], REWARD_LOW_FN).raw == pytest.approx(-2.0 - 0.11)
    near = score_rows(1000, window, [500], STANDARD)
    assert -1.0 - 0.11 < near.raw < -1.0
    assert near.false_alerts == 1
