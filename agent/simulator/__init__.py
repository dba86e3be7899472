"""A faithful local Contentstack: Analytics API v2, Automations Management API, the HTTP
trigger, an OAuth token endpoint and the user session (login, logout), served over real
HTTP on 127.0.0.1.

Used by tests, benchmarks and ``stackwatch demo``; see ``Simulator``. The server loads
on first use (PEP 562): ``stackwatch simulate --help`` only lists scenarios and faults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.lazy import lazy_names
from agent.simulator.faults import FAULT_KINDS, Fault
from agent.simulator.scenario import (
    AutomationSpec,
    Incident,
    ProjectSpec,
    Quirks,
    Scenario,
    ServiceProfile,
    Stack,
    User,
    builtin_scenarios,
    load_scenario,
)

if TYPE_CHECKING:
    from agent.simulator.server import RecordedRequest, Simulator

__getattr__ = lazy_names(__name__, {"agent.simulator.server": ("RecordedRequest", "Simulator")})

__all__ = [
    "FAULT_KINDS",
    "AutomationSpec",
    "Fault",
    "Incident",
    "ProjectSpec",
    "Quirks",
    "RecordedRequest",
    "Scenario",
    "ServiceProfile",
    "Simulator",
    "Stack",
    "User",
    "builtin_scenarios",
    "load_scenario",
]
