"""The runner's view of evaluate: is the rule's data trustworthy right now, still firing?"""

from __future__ import annotations

from collections.abc import Callable

from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import Engine, Instance
from agent.remediate.records import Guardrail


class EngineHealth:
    """Reads the live engine (a getter: a reload may swap the engine)."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    def _instances(self, rule: str | None = None) -> tuple[Instance, ...]:
        engine = self._engine()
        # tuple() of a dict view runs without releasing the GIL: safe against the
        # evaluation threads adding instances meanwhile
        groups = (
            tuple(engine.instances.values()) if rule is None else (engine.instances.get(rule, {}),)
        )
        return tuple(i for group in groups for i in tuple(group.values()))

    def blocked(self, rule: str, fingerprint: str) -> Guardrail | None:
        engine = self._engine()
        if engine.source_state.state.state is AlertState.FIRING:
            return Guardrail.SOURCE_DOWN
        for instance in self._instances(rule):
            state = instance.state.state
            if state is AlertState.ERROR or instance.state.error:
                return Guardrail.ERROR
            if instance.fingerprint == fingerprint and state is AlertState.NODATA:
                return Guardrail.NODATA
        return None

    def still_firing(self, fingerprint: str, since: float) -> bool:
        for instance in self._instances():
            if instance.fingerprint == fingerprint:
                began = instance.state.firing_since
                return (
                    instance.state.state is AlertState.FIRING
                    and began is not None
                    and abs(began.timestamp() - since) < 1
                )
        return False
