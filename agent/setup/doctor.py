"""``stackwatch doctor``: every part of a config tried for real, one line per check.

Config and rules, the credentials on each API (with the usual causes of 401, 403 and
412 spelled out), the rate-limit headroom the server reports, the configured
Automations projects, every notification channel (a test message, as ``notify-test``
sends) and the state directory. A failed check says how to fix it; the exit code is
1 when any check failed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx

from agent.clock import SystemClock
from agent.collect import Clients, build_clients
from agent.collect.errors import ContentstackError, NotFound
from agent.config import ConfigError, Settings, load_settings
from agent.evaluate.loader import RulesInvalid, rule_files
from agent.logs import configure_logging
from agent.redact import redact

OK, FAILED = "✔", "✘"
#: doctor should answer in seconds: one retry for a flaky moment, no long backoff.
DOCTOR_RETRIES = 1
TOKEN_HINT = (
    "the authtoken is invalid, or was evicted by a newer login (a user has at most 20 live "
    "tokens and each login evicts the oldest): run `stackwatch login`"
)
OAUTH_HINT = "the OAuth client credentials were refused: check oauth_client_id and its secret"
ANALYTICS_403_HINT = (
    "only organization Owner and Admin users may read analytics, and Analytics may need "
    "enabling for the organization by Contentstack support"
)


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str
    #: how to fix a failed check.
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"{OK} {self.text}"
        return f"{FAILED} {self.text}" + (f"\n    fix: {self.fix}" if self.fix else "")


def run_doctor(config_path: Path | None, *, send: bool, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    configure_logging("error")  # the checks report failures themselves, once
    failures = 0
    for check in checks(config_path, send=send):
        failures += not check.ok
        print(redact(check.line()), file=stream, flush=True)
    print(
        f"{failures} check(s) failed" if failures else "all checks passed",
        file=stream,
    )
    return 1 if failures else 0


def checks(config_path: Path | None, *, send: bool) -> Iterator[Check]:
    settings = yield from _config(config_path)
    if settings is None:
        return
    problem = settings.contentstack.credentials_problem()
    if problem is not None:
        yield Check(
            False, f"credentials: {problem}", "run `stackwatch login` and set authtoken_file"
        )
    else:
        yield from _apis(settings)
    yield from _state(settings)
    yield from _channels(settings, send)


# -- config -----------------------------------------------------------------------------------


def _config(path: Path | None) -> Generator[Check, None, Settings | None]:
    if path is None:
        yield Check(
            False,
            "config: no config.toml here",
            "create one with `stackwatch init`, or copy config.example.toml to config.toml "
            "(or name one with --config FILE)",
        )
        return None
    from agent.wiring import load_rule_set

    try:
        settings = load_settings(path, required=True)
        rules = load_rule_set(settings)
    except ConfigError as error:
        yield _invalid(path, [str(problem) for problem in error.problems])
        return None
    except RulesInvalid as error:
        yield _invalid(path, [str(problem) for problem in error.problems])
        return None
    files = rule_files(settings.agent.rule_paths)
    yield Check(True, f"config {path}: valid, {len(rules)} rules in {len(files)} files")
    return settings


def _invalid(path: Path, problems: list[str]) -> Check:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    fix = f"correct it; `stackwatch check --config {path}` lists every problem"
    if "authtoken file" in problems[0]:
        fix = "run `stackwatch login`: it writes the authtoken file"
    return Check(False, f"config {path}: {problems[0]}{more}", fix)


# -- APIs ---------------------------------------------------------------------------------------


class _Headroom:
    """The last ``X-RateLimit-*`` pair the Analytics API sent."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.remaining: int | None = None

    def __call__(self, response: httpx.Response) -> None:
        limit = _integer(response.headers.get("x-ratelimit-limit"))
        remaining = _integer(response.headers.get("x-ratelimit-remaining"))
        if limit is not None and remaining is not None:
            self.limit, self.remaining = limit, remaining


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _apis(settings: Settings) -> Iterator[Check]:
    contentstack = settings.contentstack.model_copy(update={"max_retries": DOCTOR_RETRIES})
    headroom = _Headroom()
    with build_clients(contentstack, SystemClock()) as clients:
        yield from _analytics(settings, clients, headroom)
        yield _rate_limit(settings, headroom)
        yield from _automations(settings, clients)
        yield from _remediation(settings, clients)


def _analytics(settings: Settings, clients: Clients, headroom: _Headroom) -> Iterator[Check]:
    contentstack = settings.contentstack
    today = datetime.now(UTC).date().isoformat()
    url = contentstack.analytics_url + "/analytics/v2/usage"

    def submit(api_key: str | None) -> None:
        params = {
            "orgUid": contentstack.organization_uid,
            "from": today,
            "to": today,
            "duration": "day",
            "services": json.dumps(["cdn", "cma"], separators=(",", ":")),
        }
        if api_key:
            params["apiKey"] = api_key
        # submitting a job is enough: it is refused at once for bad credentials or keys
        clients.http.get_json("GET", url, params=params, on_response=headroom)

    try:
        submit(None)
    except ContentstackError as error:
        yield Check(False, f"Analytics API: {error.message}", _credential_hint(settings, error))
        return
    yield Check(
        True,
        f"Analytics API accepts the credentials for organization {contentstack.organization_uid}",
    )
    for name, api_key in contentstack.stacks.items():
        try:
            submit(api_key)
        except ContentstackError as error:
            fix = (
                f"the API key of stack {name!r} is wrong: correct it in [contentstack.stacks]"
                if error.status == 412
                else _credential_hint(settings, error)
            )
            yield Check(False, f"stack {name!r}: {error.message}", fix)
        else:
            yield Check(True, f"stack {name!r}: API key accepted")


def _credential_hint(settings: Settings, error: ContentstackError) -> str:
    if error.status == 401:
        return OAUTH_HINT if settings.contentstack.uses_oauth else TOKEN_HINT
    if error.status == 403:
        return ANALYTICS_403_HINT
    if error.status is None:
        return "check the network path to the API (proxy, firewall, *_base_url) and retry"
    return "retry later; if it persists, the answer above says what the API objects to"


def _rate_limit(settings: Settings, headroom: _Headroom) -> Check:
    configured = settings.contentstack.rate_limit
    if headroom.limit is None or headroom.remaining is None:
        return Check(
            True,
            f"rate limit: no X-RateLimit-* headers seen; Stackwatch paces itself at "
            f"{configured:g} requests/s",
        )
    text = (
        f"rate limit: {headroom.remaining} of {headroom.limit} requests left in the current "
        "second (X-RateLimit-Remaining)"
    )
    if headroom.limit < configured:
        return Check(
            False,
            f"{text}, but rate_limit = {configured:g}",
            f"set contentstack.rate_limit to at most {headroom.limit}",
        )
    if headroom.remaining == 0:
        return Check(
            False,
            f"{text}: another client uses the organization's whole budget",
            "find the other client of this organization, or lower its request rate",
        )
    return Check(True, text)


def _automations(settings: Settings, clients: Clients) -> Iterator[Check]:
    try:
        projects = clients.automations.list_projects()
    except ContentstackError as error:
        fix = _credential_hint(settings, error)
        if error.status == 401 and settings.contentstack.uses_oauth:
            fix = "the Automations API takes an authtoken only: set authtoken_file as well"
        elif error.status == 403:
            fix = "the user needs access to the organization's Automations"
        yield Check(False, f"Automations API: {error.message}", fix)
        return
    wanted = settings.contentstack.automations_projects
    watched = "all of them watched" if not wanted else f"{len(wanted)} configured"
    yield Check(True, f"Automations API: {len(projects)} project(s), {watched}")
    known = {project.id: project.title for project in projects}
    for project_id in wanted:
        if project_id in known:
            yield Check(True, f"Automations project {project_id} ({known[project_id]}) found")
            continue
        try:
            project = clients.automations.get_project(project_id)
        except NotFound:
            yield Check(
                False,
                f"Automations project {project_id}: not found in the organization",
                "correct contentstack.automations_projects; the organization has: "
                + (", ".join(f"{pid} ({title})" for pid, title in known.items()) or "none"),
            )
        except ContentstackError as error:
            yield Check(False, f"Automations project {project_id}: {error.message}")
        else:
            yield Check(True, f"Automations project {project_id} ({project.title}) found")


def _remediation(settings: Settings, clients: Clients) -> Iterator[Check]:
    from agent.remediate.checks import readiness

    for finding in readiness(settings.remediate.build(), clients.automations):
        yield Check(finding.ok, finding.text, finding.fix)


# -- state and channels -------------------------------------------------------------------------


def _state(settings: Settings) -> Iterator[Check]:
    state = settings.agent.state_path
    folder = state.parent
    fix = f"create {folder} writable by this user, or set agent.state_path elsewhere"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stackwatch-doctor-"):
            pass
    except OSError as error:
        yield Check(False, f"state directory {folder}: not writable ({error.strerror})", fix)
        return
    if state.exists() and not os.access(state, os.W_OK):
        yield Check(False, f"state file {state}: not writable", f"make {state} writable")
        return
    yield Check(True, f"state directory {folder} is writable")


def _channels(settings: Settings, send: bool) -> Iterator[Check]:
    channels = settings.notify.channels
    if not channels:
        yield Check(False, "notifications: no channel configured", "add a [[notify.channels]]")
        return
    if not send:
        for channel in channels:
            yield Check(True, f"channel {channel.name!r}: configured (not tried: --no-send)")
        return
    from agent.notify.notifier import Notifier
    from agent.store import Store

    # the test goes straight to the channel, as notify-test does; the daemon's state stays as is
    with tempfile.TemporaryDirectory(prefix="stackwatch-doctor-") as scratch:
        store = Store(Path(scratch) / "doctor.db")
        try:
            notifier = Notifier(settings.notify, store, SystemClock())
            for channel in channels:
                results = notifier.test_channel(
                    channel.name, "Stackwatch doctor: a test message; no action needed."
                )
                for result in results:
                    where = f"channel {channel.name!r}: {result.destination}"
                    if result.ok:
                        yield Check(True, f"{where}: test message sent")
                    else:
                        # the error names the (masked) destination itself
                        yield Check(
                            False,
                            f"channel {channel.name!r}: {result.error or where + ': failed'}",
                            "check the URL and that this host can reach the service "
                            f"(`stackwatch notify-test {channel.name}` retries just this one)",
                        )
        finally:
            store.close()
