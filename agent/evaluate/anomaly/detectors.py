"""The detector of each ``method``: pure, no I/O (see :mod:`agent.evaluate.anomaly.base`)."""

from __future__ import annotations

from agent.evaluate.anomaly.base import Detector
from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.evt import EvtDetector
from agent.evaluate.anomaly.extremes import ExtremesDetector
from agent.evaluate.anomaly.novelty import AutoDetector
from agent.evaluate.anomaly.rolling import CusumDetector, EwmaDetector, MadDetector
from agent.evaluate.anomaly.seasonal import SeasonalDetector

DETECTORS: dict[str, type[Detector]] = {
    cls.kind: cls
    for cls in (
        AutoDetector,
        MadDetector,
        EwmaDetector,
        SeasonalDetector,
        CusumDetector,
        EvtDetector,
        ExtremesDetector,
    )
}


def build_detector(condition: AnomalyCondition) -> Detector:
    return DETECTORS[condition.method](condition)
