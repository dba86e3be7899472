"""``stackwatch automations ...`` and ``stackwatch audit`` against the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from agent.simulator import Simulator

from .conftest import AUTHTOKEN, NOTIFY, ORG, PROJECT, PURGE

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(authtoken=AUTHTOKEN, organization_uid=ORG) as simulator:
        yield simulator


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    (tmp_path / "rules").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[contentstack]
organization_uid = "{ORG}"
authtoken = "{AUTHTOKEN}"
analytics_base_url = "{sim.url}"
automations_base_url = "{sim.url}"
max_retries = 0
[agent]
state_path = "state.db"
log_level = "error"
"""
    )
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_executions(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run(capsys, config, "automations", "list", "--format", "json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    assert rows[PURGE]["title"] == "Purge CDN cache" and rows[PURGE]["active"] is True
    assert rows[PURGE]["project_title"] == "Operations"

    code, out, _ = run(capsys, config, "automations", "list")
    assert out.splitlines()[0].split() == ["PROJECT", "ID", "TITLE", "ACTIVE"]
    assert "Draft workflow" in out and " no" in out

    code, out, _ = run(
        capsys,
        config,
        "automations",
        "executions",
        "--automation",
        "Notify on publish",
        "--limit",
        "5",
        "--format",
        "json",
    )
    executions = json.loads(out)
    assert code == 0 and 0 < len(executions) <= 5
    assert {e["automation"] for e in executions} == {NOTIFY}


def test_disable_enable_leave_audit_records(
    capsys: pytest.CaptureFixture[str], config: Path, sim: Simulator
) -> None:
    code, out, _ = run(
        capsys,
        config,
        "automations",
        "disable",
        "Notify on publish",
        "--by",
        "ana",
        "--comment",
        "runaway",
    )
    assert code == 0
    assert out.strip() == "ana disabled automation Notify on publish in project Operations: runaway"
    patches = [(r.path, json.loads(r.body)) for r in sim.requests if r.method == "PATCH"]
    assert patches == [(f"/v1/projects/{PROJECT}/automations/{NOTIFY}", {"active": False})]

    code, out, _ = run(capsys, config, "automations", "disable", NOTIFY, "--project", PROJECT)
    assert code == 0
    assert out.strip() == (
        "automation Notify on publish in project Operations already is inactive; nothing to do"
    )
    assert len([r for r in sim.requests if r.method == "PATCH"]) == 1

    code, out, _ = run(capsys, config, "automations", "enable", NOTIFY, "--by", "ana")
    assert code == 0 and "ana enabled automation Notify on publish" in out

    code, out, _ = run(capsys, config, "audit", "--format", "json")
    records = json.loads(out)["actions"]
    assert [(r["kind"], r["outcome"], r["actor"]) for r in records] == [
        ("enable", "succeeded", "cli:ana"),
        ("disable", "succeeded", "cli:ana"),
    ]
    assert records[1]["detail"] == {"prior_active": True}

    code, out, _ = run(capsys, config, "audit", "--outcome", "failed", "--format", "json")
    assert json.loads(out) == {"audit": [], "actions": []}
    code, out, _ = run(capsys, config, "audit", "--automation", "Notify on publish")
    assert out.splitlines()[0].split() == [
        "AT",
        "OUTCOME",
        "ACTION",
        "RULE",
        "AUTOMATION",
        "MESSAGE",
    ]
    assert "ana disabled automation Notify on publish" in out


def test_unknown_automation_and_failed_patch(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, _, err = run(capsys, config, "automations", "disable", "No such thing")
    assert code == 1 and "no single automation 'No such thing'" in err
    # the draft has no trigger and action: the API refuses, and the audit says so
    code, _, err = run(capsys, config, "automations", "enable", "Draft workflow", "--by", "bo")
    assert code == 1 and "bo failed to enable automation Draft workflow" in err
    code, out, _ = run(capsys, config, "audit", "--format", "json", "--outcome", "failed")
    [record] = json.loads(out)["actions"]
    assert record["detail"]["prior_active"] is False and "422" in record["detail"]["error"]
