"""Agent configuration: a TOML file overridden by ``STACKWATCH_*`` environment variables.

``STACKWATCH_CONTENTSTACK__AUTHTOKEN=...`` overrides ``[contentstack] authtoken``.
Secrets may be given inline, from the environment, or from a file (``*_file``),
which suits systemd ``LoadCredential=`` and container secrets.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agent.durations import lenient_duration
from agent.notify.config import NotifyConfig
from agent.redact import register_secret
from agent.remediate.config import RemediateConfig
from agent.secretfiles import check_header_value, read_secret, relative_to
from agent.tomlpos import locate
from agent.tomlread import TomlProblem, read_toml

Region = Literal["aws-na", "aws-eu", "aws-au", "azure-na", "azure-eu", "gcp-na", "gcp-eu"]

#: region → (analytics and trigger host, automations management host, CMA host)
REGION_HOSTS: dict[str, tuple[str, str, str]] = {
    "aws-na": ("app.contentstack.com", "automations-api.contentstack.com", "api.contentstack.io"),
    "aws-eu": (
        "eu-app.contentstack.com",
        "eu-prod-automations-api.contentstack.com",
        "eu-api.contentstack.com",
    ),
    "aws-au": (
        "au-app.contentstack.com",
        "au-prod-automations-api.contentstack.com",
        "au-api.contentstack.com",
    ),
    "azure-na": (
        "azure-na-app.contentstack.com",
        "azure-na-automations-api.contentstack.com",
        "azure-na-api.contentstack.com",
    ),
    "azure-eu": (
        "azure-eu-app.contentstack.com",
        "azure-eu-automations-api.contentstack.com",
        "azure-eu-api.contentstack.com",
    ),
    "gcp-na": (
        "gcp-na-app.contentstack.com",
        "gcp-na-automations-api.contentstack.com",
        "gcp-na-api.contentstack.com",
    ),
    "gcp-eu": (
        "gcp-eu-app.contentstack.com",
        "gcp-eu-automations-api.contentstack.com",
        "gcp-eu-api.contentstack.com",
    ),
}

DEFAULT_OAUTH_TOKEN_URL = "https://developerhub-api.contentstack.com/token"

#: False while ``stackwatch login`` reads the config: the authtoken file is what it writes.
_READ_AUTHTOKEN_FILE: ContextVar[bool] = ContextVar("read_authtoken_file", default=True)
#: the config file's document, read and checked once by ``load_settings`` (None: no file)
_DOCUMENT: ContextVar[dict[str, Any] | None] = ContextVar("config_document", default=None)


class _Section(BaseModel):
    # inputs hold secrets (authtokens): never echo them in validation errors
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


class ContentstackSettings(_Section):
    region: Region = "aws-na"
    organization_uid: str = ""
    authtoken: SecretStr | None = None
    authtoken_file: Path | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    oauth_client_secret_file: Path | None = None
    oauth_token_url: str = DEFAULT_OAUTH_TOKEN_URL
    analytics_base_url: str | None = None
    automations_base_url: str | None = None
    #: the Content Management API host, where ``stackwatch login`` obtains an authtoken.
    cma_base_url: str | None = None
    #: requests per second per organization; the documented limit is 10.
    rate_limit: float = Field(default=10.0, gt=0, le=10)
    request_timeout: timedelta = timedelta(seconds=15)
    max_retries: int = Field(default=5, ge=0, le=20)
    #: the longest the client waits for an Analytics job before giving up on it.
    job_timeout: timedelta = timedelta(minutes=5)
    #: stack names → API keys; rules may name stacks, or say "*" for all of them.
    stacks: dict[str, str] = Field(default_factory=dict)
    #: Automations projects whose execution logs are read (empty: all projects).
    automations_projects: list[str] = Field(default_factory=list)

    _durations = field_validator("request_timeout", "job_timeout", mode="before")(lenient_duration)

    @model_validator(mode="after")
    def _load_secrets(self) -> ContentstackSettings:
        if (
            self.authtoken is None
            and self.authtoken_file is not None
            and _READ_AUTHTOKEN_FILE.get()
        ):
            self.authtoken = SecretStr(read_secret(self.authtoken_file, "authtoken"))
        if self.oauth_client_secret is None and self.oauth_client_secret_file is not None:
            secret = read_secret(self.oauth_client_secret_file, "oauth_client_secret")
            self.oauth_client_secret = SecretStr(secret)
        for secret_value in (self.authtoken, self.oauth_client_secret):
            if secret_value is not None:
                register_secret(secret_value.get_secret_value())
        if self.authtoken is not None:
            check_header_value(self.authtoken.get_secret_value(), "authtoken")
        if self.organization_uid:
            check_header_value(self.organization_uid, "organization_uid")
        if self.oauth_client_id and self.oauth_client_secret is None:
            raise ValueError("oauth_client_id is set but oauth_client_secret is missing")
        return self

    @property
    def uses_oauth(self) -> bool:
        return bool(self.oauth_client_id)

    @property
    def analytics_url(self) -> str:
        return (self.analytics_base_url or f"https://{REGION_HOSTS[self.region][0]}").rstrip("/")

    @property
    def automations_url(self) -> str:
        default = f"https://{REGION_HOSTS[self.region][1]}"
        return (self.automations_base_url or default).rstrip("/")

    @property
    def cma_url(self) -> str:
        return (self.cma_base_url or f"https://{REGION_HOSTS[self.region][2]}").rstrip("/")

    def credentials_problem(self) -> str | None:
        """Why the agent cannot authenticate, or None when it can."""
        if not self.organization_uid:
            return "contentstack.organization_uid is not set"
        if self.authtoken is None and not self.uses_oauth:
            return (
                "no credentials: set contentstack.authtoken, contentstack.authtoken_file "
                "or OAuth client credentials"
            )
        return None


class AgentSettings(_Section):
    rule_paths: list[Path] = Field(default_factory=lambda: [Path("rules")])
    #: how often a rule is evaluated when it sets no ``interval`` of its own.
    default_interval: timedelta = timedelta(minutes=1)
    state_path: Path = Path("stackwatch.db")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: a link put in alerts, e.g. to a dashboard; rules may override it.
    link: str | None = None
    #: where people reach this daemon's pages (behind a proxy: its public address), e.g.
    #: ``https://stackwatch.example.com``; messages then link ``<external_url>/alerts/<fp>``.
    #: Unset: no such link (the listen address is rarely reachable from a phone).
    external_url: str | None = Field(default=None, pattern=r"^https?://")
    #: how long the daemon keeps alert instances that stopped being evaluated and its
    #: audit trail (notify's tables follow ``[notify] retention``).
    retention: timedelta = timedelta(days=30)
    #: how long each instance's recent values are kept (one row per evaluation).
    sample_retention: timedelta = timedelta(days=1)
    #: the daemon's HTTP endpoint (health, metrics, JSON API); 0.0.0.0 in a container.
    http_bind: str = "127.0.0.1"
    #: 0 picks a free port (the daemon logs it and records it in the state file).
    http_port: int = Field(default=9847, ge=0, le=65535)
    #: when set, mutating API calls need ``Authorization: Bearer <api_token>``.
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    #: how often the notifier beat runs (group timers, outbox delivery).
    notify_interval: timedelta = timedelta(seconds=2)
    #: on SIGTERM: how long to wait for the cycles in flight, then to flush the outbox.
    shutdown_timeout: timedelta = timedelta(seconds=10)
    #: For demos and tests only: run the agent's clock ``clock_speed`` times faster than
    #: the wall clock. It agrees with the wall clock at ``clock_origin`` (default: the
    #: agent's start), so processes given the same pair share one simulated time.
    clock_speed: float = Field(default=1.0, gt=0, le=10_000)
    clock_origin: datetime | None = None

    _durations = field_validator(
        "default_interval",
        "retention",
        "sample_retention",
        "notify_interval",
        "shutdown_timeout",
        mode="before",
    )(lenient_duration)

    @field_validator("clock_origin")
    @classmethod
    def _aware_origin(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _load_token(self) -> AgentSettings:
        if self.api_token is None and self.api_token_file is not None:
            self.api_token = SecretStr(read_secret(self.api_token_file, "api_token"))
        if self.api_token is not None:
            register_secret(self.api_token.get_secret_value())
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        hide_input_in_errors=True,
        env_prefix="STACKWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    contentstack: ContentstackSettings = Field(default_factory=ContentstackSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    remediate: RemediateConfig = Field(default_factory=RemediateConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the file comes last (the environment overrides it), as the document
        # ``read_toml`` already parsed and checked: it is not read a second time
        document = _DOCUMENT.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if document is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs=document))
        return tuple(sources)


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator (one problem per line)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _origin(path: Path | None, lines: list[str], loc: tuple[Any, ...]) -> str:
    """``FILE:LINE`` of a problem, or the environment variable it came from."""
    variable = "STACKWATCH_" + "__".join(str(part).upper() for part in loc if isinstance(part, str))
    if any(name.upper() == variable for name in os.environ):
        return f"environment {variable}"
    if path is None:
        return "environment"
    return f"{path}:{locate(lines, loc)}"


def _message(problem: Any) -> str:
    if problem["type"] == "extra_forbidden":
        return "unknown key"
    return str(problem["msg"]).removeprefix("Value error, ")


def load_settings(
    path: Path | None, *, required: bool = False, read_authtoken_file: bool = True
) -> Settings:
    """Read ``path`` (if it exists) plus the environment; raise ConfigError on any problem.

    Relative paths inside the file (rule paths, secret files, state file) are
    taken relative to the file's folder, so the agent can be started from anywhere.
    ``read_authtoken_file=False`` leaves ``authtoken_file`` unread (it may not exist yet).
    """
    from pydantic import ValidationError

    if path is not None and not path.exists():
        if required:
            raise ConfigError([f"{path}: config file not found"])
        path = None
    text, document = "", None
    if path is not None:
        try:
            # parsed once, and checked before any model sees it: nothing in it can crash them
            text, document = read_toml(path)
        except TomlProblem as problem:
            raise ConfigError([f"{path}:{problem}"]) from None
    reading_document = _DOCUMENT.set(document)
    reading = _READ_AUTHTOKEN_FILE.set(read_authtoken_file)
    try:
        with relative_to(path.resolve().parent if path else None):
            settings = Settings()
    except ValidationError as error:
        lines = text.splitlines()
        raise ConfigError(
            [
                f"{_origin(path, lines, problem['loc'])}: "
                f"{'.'.join(str(p) for p in problem['loc']) or 'config'}: {_message(problem)}"
                for problem in error.errors(include_url=False, include_input=False)
            ]
        ) from None
    except ValueError as error:  # secret files and similar, raised outside field validation
        raise ConfigError([f"{path or 'environment'}: {error}"]) from None
    finally:
        _DOCUMENT.reset(reading_document)
        _READ_AUTHTOKEN_FILE.reset(reading)
    if path is not None:
        base = path.resolve().parent
        settings.agent.rule_paths = [
            p if p.is_absolute() else base / p for p in settings.agent.rule_paths
        ]
        if not settings.agent.state_path.is_absolute():
            settings.agent.state_path = base / settings.agent.state_path
    return settings
