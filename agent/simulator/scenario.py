"""The simulated world: stacks, per-service traffic profiles, incidents and automations.

A ``Scenario`` is plain data. Times may be absolute (aware ``datetime``) or offsets
(``timedelta``) from the scenario's ``start``; ``start`` None means "whatever the
simulator's clock says when the simulator is created", which is what ``start = "now"``
in a TOML file gives. ``Scenario.resolve(now)`` turns every offset into a datetime.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.collect.models import SERVICES
from agent.durations import parse_duration

INCIDENT_KINDS = ("5xx_spike", "cache_drop", "traffic_zero", "slow_burn", "automation_failures")
SUBDAY_DATE_FORMATS = ("iso", "space", "epoch", "epoch_ms")

#: The magnitude an incident gets when none is given (share of 5xx, hit ratio, failure share).
DEFAULT_MAGNITUDE = {
    "5xx_spike": 0.3,
    "cache_drop": 0.4,
    "traffic_zero": 0.0,
    "slow_burn": 0.2,
    "automation_failures": 1.0,
}

#: Services whose requests are served by the CDN: they count as ``total_cdn_*`` in usage
#: rows and, by default, have cache HIT/MISS rows.
CDN_SERVICES = frozenset({"cdn", "images", "assets"})

DEFAULT_STATUS_MIX = {
    "200": 0.84,
    "304": 0.10,
    "404": 0.05,
    "500": 0.006,
    "502": 0.002,
    "503": 0.002,
}

_HEX32 = re.compile(r"^[0-9a-f]{32}$")

Moment = datetime | timedelta


def hex_id(*parts: str) -> str:
    """A stable 32-hex id derived from names, for ids a scenario does not spell out."""
    return hashlib.blake2b("/".join(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Stack:
    api_key: str
    name: str = ""
    #: multiplies every service's baseline traffic on this stack.
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("a stack needs an api_key")
        if self.weight < 0:
            raise ValueError(f"stack {self.api_key}: weight must not be negative")


@dataclass(frozen=True)
class ServiceProfile:
    """Baseline traffic of one service on a stack of weight 1."""

    rpm: float = 100.0
    #: daily seasonality: traffic = rpm * (1 + amplitude * cos(2π (hour - peak_hour) / 24)).
    amplitude: float = 0.3
    peak_hour: float = 14.0
    #: relative hour-to-hour noise (0.1 = ±10 %).
    noise: float = 0.1
    status_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STATUS_MIX))
    hit_ratio: float = 0.9
    bytes_per_request: int = 1500
    #: whether HIT/MISS rows exist for this service; None = only for CDN-like services.
    cacheable: bool | None = None

    def __post_init__(self) -> None:
        if self.rpm < 0 or not 0 <= self.amplitude <= 1 or self.noise < 0:
            raise ValueError("service profile: rpm ≥ 0, 0 ≤ amplitude ≤ 1, noise ≥ 0")
        if not self.status_mix or any(v < 0 for v in self.status_mix.values()):
            raise ValueError("service profile: status_mix needs non-negative shares")
        if sum(self.status_mix.values()) <= 0:
            raise ValueError("service profile: status_mix shares sum to zero")
        if any(not (code.isdigit() and len(code) == 3) for code in self.status_mix):
            raise ValueError("service profile: status codes are three-digit strings")
        if not 0 <= self.hit_ratio <= 1:
            raise ValueError("service profile: hit_ratio must be within [0, 1]")


@dataclass(frozen=True)
class Incident:
    kind: str
    start: Moment
    end: Moment
    #: stack api_key or name; None = every stack.
    stack: str | None = None
    #: service name; None = every service.
    service: str | None = None
    #: 5xx share (5xx_spike, slow_burn peak), hit ratio (cache_drop), failure share
    #: (automation_failures); None = a per-kind default.
    magnitude: float | None = None
    #: automation_failures only: an automation id or project id; None = all automations.
    automation: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}; one of {INCIDENT_KINDS}")
        if self.magnitude is None:
            object.__setattr__(self, "magnitude", DEFAULT_MAGNITUDE[self.kind])
        if not 0 <= float(self.magnitude or 0) <= 1:
            raise ValueError(f"incident {self.kind}: magnitude must be within [0, 1]")
        if self.service is not None and self.service not in SERVICES:
            raise ValueError(f"incident {self.kind}: unknown service {self.service!r}")
        if type(self.start) is type(self.end) and self.end <= self.start:  # type: ignore[operator]
            raise ValueError(f"incident {self.kind}: end must be after start")

    @property
    def level(self) -> float:
        return float(self.magnitude or 0.0)

    def at(self, origin: datetime) -> Incident:
        """This incident with absolute times, offsets counted from ``origin``."""

        def absolute(moment: Moment) -> datetime:
            return origin + moment if isinstance(moment, timedelta) else moment

        placed = replace(self, start=absolute(self.start), end=absolute(self.end))
        begin, end = placed.window()
        if end <= begin:
            raise ValueError(f"incident {self.kind}: end must be after start")
        return placed

    def window(self) -> tuple[datetime, datetime]:
        """Absolute (start, end); only valid on a resolved scenario."""
        if not (isinstance(self.start, datetime) and isinstance(self.end, datetime)):
            raise ValueError("incident times are offsets; resolve the scenario first")
        return self.start, self.end


@dataclass(frozen=True)
class AutomationSpec:
    id: str
    title: str
    active: bool = True
    trigger_id: str | None = None
    #: the "Secure HTTP Trigger" key expected in the ``ah-http-key`` header; None = open.
    secure_key: str | None = None
    #: an automation without a configured trigger and action cannot be (de)activated.
    has_trigger_and_action: bool = True
    #: scheduled executions every N minutes while active; None = only through the trigger.
    execution_interval_minutes: float | None = None

    def __post_init__(self) -> None:
        if not _HEX32.match(self.id):
            raise ValueError(f"automation id {self.id!r} must be 32 lower-case hex digits")
        if self.execution_interval_minutes is not None and self.execution_interval_minutes <= 0:
            raise ValueError(f"automation {self.id}: execution interval must be positive")


@dataclass(frozen=True)
class ProjectSpec:
    id: str
    title: str
    automations: tuple[AutomationSpec, ...] = ()

    def __post_init__(self) -> None:
        if not _HEX32.match(self.id):
            raise ValueError(f"project id {self.id!r} must be 32 lower-case hex digits")
        object.__setattr__(self, "automations", tuple(self.automations))


USER_ROLES = ("owner", "admin", "member")


@dataclass(frozen=True)
class User:
    """A Contentstack user who can log in (``POST /v3/user-session``)."""

    email: str
    password: str
    #: the two-factor code this user must give at login; None = no 2FA.
    tfa_code: str | None = None
    #: an SSO-only account: it signs in through its identity provider and gets no authtoken.
    sso: bool = False
    #: organization role; only owners and admins may read analytics.
    role: str = "owner"

    def __post_init__(self) -> None:
        if not self.email or not self.password:
            raise ValueError("a user needs an email and a password")
        if self.role not in USER_ROLES:
            raise ValueError(f"user {self.email}: role must be one of {USER_ROLES}")

    @property
    def uid(self) -> str:
        return "blt" + hex_id("user", self.email)[:16]


@dataclass(frozen=True)
class Quirks:
    """Oddities seen in Contentstack's own samples; each can be switched off."""

    #: some ``count`` values (status, cache, devices, sdk rows) sent as strings.
    string_counts: bool = False
    #: some buckets carry an extra row that is only ``{"date": ...}`` (a zero count).
    date_only_rows: bool = True
    #: rows carry a field the documentation does not mention.
    extra_fields: bool = True
    #: ``meta.includeCount`` echoed as the string ``"true"`` instead of a boolean.
    include_count_as_string: bool = True


def _default_stacks() -> list[Stack]:
    return [
        Stack("blt5a1c0d2e3f4a5b6c", "Website", 1.0),
        Stack("blt9f8e7d6c5b4a3f2e", "Mobile app", 0.4),
    ]


def _default_services() -> dict[str, ServiceProfile]:
    return {
        "cdn": ServiceProfile(rpm=600, amplitude=0.35, peak_hour=14, bytes_per_request=1800),
        "cma": ServiceProfile(
            rpm=30, amplitude=0.5, peak_hour=11, hit_ratio=0.0, bytes_per_request=3200
        ),
    }


def _default_projects() -> list[ProjectSpec]:
    project = hex_id("project", "Operations")
    return [
        ProjectSpec(
            project,
            "Operations",
            (
                AutomationSpec(
                    hex_id(project, "purge"),
                    "Purge CDN cache",
                    active=True,
                    trigger_id="purge-cache",
                    secure_key="purge-secret",
                ),
                AutomationSpec(
                    hex_id(project, "notify"),
                    "Notify on publish",
                    active=True,
                    trigger_id="notify-publish",
                    execution_interval_minutes=5,
                ),
                AutomationSpec(
                    hex_id(project, "draft"),
                    "Draft workflow",
                    active=False,
                    trigger_id="draft-workflow",
                    has_trigger_and_action=False,
                ),
            ),
        )
    ]


@dataclass
class Scenario:
    name: str = "scenario"
    seed: int = 0
    start: datetime | None = None
    stacks: list[Stack] = field(default_factory=_default_stacks)
    services: dict[str, ServiceProfile] = field(default_factory=_default_services)
    incidents: list[Incident] = field(default_factory=list)
    projects: list[ProjectSpec] = field(default_factory=_default_projects)
    quirks: Quirks = field(default_factory=Quirks)
    #: who may log in; tokens from their logins work like the simulator's own authtoken.
    users: list[User] = field(default_factory=list)
    subday_date_format: str = "iso"
    #: how far back before ``start`` scheduled automation executions are listed.
    execution_history: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("scenario start must be timezone-aware")
        if self.subday_date_format not in SUBDAY_DATE_FORMATS:
            raise ValueError(
                f"subday_date_format {self.subday_date_format!r}; one of {SUBDAY_DATE_FORMATS}"
            )
        unknown = [s for s in self.services if s not in SERVICES]
        if unknown:
            raise ValueError(f"unknown services {unknown}; known: {list(SERVICES)}")
        keys = [s.api_key for s in self.stacks]
        if len(set(keys)) != len(keys):
            raise ValueError("stack api keys must be unique")
        emails = [user.email.lower() for user in self.users]
        if len(set(emails)) != len(emails):
            raise ValueError("user emails must be unique")

    def resolve(self, now: datetime) -> Scenario:
        """A copy whose start and incident times are absolute (start None becomes ``now``)."""
        start = self.start or now
        return replace(self, start=start, incidents=[i.at(start) for i in self.incidents])


# --------------------------------------------------------------------------- TOML loading

SCENARIO_DIR = Path(__file__).parent / "scenarios"


def builtin_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def _moment(value: Any, what: str) -> Moment:
    """``"+10m"``/``"-1h"`` offsets, RFC 3339 strings or TOML datetimes."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected an offset like '+10m' or a datetime, got {value!r}")
    text = value.strip()
    if text[:1] in "+-":
        delta = parse_duration(text[1:])
        return -delta if text[0] == "-" else delta
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what}: cannot read {value!r} as an offset or a datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def incident_from_dict(raw: dict[str, Any], what: str = "incident") -> Incident:
    """An incident as a scenario file writes it (``start = "+5m"``, ``duration`` or ``end``)."""
    raw = dict(raw)
    start = _moment(raw.pop("start"), f"{what}.start")
    if "duration" in raw:
        if "end" in raw:
            raise ValueError(f"{what}: give either end or duration")
        end: Moment = start + parse_duration(str(raw.pop("duration")))
    else:
        end = _moment(raw.pop("end"), f"{what}.end")
    return Incident(start=start, end=end, **raw)


def _project(raw: dict[str, Any]) -> ProjectSpec:
    title = raw["title"]
    project_id = raw.get("id") or hex_id("project", title)
    automations = []
    for item in raw.get("automations", []):
        item = dict(item)
        item.setdefault("id", hex_id(project_id, item["title"]))
        automations.append(AutomationSpec(**item))
    return ProjectSpec(project_id, title, tuple(automations))


def scenario_from_dict(data: dict[str, Any], *, now: datetime | None = None) -> Scenario:
    """Build a Scenario from parsed TOML; ``now`` resolves ``start = "now"`` at once if given."""
    data = dict(data)
    kwargs: dict[str, Any] = {}
    for key in ("name", "seed", "subday_date_format"):
        if key in data:
            kwargs[key] = data.pop(key)
    start = data.pop("start", "now")
    if start != "now":
        moment = _moment(start, "start")
        if isinstance(moment, timedelta):
            raise ValueError("scenario start must be 'now' or a datetime")
        kwargs["start"] = moment
    elif now is not None:
        kwargs["start"] = now
    if "execution_history" in data:
        kwargs["execution_history"] = parse_duration(str(data.pop("execution_history")))
    if "stacks" in data:
        kwargs["stacks"] = [Stack(**s) for s in data.pop("stacks")]
    if "services" in data:
        kwargs["services"] = {
            name: ServiceProfile(**profile) for name, profile in data.pop("services").items()
        }
    if "incidents" in data:
        kwargs["incidents"] = [
            incident_from_dict(raw, f"incidents[{i}]")
            for i, raw in enumerate(data.pop("incidents"))
        ]
    if "projects" in data:
        kwargs["projects"] = [_project(raw) for raw in data.pop("projects")]
    if "quirks" in data:
        kwargs["quirks"] = Quirks(**data.pop("quirks"))
    if "users" in data:
        kwargs["users"] = [User(**raw) for raw in data.pop("users")]
    if data:
        raise ValueError(f"unknown scenario keys: {sorted(data)}")
    return Scenario(**kwargs)


def load_scenario(path: str | Path, *, now: datetime | None = None) -> Scenario:
    """Read a TOML scenario; a bare name such as ``"demo"`` means a shipped scenario."""
    candidate = Path(path)
    if (
        not candidate.exists()
        and candidate.suffix == ""
        and (SCENARIO_DIR / f"{path}.toml").exists()
    ):
        candidate = SCENARIO_DIR / f"{path}.toml"
    with candidate.open("rb") as handle:
        data = tomllib.load(handle)
    try:
        return scenario_from_dict(data, now=now)
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"scenario {str(candidate)!r}: {error}") from error
