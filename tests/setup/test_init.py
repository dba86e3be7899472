"""``stackwatch init`` writes a config that passes ``check``, and never overwrites unasked."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from agent.cli import main
from agent.setup.starter import STARTER_RULES

FLAGS = [
    "--region",
    "aws-eu",
    "--organization-uid",
    "blt_org_uid",
    "--stack",
    "Web site=blt_web",
    "--stack",
    "app=blt_app",
    "--notify-url",
    "json://user:hook-pass@127.0.0.1:9/hook",
]


def init(capsys, config: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["init", "--config", str(config), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_a_config_that_passes_check(capsys, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("blt-some-token\n")
    config = tmp_path / "site" / "config.toml"
    config.parent.mkdir()

    code, out, err = init(capsys, config, *FLAGS, "--authtoken-file", str(token))

    assert code == 0, err
    assert "OK: config valid" in out
    written = tomllib.loads(config.read_text())
    contentstack = written["contentstack"]
    assert contentstack["region"] == "aws-eu"
    assert contentstack["organization_uid"] == "blt_org_uid"
    assert contentstack["authtoken_file"] == str(token)
    assert contentstack["stacks"] == {"Web site": "blt_web", "app": "blt_app"}
    shipped = sorted(p.name for p in STARTER_RULES.glob("*.toml") if ".test." not in p.name)
    assert sorted(p.name for p in (config.parent / "rules").iterdir()) == shipped
    urls = config.parent / "notify-urls"
    assert urls.read_text().strip() == "json://user:hook-pass@127.0.0.1:9/hook"
    assert stat.S_IMODE(urls.stat().st_mode) == 0o600
    assert "hook-pass" not in config.read_text() + out + err
    # and check agrees on its own
    assert main(["check", "--config", str(config)]) == 0


def test_without_a_token_yet_the_config_still_passes_check(capsys, tmp_path: Path) -> None:
    code, out, err = init(capsys, tmp_path / "config.toml", *FLAGS)
    assert code == 0, err
    assert "stackwatch login --output" in out
    assert (
        "authtoken_file"
        not in tomllib.loads((tmp_path / "config.toml").read_text())["contentstack"]
    )


def test_init_refuses_to_overwrite_without_force(capsys, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("# mine\n")

    code, _, err = init(capsys, config, *FLAGS)

    assert code == 2
    assert "never overwrites" in err and str(config) in err
    assert config.read_text() == "# mine\n"
    assert not (tmp_path / "rules").exists()

    code, out, _ = init(capsys, config, *FLAGS, "--force")
    assert code == 0 and "OK: config valid" in out
    assert config.read_text() != "# mine\n"


def test_init_asks_on_a_terminal(capsys, monkeypatch, tmp_path: Path) -> None:
    answers = iter(["mars-1", "gcp-eu", "blt_org", "", "Website", "blt_w", "", ""])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))

    code, out, err = init(capsys, tmp_path / "config.toml")

    assert code == 0, err
    assert "one of:" in out  # the unknown region was asked again
    written = tomllib.loads((tmp_path / "config.toml").read_text())
    assert written["contentstack"]["region"] == "gcp-eu"
    assert written["contentstack"]["stacks"] == {"Website": "blt_w"}
    assert (tmp_path / "notify-urls").read_text().strip() == "console://"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--stack", "a=b"], "--organization-uid"),
        (["--organization-uid", "o"], "--stack NAME=API_KEY"),
        (["--organization-uid", "o", "--stack", "no-equals"], "expected NAME=API_KEY"),
    ],
)
def test_missing_answers_without_a_terminal(capsys, tmp_path, flags, message) -> None:
    code, _, err = init(capsys, tmp_path / "config.toml", *flags)
    assert code == 2 and message in err
    assert not (tmp_path / "config.toml").exists()


@pytest.mark.parametrize("command", ["check", "run", "once"])
def test_no_config_points_to_init(capsys, monkeypatch, tmp_path, command) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert "no config found" in err
    assert "stackwatch init" in err and "config.example.toml" in err


def test_an_unwritable_place_is_a_plain_error(capsys, tmp_path: Path) -> None:
    (tmp_path / "rules").write_text("a file where the rules folder goes")
    code, _, err = init(capsys, tmp_path / "config.toml", *FLAGS)
    assert code == 1 and "cannot write" in err and "Traceback" not in err
