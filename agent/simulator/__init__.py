"""A faithful local Contentstack: Analytics API v2, Automations Management API, the HTTP
trigger, an OAuth token endpoint and the user session (login, logout), served over real
HTTP on 127.0.0.1.

Used by tests, benchmarks and ``stackwatch demo``; see ``Simulator``.
"""

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
from agent.simulator.server import RecordedRequest, Simulator

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
