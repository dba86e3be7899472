"""A simulator with users who log in, and configs pointing every API at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from agent.clock import SystemClock
from agent.simulator import Scenario, Simulator, Stack, User

ORG = "setup-org"
STATIC_TOKEN = "blt-static-owner-token-4242"
OWNER = User("owner@example.com", "correct horse battery 9")
TWO_FACTOR = User("tfa@example.com", "second-factor-pass", tfa_code="731904")
SSO = User("sso@example.com", "unused-sso-password", sso=True)
MEMBER = User("member@example.com", "member-pass-123", role="member")
STACKS = [Stack("blt_web_key", "Website"), Stack("blt_app_key", "Mobile")]


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    scenario = Scenario(name="setup", stacks=STACKS, users=[OWNER, TWO_FACTOR, SSO, MEMBER])
    with Simulator(
        scenario, clock=SystemClock(), authtoken=STATIC_TOKEN, organization_uid=ORG
    ) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default token path under the test's folder; structlog restored afterwards."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STACKWATCH_PASSWORD", raising=False)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def write_config(
    folder: Path,
    sim: Simulator,
    *,
    token: str | None = None,
    token_file: Path | None = None,
    stacks: dict[str, str] | None = None,
    extra_contentstack: str = "",
    channels: str = '[[notify.channels]]\nname = "console"\nurls = ["console://"]\n',
    state_path: str = "state.db",
) -> Path:
    """A config for ``sim``: an inline token, a token file, or neither."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "r.toml").write_text(
        '[[rule]]\nname = "usage-zero"\n[rule.query]\nmetric = "usage"\nstacks = ["*"]\n'
        '[rule.condition]\ntype = "threshold"\nop = "<"\nvalue = 1\n'
    )
    credentials = ""
    if token is not None:
        credentials = f'authtoken = "{token}"'
    elif token_file is not None:
        credentials = f'authtoken_file = "{token_file}"'
    stack_lines = "\n".join(
        f'"{name}" = "{key}"'
        for name, key in (stacks or {s.name: s.api_key for s in STACKS}).items()
    )
    channel_names = [
        line.split('"')[1] for line in channels.splitlines() if line.startswith("name =")
    ]
    config = folder / "config.toml"
    config.write_text(
        f"""
[contentstack]
organization_uid = "{ORG}"
{credentials}
analytics_base_url = "{sim.url}"
automations_base_url = "{sim.url}"
cma_base_url = "{sim.url}"
max_retries = 0
{extra_contentstack}

[contentstack.stacks]
{stack_lines}

[agent]
rule_paths = ["rules"]
state_path = "{state_path}"

[notify]
{channels}
[notify.route]
channels = {channel_names!r}
""".replace("'", '"')
    )
    return config
