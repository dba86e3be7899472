"""Automations Management API client (paths under ``/v1`` on the automations host).

Headers: ``authtoken`` (or the OAuth bearer) plus ``organization_uid``. Payloads are
validated with lenient pydantic models at the edge and handed on as dataclasses;
unknown fields are kept in ``raw`` and unknown execution statuses are kept as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any
from urllib.parse import quote

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agent.collect.errors import MalformedResponse
from agent.collect.http import HttpClient
from agent.collect.models import EXECUTIONS, ExecutionsQuery, Sample
from agent.collect.parsing import parse_number, parse_timestamp

log = structlog.get_logger(__name__)

#: the documented maximum page size of list endpoints.
PAGE_LIMIT = 100
#: hard stop for servers that ignore ``skip``.
MAX_PAGES = 1000


# -- dataclasses handed to the rest of the agent -------------------------------------------------


@dataclass(frozen=True)
class Project:
    id: str
    title: str = ""
    org_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Automation:
    id: str
    title: str = ""
    active: bool = False
    project_id: str | None = None
    throttle: Any = field(default=None, compare=False)
    steps: list[Any] = field(default_factory=list, compare=False, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Execution:
    id: str
    #: the automation that ran (``rule_id`` in the API).
    automation_id: str | None
    #: lower-cased; only ``success`` is documented, anything else is kept verbatim.
    status: str
    created_at: datetime | None = None
    #: as sent by the API; its unit is undocumented.
    duration: float | None = None
    details: list[Any] = field(default_factory=list, compare=False, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "success"


# -- edge models ----------------------------------------------------------------------------------


def _text_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return _text_id(value)

    @classmethod
    def from_raw(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "id" not in raw:
            # tolerate the other spellings Contentstack uses elsewhere
            for alternative in ("uid", "_id"):
                if alternative in raw:
                    raw = {**raw, "id": raw[alternative]}
                    break
        return cls.model_validate(raw)


class _ProjectModel(_Item):
    title: str | None = None
    org_id: str | None = None

    def build(self, raw: dict[str, Any]) -> Project:
        return Project(id=self.id, title=self.title or "", org_id=self.org_id, raw=raw)


class _AutomationModel(_Item):
    title: str | None = None
    active: bool | None = None
    project_id: str | None = None
    throttle: Any = None
    steps: Any = None

    @field_validator("active", mode="before")
    @classmethod
    def _active(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"true": True, "false": False}.get(value.strip().lower())
        return value if isinstance(value, bool) else None

    @field_validator("project_id", mode="before")
    @classmethod
    def _project(cls, value: Any) -> Any:
        return _text_id(value)

    def build(self, raw: dict[str, Any]) -> Automation:
        return Automation(
            id=self.id,
            title=self.title or "",
            active=bool(self.active),
            project_id=self.project_id,
            throttle=self.throttle,
            steps=list(self.steps) if isinstance(self.steps, list) else [],
            raw=raw,
        )


class _ExecutionModel(_Item):
    rule_id: str | None = None
    status: Any = None
    created_at: Any = None
    duration: Any = None
    details: Any = None

    @field_validator("rule_id", mode="before")
    @classmethod
    def _rule(cls, value: Any) -> Any:
        return _text_id(value)

    def build(self, raw: dict[str, Any]) -> Execution:
        created_at = None
        if self.created_at is not None:
            try:
                created_at = parse_timestamp(self.created_at)
            except ValueError:
                log.warning("automations.execution.bad_date", execution=self.id)
        duration = None
        if self.duration is not None:
            try:
                duration = parse_number(self.duration)
            except ValueError:
                log.warning("automations.execution.bad_duration", execution=self.id)
        status = str(self.status).strip().lower() if self.status is not None else "unknown"
        return Execution(
            id=self.id,
            automation_id=self.rule_id,
            status=status or "unknown",
            created_at=created_at,
            duration=duration,
            details=list(self.details) if isinstance(self.details, list) else [],
            raw=raw,
        )


# -- the client -----------------------------------------------------------------------------------


class AutomationsClient:
    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self.settings = http.settings

    # projects

    def list_projects(self) -> list[Project]:
        return self._list("/v1/projects", "projects", _ProjectModel)

    def get_project(self, project_id: str) -> Project:
        path = f"/v1/projects/{_seg(project_id)}"
        return self._one(path, ("project",), _ProjectModel)

    # automations

    def list_automations(self, project_id: str) -> list[Automation]:
        return self._list(f"/v1/projects/{_seg(project_id)}/automations", "rules", _AutomationModel)

    def get_automation(
        self, project_id: str, automation_id: str, show_steps: bool = True
    ) -> Automation:
        path = f"/v1/projects/{_seg(project_id)}/automations/{_seg(automation_id)}"
        params = {"show_steps": "true"} if show_steps else None
        return self._one(path, ("rule", "automation"), _AutomationModel, params=params)

    def set_active(self, project_id: str, automation_id: str, active: bool) -> str:
        """Enable or disable an automation; returns the API's message."""
        path = f"/v1/projects/{_seg(project_id)}/automations/{_seg(automation_id)}"
        body = self._call("PATCH", path, json={"active": bool(active)})
        log.info(
            "automations.set_active", project=project_id, automation=automation_id, active=active
        )
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"]
        return ""

    def enable(self, project_id: str, automation_id: str) -> str:
        return self.set_active(project_id, automation_id, True)

    def disable(self, project_id: str, automation_id: str) -> str:
        return self.set_active(project_id, automation_id, False)

    # executions and audit log

    def list_executions(
        self, project_id: str, limit: int = PAGE_LIMIT, skip: int = 0
    ) -> list[Execution]:
        """One page of the execution log, newest first."""
        path = f"/v1/projects/{_seg(project_id)}/executions"
        params = {
            "limit": str(max(1, min(limit, PAGE_LIMIT))),
            "skip": str(max(0, skip)),
            "desc": "created_at",
        }
        body = self._call("GET", path, params=params)
        return _items(body, "executions", _ExecutionModel, f"GET {path}")

    def get_execution(self, project_id: str, execution_id: str) -> Execution:
        path = f"/v1/projects/{_seg(project_id)}/executions/{_seg(execution_id)}"
        return self._one(path, ("execution", "executions"), _ExecutionModel)

    def audit_logs(self, project_id: str) -> list[dict[str, Any]]:
        path = f"/v1/projects/{_seg(project_id)}/audit-logs"
        return self._list(path, "logs", None)

    def execution_samples(self, project_id: str, since: datetime) -> list[Sample]:
        """Executions created at or after ``since`` as ``executions`` samples.

        Pages are read newest first and reading stops at the first page that ends
        before ``since`` — but only if that page really is sorted newest first, since
        the sort parameters are not proven to be honoured.
        """
        samples: list[Sample] = []
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            executions = self.list_executions(project_id, limit=PAGE_LIMIT, skip=page * PAGE_LIMIT)
            fresh = [e for e in executions if e.id not in seen]
            seen.update(e.id for e in executions)
            samples.extend(
                execution_sample(project_id, e)
                for e in fresh
                if e.created_at is not None and e.created_at >= since
            )
            if len(executions) < PAGE_LIMIT or not fresh:
                break
            dates = [e.created_at for e in executions if e.created_at is not None]
            newest_first = all(a >= b for a, b in pairwise(dates))
            if dates and newest_first and dates[-1] < since:
                break
        return samples

    def fetch(self, query: ExecutionsQuery) -> list[Sample]:
        """The newest ``query.limit`` executions of a project as ``executions`` samples."""
        executions: dict[str, Execution] = {}
        while len(executions) < query.limit:
            wanted = min(PAGE_LIMIT, query.limit - len(executions))
            page = self.list_executions(query.project_id, limit=wanted, skip=len(executions))
            before = len(executions)
            executions.update((e.id, e) for e in page if e.id not in executions)
            if len(page) < wanted or len(executions) == before:
                break
        return [
            execution_sample(query.project_id, e)
            for e in executions.values()
            if e.created_at is not None
        ]

    # plumbing

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.get_json(
            method,
            self.settings.automations_url + path,
            headers={"organization_uid": self.settings.organization_uid},
            **kwargs,
        )

    def _one(
        self,
        path: str,
        wrappers: tuple[str, ...],
        model: type[_Item],
        params: dict[str, str] | None = None,
    ) -> Any:
        body = self._call("GET", path, params=params)
        wanted = path.rsplit("/", 1)[-1]
        # single-object answers are undocumented: accept the object, or a wrapper holding it
        # alone or in a list (the execution log documents ``{"executions": [...]}`` for both)
        if isinstance(body, dict) and "id" not in body:
            for key in wrappers:
                inner = body.get(key)
                if isinstance(inner, dict):
                    body = inner
                    break
                if isinstance(inner, list):
                    candidates = [item for item in inner if isinstance(item, dict)]
                    matching = [item for item in candidates if str(item.get("id")) == wanted]
                    if matching or len(candidates) == 1:
                        body = (matching or candidates)[0]
                        break
        return _build(body, model, f"GET {path}")

    def _list(self, path: str, key: str, model: type[_Item] | None) -> list[Any]:
        """Read every page of a list endpoint (``limit``/``skip``) until it runs dry."""
        endpoint = f"GET {path}"
        result: list[Any] = []
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            params = {"limit": str(PAGE_LIMIT), "skip": str(page * PAGE_LIMIT)}
            body = self._call("GET", path, params=params)
            raw_items = _raw_items(body, key, endpoint)
            fresh = 0
            for item, raw in zip(_parse_items(raw_items, model, endpoint), raw_items, strict=True):
                if item is None:
                    continue
                identity = getattr(item, "id", None) or repr(sorted(raw.items()))
                if identity not in seen:
                    seen.add(identity)
                    result.append(item)
                    fresh += 1
            # a short page is the last; a page of repeats means the server ignores ``skip``
            if len(raw_items) < PAGE_LIMIT or fresh == 0:
                break
        return result


def execution_sample(project_id: str, execution: Execution) -> Sample:
    """metric ``executions``: labels project/automation/status, values count (1) and duration."""
    values = {"count": 1.0}
    if execution.duration is not None:
        values["duration"] = execution.duration
    labels = {"project": project_id, "status": execution.status}
    if execution.automation_id:
        labels["automation"] = execution.automation_id
    return Sample(EXECUTIONS, execution.created_at, labels, values)


def _seg(value: str) -> str:
    """An id as one path segment (ids are 32-hex, but never let one alter the path)."""
    return quote(str(value), safe="")


def _raw_items(body: Any, key: str, endpoint: str) -> list[dict[str, Any]]:
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict) and isinstance(body.get(key, []), list):
        items = body.get(key, [])
    else:
        raise MalformedResponse(f"{endpoint} answered without a '{key}' list", endpoint=endpoint)
    return [item for item in items if isinstance(item, dict)]


def _parse_items(
    raw_items: list[dict[str, Any]], model: type[_Item] | None, endpoint: str
) -> list[Any]:
    if model is None:
        return list(raw_items)
    parsed = []
    for raw in raw_items:
        try:
            parsed.append(_build(raw, model, endpoint))
        except MalformedResponse as error:
            # one odd entry must not hide the others
            parsed.append(None)
            log.warning("automations.item.skipped", endpoint=endpoint, error=error.message)
    return parsed


def _items(body: Any, key: str, model: type[_Item], endpoint: str) -> list[Any]:
    return [
        item
        for item in _parse_items(_raw_items(body, key, endpoint), model, endpoint)
        if item is not None
    ]


def _build(raw: Any, model: Any, endpoint: str) -> Any:
    try:
        parsed = model.from_raw(raw)
    except ValidationError:
        raise MalformedResponse(
            f"{endpoint} answered an item without an id", endpoint=endpoint
        ) from None
    return parsed.build(raw)
