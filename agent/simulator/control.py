"""Scripting a running simulator from outside: faults and incidents over HTTP.

``/__sim/faults`` and ``/__sim/incidents`` let an operator rehearse an outage against a
running daemon from the shell (curl), and ``stackwatch simulate --fault SPEC`` starts
with faults in place. Control requests bypass the rate limit, the faults themselves and
the request log, so a rehearsal can always be stopped and the API's figures stay the
API's.

    GET    /__sim/faults               the active faults
    POST   /__sim/faults               add one: {"kind": "http_status", "status": 503, ...}
    DELETE /__sim/faults               clear them all
    GET    /__sim/incidents            the scenario's incidents, with absolute times
    POST   /__sim/incidents            start one: {"kind": "5xx_spike", "start": "+0m",
                                       "duration": "10m", "stack": "Website", ...}
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Protocol

from agent.simulator.faults import Fault
from agent.simulator.scenario import Incident, Scenario, incident_from_dict

CONTROL_PREFIX = "/__sim/"
_FAULT_FIELDS = {f.name: f for f in dataclasses.fields(Fault)}


class Simulator(Protocol):
    """What the control endpoints read and change in the running simulator (``server``)."""

    scenario: Scenario

    @property
    def faults(self) -> list[Fault]: ...

    def add_fault(self, fault: Fault) -> None: ...

    def clear_faults(self) -> None: ...

    def add_incident(self, incident: Incident) -> Incident: ...


class ControlError(ValueError):
    """A control request that cannot be carried out; answered 400 (or 404/405)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def fault_from_mapping(data: Mapping[str, Any]) -> Fault:
    """A Fault from JSON-like fields; numbers may come as strings (from a command line)."""
    unknown = sorted(set(data) - set(_FAULT_FIELDS))
    if unknown:
        raise ControlError(f"unknown fault field(s) {unknown}; known: {sorted(_FAULT_FIELDS)}")
    if "kind" not in data:
        raise ControlError("a fault needs a kind")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        values[name] = _coerce(name, raw)
    try:
        return Fault(**values)
    except ValueError as error:
        raise ControlError(str(error)) from None


def parse_fault_spec(spec: str) -> Fault:
    """``KIND[,field=value…]``, e.g. ``http_status,status=503,path_prefix=/analytics/``."""
    kind, *pairs = [part.strip() for part in spec.split(",")]
    fields: dict[str, Any] = {"kind": kind}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ControlError(f"{pair!r}: expected field=value")
        fields[name.strip()] = value.strip()
    return fault_from_mapping(fields)


def fault_json(fault: Fault) -> dict[str, Any]:
    return dataclasses.asdict(fault)


def incident_json(incident: Incident) -> dict[str, Any]:
    begin, end = incident.window()
    fields = dataclasses.asdict(incident)
    return {**fields, "start": begin.isoformat(), "end": end.isoformat()}


def handle(sim: Simulator, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Answer one control request: (status, JSON payload)."""
    try:
        if path == CONTROL_PREFIX + "faults":
            return _faults(sim, method, body)
        if path == CONTROL_PREFIX + "incidents":
            return _incidents(sim, method, body)
        raise ControlError(f"no control endpoint {path}", status=404)
    except ControlError as error:
        return error.status, {"error_message": str(error)}


def _faults(sim: Simulator, method: str, body: bytes) -> tuple[int, Any]:
    if method == "GET":
        return 200, {"faults": [fault_json(f) for f in sim.faults]}
    if method == "POST":
        fault = fault_from_mapping(_json_object(body))
        sim.add_fault(fault)
        return 201, {"fault": fault_json(fault)}
    if method == "DELETE":
        cleared = len(sim.faults)
        sim.clear_faults()
        return 200, {"cleared": cleared}
    raise ControlError("use GET, POST or DELETE", status=405)


def _incidents(sim: Simulator, method: str, body: bytes) -> tuple[int, Any]:
    if method == "GET":
        return 200, {"incidents": [incident_json(i) for i in sim.scenario.incidents]}
    if method == "POST":
        raw = dict(_json_object(body))
        raw.setdefault("start", "+0m")
        try:
            incident = sim.add_incident(incident_from_dict(raw))
        except (KeyError, TypeError, ValueError) as error:
            raise ControlError(f"invalid incident: {error}") from None
        return 201, {"incident": incident_json(incident)}
    raise ControlError("use GET or POST", status=405)


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ControlError("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def _coerce(name: str, raw: Any) -> Any:
    """Command-line strings to the field's type; JSON values checked against it."""
    if raw is None:
        return None
    kind = str(_FAULT_FIELDS[name].type)
    try:
        if "int" in kind and not isinstance(raw, bool):
            return int(raw)
        if "float" in kind and not isinstance(raw, bool):
            return float(raw)
    except (TypeError, ValueError):
        raise ControlError(f"{name}: expected a number, got {raw!r}") from None
    if not isinstance(raw, str):
        raise ControlError(f"{name}: expected text, got {raw!r}")
    return raw
