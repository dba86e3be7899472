"""Notifications: route, group, silence, inhibit, escalate and deliver alert transitions.

The daemon builds one ``Notifier`` and calls ``submit`` with each evaluation's
transitions, then ``tick`` and ``deliver`` on every beat.
"""

from agent.notify.config import NotifyConfig
from agent.notify.notifier import AlertStatus, Notifier, TestResult
from agent.notify.outbox import DeliveryReport
from agent.notify.silence import Silence

__all__ = ["AlertStatus", "DeliveryReport", "Notifier", "NotifyConfig", "Silence", "TestResult"]
