"""A simulator on the wall clock, with an incident under way, and a config pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent.clock import SystemClock
from agent.simulator import Incident, Scenario, Simulator, Stack

TOKEN = "blt-cli-test-token-0123456789"
ORG = "cli-org"
BROKEN = Stack("blt_broken", "broken")
HEALTHY = Stack("blt_healthy", "healthy")

RULE = """
[[rule]]
name = "cdn-5xx-share"
severity = "critical"
summary = "5xx {{ value | pct }} on {{ labels.stack_name }}"
[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = ["*"]
window = "10m"
[rule.value]
function = "ratio"
numerator = { status = "5xx" }
[rule.condition]
type = "threshold"
op = ">"
value = 0.05
"""


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    scenario = Scenario(
        name="cli",
        seed=7,
        start=None,
        stacks=[BROKEN, HEALTHY],
        incidents=[
            Incident(
                "5xx_spike",
                start=-timedelta(hours=3),
                end=timedelta(hours=3),
                stack=BROKEN.api_key,
                service="cdn",
                magnitude=0.4,
            )
        ],
    )
    with Simulator(
        scenario,
        clock=SystemClock(),
        authtoken=TOKEN,
        organization_uid=ORG,
        job_duration=0.05,
    ) as sim:
        yield sim


def write_config(folder: Path, sim: Simulator, rules: str = RULE, extra: str = "") -> Path:
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "rules.toml").write_text(rules)
    config = folder / "config.toml"
    config.write_text(
        f"""
[contentstack]
organization_uid = "{ORG}"
authtoken = "{TOKEN}"
analytics_base_url = "{sim.url}"
automations_base_url = "{sim.url}"

[contentstack.stacks]
broken = "{BROKEN.api_key}"
healthy = "{HEALTHY.api_key}"

[agent]
rule_paths = ["rules"]
state_path = "state.db"
{extra}
"""
    )
    return config
