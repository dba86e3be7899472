"""Anomaly detection for ``type = "anomaly"`` rule conditions.

``AnomalyCondition`` is the TOML table, ``AnomalyTracker`` the per-instance state (persisted
with ``to_state``/``from_state``), ``Observation`` its verdict on one point.
"""

from agent.evaluate.anomaly.condition import AnomalyCondition
from agent.evaluate.anomaly.tracker import AnomalyTracker, Observation

__all__ = ["AnomalyCondition", "AnomalyTracker", "Observation"]
