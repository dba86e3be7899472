"""Automations Management API (``/v1``) and the HTTP Request trigger, over mutable state.

Scheduled executions are generated on demand from each automation's interval, its
activation history and the scenario's ``automation_failures`` incidents, so they need no
background thread and follow the injected clock. Executions started through the HTTP
trigger, activation changes and the audit log are kept in memory.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.clock import Clock
from agent.simulator.errors import ApiError, ErrorCode, invalid, not_found
from agent.simulator.scenario import AutomationSpec, ProjectSpec, Scenario, hex_id
from agent.simulator.traffic import stream_id, uniforms

LIST_LIMIT_MAX = 100
#: Used when a list request has no ``limit``; the real default is undocumented.
DEFAULT_LIST_LIMIT = 10
SORT_FIELDS = ("created_at", "title", "updated_at")
INACTIVE_RESULT = "The rule is currently being tested or not activated"
TRIGGERED_RESULT = "The rule has been triggered successfully"
SIM_USER = "blt0000000000000sim"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass
class _Automation:
    spec: AutomationSpec
    project_id: str
    created_at: datetime
    updated_at: datetime
    active: bool
    #: (epoch seconds, active) changes made through PATCH, oldest first.
    changes: list[tuple[float, bool]] = field(default_factory=list)

    def active_at(self, at: float) -> bool:
        state = self.spec.active
        for when, value in self.changes:
            # A change never rewrites history: an execution at the very moment of a
            # change has been listed already under the previous state.
            if when >= at:
                break
            state = value
        return state


@dataclass(frozen=True)
class ListParams:
    limit: int
    skip: int
    sort: str | None
    descending: bool
    include_count: bool


def list_params(query: Mapping[str, Sequence[str]], default_sort: tuple[str, bool]) -> ListParams:
    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    def integer(name: str, default: int, minimum: int) -> int:
        raw = one(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid(name, "must be an integer", status=422) from None
        if value < minimum:
            raise invalid(name, f"must be at least {minimum}", status=422)
        return value

    limit = integer("limit", DEFAULT_LIST_LIMIT, 1)
    if limit > LIST_LIMIT_MAX:
        raise invalid("limit", f"must not exceed {LIST_LIMIT_MAX}", status=422)
    skip = integer("skip", 0, 0)
    asc, desc = one("asc"), one("desc")
    if asc and desc:
        raise invalid("asc", "give either asc or desc, not both", status=422)
    sort: str | None
    sort, descending = default_sort
    if asc or desc:
        sort, descending = (asc, False) if asc else (desc, True)
        if sort not in SORT_FIELDS:
            raise invalid("asc" if asc else "desc", f"must be one of {SORT_FIELDS}", status=422)
    raw_count = (one("include_count") or "false").lower()
    if raw_count not in ("true", "false"):
        raise invalid("include_count", "must be true or false", status=422)
    return ListParams(limit, skip, sort, descending, raw_count == "true")


def paged(key: str, items: list[dict[str, Any]], params: ListParams) -> dict[str, Any]:
    sort = params.sort
    if sort:
        items = sorted(items, key=lambda item: str(item.get(sort, "")), reverse=params.descending)
    body: dict[str, Any] = {key: items[params.skip : params.skip + params.limit]}
    if params.include_count:
        body["count"] = len(items)
    return body


class AutomationsState:
    def __init__(self, scenario: Scenario, clock: Clock, organization_uid: str) -> None:
        assert scenario.start is not None, "needs a resolved scenario"
        self._scenario = scenario
        self._clock = clock
        self._org = organization_uid
        self._lock = threading.Lock()
        self._projects: dict[str, ProjectSpec] = {p.id: p for p in scenario.projects}
        self._created = scenario.start - timedelta(days=30)
        self._automations: dict[str, _Automation] = {}
        self._by_trigger: dict[str, str] = {}
        self._triggered: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []
        # One deterministic stream per automation: which executions fail is reproducible.
        self._streams = {
            a.id: stream_id(scenario.seed, "executions", a.id)
            for p in scenario.projects
            for a in p.automations
        }
        for p, project in enumerate(scenario.projects):
            for a, spec in enumerate(project.automations):
                created = self._created + timedelta(days=p, hours=a)
                self._automations[spec.id] = _Automation(
                    spec, project.id, created, created, spec.active
                )
                if spec.trigger_id:
                    self._by_trigger[spec.trigger_id] = spec.id
                self._audit.append(self._log(spec, project.id, "create", created, {}))

    # -- representations ----------------------------------------------------------------

    def _project_json(self, project: ProjectSpec) -> dict[str, Any]:
        return {
            "id": project.id,
            "title": project.title,
            "description": "",
            "org_id": self._org,
            "created_by": SIM_USER,
            "created_at": iso(self._created),
            "updated_at": iso(self._created),
        }

    def _automation_json(self, auto: _Automation, show_steps: bool) -> dict[str, Any]:
        spec = auto.spec
        body: dict[str, Any] = {
            "id": spec.id,
            "title": spec.title,
            "description": "",
            "active": auto.active,
            "project_id": auto.project_id,
            "throttle": {"enabled": False, "limit": 0, "unit": "minute"},
            "created_by": SIM_USER,
            "created_at": iso(auto.created_at),
            "updated_at": iso(auto.updated_at),
        }
        if show_steps:
            steps: list[dict[str, Any]] = []
            if spec.has_trigger_and_action:
                steps = [
                    {
                        "id": hex_id(spec.id, "trigger"),
                        "type": "trigger",
                        "connector": "HTTP Request",
                        "trigger_id": spec.trigger_id,
                        "secure": spec.secure_key is not None,
                    },
                    {
                        "id": hex_id(spec.id, "action"),
                        "type": "action",
                        "connector": "HTTP",
                        "action": "send_request",
                    },
                ]
            body["steps"] = steps
        return body

    def _log(
        self, spec: AutomationSpec, project_id: str, action: str, at: datetime, changes: dict
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "action": action,
            "module": "automation",
            "project_id": project_id,
            "rule_id": spec.id,
            "title": spec.title,
            "user": SIM_USER,
            "changes": changes,
            "created_at": iso(at),
            "updated_at": iso(at),
        }

    # -- lookups --------------------------------------------------------------------------

    def _project(self, project_id: str) -> ProjectSpec:
        project = self._projects.get(project_id)
        if project is None:
            raise not_found("Project")
        return project

    def _automation(self, project_id: str, automation_id: str) -> _Automation:
        self._project(project_id)
        auto = self._automations.get(automation_id)
        if auto is None or auto.project_id != project_id:
            raise not_found("Automation")
        return auto

    # -- endpoints ------------------------------------------------------------------------

    def list_projects(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        params = list_params(query, ("created_at", False))
        return paged("projects", [self._project_json(p) for p in self._projects.values()], params)

    def get_project(self, project_id: str) -> dict[str, Any]:
        return self._project_json(self._project(project_id))

    def list_automations(
        self, project_id: str, query: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        params = list_params(query, ("created_at", False))
        self._project(project_id)
        with self._lock:
            rules = [
                self._automation_json(a, show_steps=False)
                for a in self._automations.values()
                if a.project_id == project_id
            ]
        return paged("rules", rules, params)

    def get_automation(
        self, project_id: str, automation_id: str, query: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        show_steps = (query.get("show_steps") or ["false"])[-1].lower() == "true"
        with self._lock:
            return self._automation_json(self._automation(project_id, automation_id), show_steps)

    def patch_automation(self, project_id: str, automation_id: str, body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            raise invalid("body", "is not valid JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("active"), bool):
            raise invalid("active", "is required and must be true or false", status=422)
        active = payload["active"]
        with self._lock:
            auto = self._automation(project_id, automation_id)
            if not auto.spec.has_trigger_and_action:
                raise ApiError(
                    422,
                    "Configure a trigger and an action before (de)activating this automation",
                    error_code=ErrorCode.INVALID_PARAMETERS,
                    errors={"active": ["needs a configured trigger and action"]},
                )
            now = self._clock.now()
            previous = auto.active
            auto.active = active
            auto.updated_at = now
            auto.changes.append((now.timestamp(), active))
            self._audit.append(
                self._log(
                    auto.spec,
                    project_id,
                    "update",
                    now,
                    {"active": {"from": previous, "to": active}},
                )
            )
        word = "activated" if active else "deactivated"
        return {"message": f"Automation {word} successfully."}

    def list_executions(
        self, project_id: str, query: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        params = list_params(query, ("created_at", True))
        executions = self._executions(self._project(project_id))
        rule_ids: Sequence[str] = query.get("rule_id") or query.get("automation_id") or [""]
        rule = rule_ids[-1]
        if rule:
            executions = [e for e in executions if e["rule_id"] == rule]
        return paged("executions", executions, params)

    def get_execution(self, project_id: str, execution_id: str) -> dict[str, Any]:
        for execution in self._executions(self._project(project_id)):
            if execution["id"] == execution_id:
                return {"executions": [execution]}
        raise not_found("Execution")

    def audit_logs(self, project_id: str, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        params = list_params(query, ("created_at", True))
        self._project(project_id)
        with self._lock:
            logs = [log for log in self._audit if log["project_id"] == project_id]
        return paged("logs", logs, params)

    def trigger(
        self,
        trigger_id: str,
        headers: Mapping[str, str],
        body: bytes,
        method: str,
        *,
        testing: bool = False,
    ) -> dict[str, Any]:
        """Start the automation; ``testing`` answers as an automation in test mode does."""
        with self._lock:
            automation_id = self._by_trigger.get(trigger_id)
            if automation_id is None:
                raise not_found("Trigger")
            auto = self._automations[automation_id]
            key = auto.spec.secure_key
            if key is not None and headers.get("ah-http-key") != key:
                raise ApiError(
                    401,
                    "Invalid or missing ah-http-key for this secure HTTP trigger",
                    error_code=ErrorCode.NOT_LOGGED_IN,
                )
            if testing or not auto.active:
                return {"result": INACTIVE_RESULT, "trigger_id": trigger_id}
            now = self._clock.now()
            execution_id = uuid.uuid4().hex
            try:
                payload: Any = json.loads(body) if body else None
            except ValueError:
                payload = body.decode("utf-8", "replace")
            failed = self._fails(auto, now.timestamp(), int(now.timestamp() * 1000))
            self._triggered.append(
                self._execution_json(
                    auto, execution_id, now, failed, 850, {"method": method, "body": payload}
                )
            )
        return {"result": TRIGGERED_RESULT, "trigger_id": trigger_id, "execution_id": execution_id}

    # -- executions -----------------------------------------------------------------------

    def _fails(self, auto: _Automation, at: float, key: int) -> bool:
        for incident in self._scenario.incidents:
            if incident.kind != "automation_failures":
                continue
            if incident.automation not in (None, auto.spec.id, auto.project_id):
                continue
            begin, end = incident.window()
            if (
                begin.timestamp() <= at < end.timestamp()
                and uniforms(self._streams[auto.spec.id], key)[0] < incident.level
            ):
                return True
        return False

    def _execution_json(
        self,
        auto: _Automation,
        execution_id: str,
        at: datetime,
        failed: bool,
        duration_ms: int,
        trigger: dict[str, Any],
    ) -> dict[str, Any]:
        action: dict[str, Any] = {"step": "action", "type": "HTTP", "status": "success"}
        if failed:
            action = {**action, "status": "failed", "error": "Request failed with status 502"}
        return {
            "id": execution_id,
            "rule_id": auto.spec.id,
            "project_id": auto.project_id,
            "status": "failed" if failed else "success",
            "created_at": iso(at),
            "duration": duration_ms,
            "details": [{"step": "trigger", "status": "success", **trigger}, action],
        }

    def _executions(self, project: ProjectSpec) -> list[dict[str, Any]]:
        now = self._clock.now().timestamp()
        assert self._scenario.start is not None
        horizon = (self._scenario.start - self._scenario.execution_history).timestamp()
        out: list[dict[str, Any]] = []
        with self._lock:
            for spec in project.automations:
                auto = self._automations[spec.id]
                if not spec.execution_interval_minutes:
                    continue
                step = spec.execution_interval_minutes * 60
                for k in range(math.ceil(horizon / step), math.floor(now / step) + 1):
                    at = k * step
                    if not auto.active_at(at):
                        continue
                    key = int(at)
                    duration = 300 + int(uniforms(self._streams[spec.id], key)[1] * 2500)
                    out.append(
                        self._execution_json(
                            auto,
                            hex_id(spec.id, str(k)),
                            datetime.fromtimestamp(at, UTC),
                            self._fails(auto, at, key),
                            duration,
                            {"type": "scheduler"},
                        )
                    )
            out.extend(e for e in self._triggered if e["project_id"] == project.id)
        return out
