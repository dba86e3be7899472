"""Notifications: route, group, silence, inhibit, escalate and deliver alert transitions.

The daemon builds one ``Notifier`` and calls ``submit`` with each evaluation's
transitions, then ``tick`` and ``deliver`` on every beat.

The names below load on first use (PEP 562): the settings import ``notify.config``,
and that must not pull in the sending machinery (Apprise) with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.lazy import lazy_names

if TYPE_CHECKING:
    from agent.notify.config import NotifyConfig
    from agent.notify.notifier import AlertStatus, Notifier, TestResult
    from agent.notify.outbox import DeliveryReport
    from agent.notify.silence import Silence

__getattr__ = lazy_names(
    __name__,
    {
        "agent.notify.config": ("NotifyConfig",),
        "agent.notify.notifier": ("AlertStatus", "Notifier", "TestResult"),
        "agent.notify.outbox": ("DeliveryReport",),
        "agent.notify.silence": ("Silence",),
    },
)


__all__ = ["AlertStatus", "DeliveryReport", "Notifier", "NotifyConfig", "Silence", "TestResult"]
