"""Notifications: route, group, silence, inhibit, escalate and deliver alert transitions.

The daemon builds one ``Notifier`` and calls ``submit`` with each evaluation's
transitions, then ``tick`` and ``deliver`` on every beat.

The names below load on first use (PEP 562): the settings import ``notify.config``,
and that must not pull in the sending machinery (Apprise) with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.notify.config import NotifyConfig
    from agent.notify.notifier import AlertStatus, Notifier, TestResult
    from agent.notify.outbox import DeliveryReport
    from agent.notify.silence import Silence

_WHERE = {
    "AlertStatus": "agent.notify.notifier",
    "DeliveryReport": "agent.notify.outbox",
    "Notifier": "agent.notify.notifier",
    "NotifyConfig": "agent.notify.config",
    "Silence": "agent.notify.silence",
    "TestResult": "agent.notify.notifier",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


__all__ = ["AlertStatus", "DeliveryReport", "Notifier", "NotifyConfig", "Silence", "TestResult"]
