"""``stackwatch doctor``: one line per check, each failure with its fix, exit 1 on any."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent.cli import main
from agent.simulator import Scenario, Simulator
from agent.simulator.scenario import hex_id
from tests.conftest import HttpReceiver
from tests.setup.conftest import MEMBER, ORG, STACKS, STATIC_TOKEN, write_config

OPERATIONS = hex_id("project", "Operations")  # the default scenario's project


def doctor(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str]:
    code = main(["doctor", "--config", str(config), *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out


def lines(out: str, mark: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(mark)]


def test_all_green(capsys, tmp_path: Path, simulator: Simulator, http_receiver) -> None:
    channel = f'[[notify.channels]]\nname = "hook"\nurls = ["json://{http_receiver.url}/doctor"]\n'
    config = write_config(
        tmp_path,
        simulator,
        token=STATIC_TOKEN,
        channels=channel,
        extra_contentstack=f'automations_projects = ["{OPERATIONS}"]',
    )

    code, out = doctor(capsys, config)

    assert code == 0, out
    assert lines(out, "✘") == []
    oks = "\n".join(lines(out, "✔"))
    for expected in (
        f"config {config}: valid, 1 rules in 1 files",
        f"Analytics API accepts the credentials for organization {ORG}",
        "stack 'Website': API key accepted",
        "stack 'Mobile': API key accepted",
        "of 10 requests left in the current second",
        f"Automations project {OPERATIONS} (Operations) found",
        "state directory",
        "channel 'hook': ***: test message sent",  # masked as notify-test masks it
    ):
        assert expected in oks
    assert "all checks passed" in out
    assert len(http_receiver.posts("/doctor")) == 1  # the channel really got a message
    assert STATIC_TOKEN not in out


def test_invalid_token_names_eviction(capsys, tmp_path, simulator) -> None:
    code, out = doctor(
        capsys, write_config(tmp_path, simulator, token="blt-not-valid"), "--no-send"
    )
    assert code == 1
    failures = "\n".join(lines(out, "✘"))
    assert "Analytics API: GET /analytics/v2/usage answered HTTP 401" in failures
    assert "Automations API: GET /v1/projects answered HTTP 401" in failures
    assert "evicted by a newer login" in out and "stackwatch login" in out
    assert "blt-not-valid" not in out


def test_analytics_403_explains_roles_and_enabling(
    capsys, monkeypatch, tmp_path, simulator
) -> None:
    token_file = tmp_path / "member-token"
    config = write_config(tmp_path, simulator, token_file=token_file)
    monkeypatch.setattr("sys.stdin", io.StringIO(MEMBER.password + "\n"))
    assert (
        main(["login", "--config", str(config), "--email", MEMBER.email, "--password-stdin"]) == 0
    )
    capsys.readouterr()

    code, out = doctor(capsys, config, "--no-send")

    assert code == 1
    assert lines(out, "✘ Analytics API: GET /analytics/v2/usage answered HTTP 403")
    assert "only organization Owner and Admin users may read analytics" in out
    assert "enabling for the organization by Contentstack support" in out
    assert lines(out, "✔ Automations API")  # a member may still read Automations


def test_wrong_stack_key_is_named_by_stack(capsys, tmp_path, simulator) -> None:
    stacks = {"Website": STACKS[0].api_key, "Staging": "blt_typo_key"}
    config = write_config(tmp_path, simulator, token=STATIC_TOKEN, stacks=stacks)
    code, out = doctor(capsys, config, "--no-send")
    assert code == 1
    assert lines(out, "✔ stack 'Website'")
    assert lines(out, "✘ stack 'Staging': GET /analytics/v2/usage answered HTTP 412")
    assert "the API key of stack 'Staging' is wrong" in out


def test_unknown_automations_project(capsys, tmp_path, simulator) -> None:
    missing = "0" * 32
    config = write_config(
        tmp_path,
        simulator,
        token=STATIC_TOKEN,
        extra_contentstack=f'automations_projects = ["{missing}"]',
    )
    code, out = doctor(capsys, config, "--no-send")
    assert code == 1
    assert lines(out, f"✘ Automations project {missing}: not found")
    assert f"{OPERATIONS} (Operations)" in out  # the fix lists what exists


def test_rate_limit_above_the_servers(capsys, tmp_path) -> None:
    with Simulator(
        Scenario(stacks=STACKS), authtoken=STATIC_TOKEN, organization_uid=ORG, rate_limit=4
    ) as sim:
        code, out = doctor(capsys, write_config(tmp_path, sim, token=STATIC_TOKEN), "--no-send")
    assert code == 1
    assert lines(out, "✘ rate limit:")
    assert "set contentstack.rate_limit to at most 4" in out


def test_unreachable_channel_and_unwritable_state(
    capsys, tmp_path: Path, simulator: Simulator, http_receiver: HttpReceiver
) -> None:
    http_receiver.fail = True
    (tmp_path / "not-a-dir").write_text("")
    channel = (
        '[[notify.channels]]\nname = "hook"\n'
        f'urls = ["json://user:hook-secret-77@{http_receiver.url}/x"]\n'
    )
    config = write_config(
        tmp_path,
        simulator,
        token=STATIC_TOKEN,
        channels=channel,
        state_path="not-a-dir/state.db",  # a file where a folder should be: fails even as root
    )
    code, out = doctor(capsys, config)
    assert code == 1
    assert lines(out, "✘ state directory")
    assert "set agent.state_path elsewhere" in out
    assert lines(out, "✘ channel 'hook': json://***@127.0.0.1")
    assert "hook-secret-77" not in out


def test_missing_and_invalid_config(capsys, tmp_path: Path, monkeypatch, simulator) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = doctor(capsys, tmp_path / "absent.toml")
    assert code == 1 and lines(out, "✘ config") and "not found" in out

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✘ config: no config.toml here" in out and "stackwatch init" in out

    config = write_config(tmp_path, simulator, token_file=tmp_path / "no-such-token")
    code, out = doctor(capsys, config)
    assert code == 1 and "run `stackwatch login`" in out


def test_no_credentials_at_all(capsys, tmp_path, simulator) -> None:
    code, out = doctor(capsys, write_config(tmp_path, simulator), "--no-send")
    assert code == 1
    assert lines(out, "✘ credentials: no credentials")
    assert "run `stackwatch login`" in out
    assert lines(out, "✔ state directory") and lines(out, "✔ channel 'console'")


def test_remediation_actions_are_looked_up_not_run(capsys, tmp_path, simulator) -> None:
    config = write_config(tmp_path, simulator, token=STATIC_TOKEN)
    purge, notify = hex_id(OPERATIONS, "purge"), hex_id(OPERATIONS, "notify")
    with config.open("a") as file:
        file.write(
            f"""
[remediate]
enabled = true
allowlist = ["Purge CDN cache"]
[[remediate.actions]]
name = "purge"
kind = "trigger"
trigger = "purge-cache"
project = "{OPERATIONS}"
automation_title = "Purge CDN cache"
[[remediate.actions]]
name = "off"
kind = "disable"
project = "{OPERATIONS}"
automation = "{notify}"
[[remediate.actions]]
name = "gone"
kind = "enable"
project = "{OPERATIONS}"
automation = "{"0" * 32}"
[[remediate.actions]]
name = "by-label"
kind = "disable"
project = "{{{{ labels.project }}}}"
automation = "{{{{ labels.automation }}}}"
"""
        )
    simulator.clear_requests()
    code, out = doctor(capsys, config)

    assert code == 1
    assert "✔ remediation: on, 4 action(s)" in out
    assert "✔ action 'purge': automation Purge CDN cache found, active" in out
    assert "✘ action 'off': automation Notify on publish is not on the allowlist" in out
    assert "✘ action 'gone': " in out and "404" in out
    assert "✔ action 'by-label': acts on the automation its alert names" in out
    writes = [r for r in simulator.requests if r.method == "PATCH" or "/run/" in r.path]
    assert writes == [] and purge not in out
