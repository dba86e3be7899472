"""Remediation, the pipeline's fourth stage: act through Contentstack Automations, safely.

``Remediator.schedule`` turns alert state changes into durable actions due (in the
caller's transaction); ``Remediator.run_once`` runs those due behind the guardrails,
verifies each and audits every outcome. ``EngineHealth`` answers the runner's questions
about the rule's data from the evaluation engine.

Names are loaded on first use: the root config imports ``agent.remediate.config``, and
the runner's imports (the clients) import the root config.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ActionConfig": "agent.remediate.config",
    "RemediateConfig": "agent.remediate.config",
    "AlertContext": "agent.remediate.records",
    "AuditRecord": "agent.remediate.records",
    "Guardrail": "agent.remediate.records",
    "Outcome": "agent.remediate.records",
    "AuditFilter": "agent.remediate.storage",
    "RemediationStorage": "agent.remediate.storage",
    "AlertHealth": "agent.remediate.runner",
    "Remediator": "agent.remediate.runner",
    "EngineHealth": "agent.remediate.health",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agent.remediate' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
