"""Scenario dataclasses and TOML loading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.simulator import (
    AutomationSpec,
    Incident,
    Scenario,
    ServiceProfile,
    Simulator,
    Stack,
    builtin_scenarios,
    load_scenario,
)
from tests.simulator.helpers import NOW

TOML = """
name = "custom"
seed = 9
start = "now"
subday_date_format = "epoch"

[quirks]
string_counts = true

[[stacks]]
api_key = "blt1"
name = "One"

[services.cdn]
rpm = 50
status_mix = { "200" = 0.9, "503" = 0.1 }

[[incidents]]
kind = "5xx_spike"
stack = "One"
start = "+10m"
end = "+25m"
magnitude = 0.5

[[incidents]]
kind = "traffic_zero"
start = "2024-02-05T08:00:00Z"
duration = "30m"

[[projects]]
title = "Ops"

[[projects.automations]]
title = "Hook"
trigger_id = "hook"
execution_interval_minutes = 15
"""


def test_load_toml_with_offsets(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text(TOML)
    scenario = load_scenario(path)
    assert scenario.name == "custom" and scenario.seed == 9
    assert scenario.start is None  # "now": resolved when a simulator starts
    assert scenario.subday_date_format == "epoch"
    assert scenario.quirks.string_counts is True
    assert scenario.stacks == [Stack("blt1", "One", 1.0)]
    assert scenario.services["cdn"].status_mix == {"200": 0.9, "503": 0.1}
    spike, zero = scenario.incidents
    assert (spike.start, spike.end) == (timedelta(minutes=10), timedelta(minutes=25))
    assert zero.start == datetime(2024, 2, 5, 8, tzinfo=UTC)
    assert zero.end == datetime(2024, 2, 5, 8, 30, tzinfo=UTC)
    automation = scenario.projects[0].automations[0]
    assert len(automation.id) == 32 and automation.execution_interval_minutes == 15

    resolved = scenario.resolve(NOW)
    assert resolved.start == NOW
    assert resolved.incidents[0].start == NOW + timedelta(minutes=10)
    # load_scenario(now=...) resolves "now" at once.
    assert load_scenario(path, now=NOW).start == NOW


def test_simulator_resolves_offsets_against_its_clock(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text(TOML)
    sim = Simulator(load_scenario(path), clock=ManualClock(NOW))
    assert sim.scenario.start == NOW
    assert sim.scenario.incidents[0].start == NOW + timedelta(minutes=10)


@pytest.mark.parametrize("name", ["demo", "baseline"])
def test_shipped_scenarios_load(name: str) -> None:
    assert name in builtin_scenarios()
    scenario = load_scenario(name)
    assert len(scenario.stacks) == 2
    assert set(scenario.services) == {"cdn", "cma"}
    assert scenario.projects


def test_demo_has_a_cdn_spike_ten_minutes_in_and_a_later_cache_drop() -> None:
    demo = load_scenario("demo", now=NOW).resolve(NOW)
    spike = next(i for i in demo.incidents if i.kind == "5xx_spike")
    assert spike.service == "cdn" and spike.stack == demo.stacks[0].api_key
    assert timedelta(minutes=1) <= spike.start - NOW <= timedelta(minutes=15)
    assert timedelta(minutes=5) <= spike.end - spike.start <= timedelta(minutes=20)
    drop = next(i for i in demo.incidents if i.kind == "cache_drop")
    assert drop.start > spike.end
    assert load_scenario("baseline").incidents == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("surprise = 1\n", "unknown scenario keys"),
        ('[[incidents]]\nkind = "meteor"\nstart = "+1m"\nend = "+2m"\n', "unknown incident kind"),
        ('[[incidents]]\nkind = "5xx_spike"\nstart = "+5m"\nend = "+1m"\n', "end must be after"),
        ('[[incidents]]\nkind = "5xx_spike"\nstart = "soon"\nend = "+1m"\n', "cannot read"),
        ('subday_date_format = "roman"\n', "subday_date_format"),
        ("[services.ftp]\nrpm = 1\n", "unknown services"),
    ],
)
def test_bad_scenario_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_scenario(path)


def test_dataclass_validation() -> None:
    with pytest.raises(ValueError):
        AutomationSpec("not-hex", "x")
    with pytest.raises(ValueError):
        ServiceProfile(hit_ratio=2)
    with pytest.raises(ValueError):
        Incident("cache_drop", NOW, NOW, magnitude=0.2)
    with pytest.raises(ValueError):
        Scenario(stacks=[Stack("same"), Stack("same")])
    assert Incident("5xx_spike", NOW, NOW + timedelta(1)).magnitude == 0.3  # kind default
