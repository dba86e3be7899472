"""``stackwatch login`` and ``logout`` against the simulator over real HTTP."""

from __future__ import annotations

import io
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.cli import main
from agent.simulator import Fault, Simulator
from tests.setup.conftest import MEMBER, ORG, OWNER, SSO, TWO_FACTOR, write_config

SESSION = "/v3/user-session"


@pytest.fixture
def config(tmp_path: Path, simulator: Simulator) -> Path:
    """A config naming the simulator and the token file login writes."""
    return write_config(tmp_path / "etc", simulator, token_file=tmp_path / "token")


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The most permissive umask: the token file must be private regardless."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def login(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config: Path,
    user=OWNER,
    *extra: str,
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(user.password + "\n"))
    code = main(
        ["login", "--config", str(config), "--email", user.email, "--password-stdin", *extra]
    )
    out, err = capsys.readouterr()
    return code, out, err


def logins(sim: Simulator) -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path == SESSION)


def test_login_writes_a_private_token_file_and_shows_no_secret(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path, umask_zero
) -> None:
    code, out, err = login(capsys, monkeypatch, config)

    assert code == 0, err
    token_file = tmp_path / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert simulator.sessions.live_tokens(OWNER.email) == [token]
    assert f'authtoken_file = "{token_file}"' in out
    for secret in (token, OWNER.password):
        assert secret not in out + err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    # the token from login is what the daemon's clients then use, on both APIs
    headers = {"authtoken": token, "organization_uid": ORG}
    with httpx.Client(base_url=simulator.url, headers=headers, verify=False) as http:
        assert http.get("/v1/projects").status_code == 200
        usage = http.get(
            "/analytics/v2/usage", params={"orgUid": ORG, "from": "2024-01-01", "to": "2024-01-01"}
        )
    assert usage.status_code == 200, usage.text


def test_a_second_login_keeps_the_stored_token_while_it_works(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path
) -> None:
    assert login(capsys, monkeypatch, config)[0] == 0
    first = (tmp_path / "token").read_text()

    code, out, err = login(capsys, monkeypatch, config)

    assert code == 0, err
    assert "still works" in out and "kept" in out
    assert logins(simulator) == 1 and simulator.sessions.issued == 1
    assert (tmp_path / "token").read_text() == first
    assert first.strip() not in out + err

    assert login(capsys, monkeypatch, config, OWNER, "--force")[0] == 0
    assert simulator.sessions.issued == 2
    assert (tmp_path / "token").read_text() != first


def test_default_token_path_is_per_user(capsys, monkeypatch, tmp_path, simulator) -> None:
    config = write_config(tmp_path / "etc", simulator)  # no authtoken_file: the default path
    code, out, _ = login(capsys, monkeypatch, config)
    assert code == 0
    default = tmp_path / "xdg" / "stackwatch" / "authtoken"
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert f'authtoken_file = "{default}"' in out


def test_two_factor_code_is_asked_for_and_checked(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path
) -> None:
    code, _, err = login(capsys, monkeypatch, config, TWO_FACTOR)
    assert code == 1 and "two-factor" in err and "--tfa-code" in err
    code, _, err = login(capsys, monkeypatch, config, TWO_FACTOR, "--tfa-code", "000000")
    assert code == 1 and "not accepted" in err
    assert not (tmp_path / "token").exists()

    code, _, err = login(capsys, monkeypatch, config, TWO_FACTOR, "--tfa-code", TWO_FACTOR.tfa_code)
    assert code == 0, err
    assert simulator.sessions.live_tokens(TWO_FACTOR.email) == [
        (tmp_path / "token").read_text().strip()
    ]


def test_interactive_login_prompts_without_echo_then_for_the_code(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path
) -> None:
    answers = iter([TWO_FACTOR.email, TWO_FACTOR.tfa_code])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("agent.setup.cli._interactive", lambda: True)
    monkeypatch.setattr("builtins.input", ask)
    monkeypatch.setattr("getpass.getpass", lambda prompt: TWO_FACTOR.password)

    assert main(["login", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert prompts == ["Email: ", "Two-factor code: "]
    assert (tmp_path / "token").exists()
    assert TWO_FACTOR.password not in out + err


def test_password_from_the_environment(capsys, monkeypatch, config, tmp_path) -> None:
    monkeypatch.setenv("STACKWATCH_PASSWORD", OWNER.password)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["login", "--config", str(config), "--email", OWNER.email]) == 0
    assert (tmp_path / "token").exists()


@pytest.mark.parametrize("status", [422, 401])
def test_wrong_password_is_refused_clearly(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path, status: int
) -> None:
    wrong = type(OWNER)(OWNER.email, "not-the-password")
    if status == 401:  # the documentation allows any 4xx
        simulator.add_fault(Fault("http_status", path_prefix=SESSION, status=401, times=1))
    code, out, err = login(capsys, monkeypatch, config, wrong)
    assert code == 1
    assert f"login refused: POST {SESSION} answered HTTP {status}" in err
    assert "Traceback" not in err and wrong.password not in out + err
    assert not (tmp_path / "token").exists()


def test_sso_only_account_gets_a_clear_message(capsys, monkeypatch, config, tmp_path) -> None:
    code, _, err = login(capsys, monkeypatch, config, SSO)
    assert code == 1
    assert "SSO (single sign-on)" in err and "OAuth" in err
    assert not (tmp_path / "token").exists()


def test_evicted_token_is_noticed_and_replaced(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path
) -> None:
    assert login(capsys, monkeypatch, config)[0] == 0
    evicted = (tmp_path / "token").read_text().strip()
    with httpx.Client(verify=False) as http:  # (no TLS: skip loading the CA bundle)
        for _ in range(20):  # twenty logins elsewhere: the stored token is the oldest, and goes
            answer = http.post(
                simulator.url + SESSION,
                json={"user": {"email": OWNER.email, "password": OWNER.password}},
            )
            assert answer.status_code == 200
    assert evicted not in simulator.sessions.live_tokens(OWNER.email)

    code, _, err = main_doctor(capsys, config)
    assert code == 1
    assert "✘ Analytics API: GET /analytics/v2/usage answered HTTP 401" in err
    assert "evicted by a newer login" in err

    code, out, err = login(capsys, monkeypatch, config)
    assert code == 0
    assert "no longer works" in err
    fresh = (tmp_path / "token").read_text().strip()
    assert fresh in simulator.sessions.live_tokens(OWNER.email)
    assert evicted not in out + err and fresh not in out + err


def main_doctor(capsys, config: Path) -> tuple[int, str, str]:
    code = main(["doctor", "--config", str(config), "--no-send"])
    out, err = capsys.readouterr()
    return code, out, out + err


def test_logout_ends_the_session_and_deletes_the_file(
    capsys, monkeypatch, config: Path, simulator: Simulator, tmp_path: Path
) -> None:
    assert login(capsys, monkeypatch, config)[0] == 0
    token = (tmp_path / "token").read_text().strip()

    assert main(["logout", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "Logged out" in out
    assert not (tmp_path / "token").exists()
    assert simulator.sessions.live_tokens(OWNER.email) == []
    deletes = [r for r in simulator.requests if r.method == "DELETE" and r.path == SESSION]
    assert [r.headers["authtoken"] for r in deletes] == [token]
    assert token not in out + err

    assert main(["logout", "--config", str(config)]) == 1
    assert "no authtoken" in capsys.readouterr().err


def test_logout_of_an_evicted_token_still_deletes_it(capsys, config, tmp_path) -> None:
    (tmp_path / "token").write_text("blt-long-gone-token\n")
    assert main(["logout", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "no longer valid" in out and not (tmp_path / "token").exists()
    assert "blt-long-gone-token" not in out + err


def test_stored_token_of_a_member_counts_as_working(
    capsys, monkeypatch, config: Path, simulator: Simulator
) -> None:
    # a valid token without analytics rights is still a live token: no new login
    assert login(capsys, monkeypatch, config, MEMBER)[0] == 0
    assert login(capsys, monkeypatch, config, MEMBER)[0] == 0
    assert simulator.sessions.issued == 1


def test_on_a_real_terminal_the_password_is_not_echoed(
    config: Path, simulator: Simulator, tmp_path: Path
) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "login", "--config", str(config)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        env={**os.environ, "PYTHONUTF8": "1"},
    )
    os.close(terminal)
    transcript = b""

    def read_until(text: bytes) -> None:
        nonlocal transcript
        deadline = time.monotonic() + 60  # generous: a loaded machine starts Python slowly
        while text not in transcript:
            assert time.monotonic() < deadline, transcript
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    transcript += os.read(controller, 4096)
                except OSError:  # the child closed the terminal
                    assert text in transcript, transcript
                    return

    try:
        read_until(b"Email: ")
        os.write(controller, TWO_FACTOR.email.encode() + b"\n")
        read_until(b"Password: ")
        os.write(controller, TWO_FACTOR.password.encode() + b"\n")
        read_until(b"Two-factor code: ")
        os.write(controller, TWO_FACTOR.tfa_code.encode() + b"\n")
        read_until(b"authtoken_file = ")
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert TWO_FACTOR.email.encode() in transcript  # echoed, as typed
    assert TWO_FACTOR.password.encode() not in transcript
    token = (tmp_path / "token").read_text().strip()
    assert token.encode() not in transcript
    assert simulator.sessions.live_tokens(TWO_FACTOR.email) == [token]


def test_a_stored_token_is_not_replaced_blindly_without_an_organization(
    capsys, monkeypatch, tmp_path: Path, simulator: Simulator
) -> None:
    config = tmp_path / "bare.toml"
    config.write_text(f'[contentstack]\ncma_base_url = "{simulator.url}"\n')
    token = tmp_path / "xdg" / "stackwatch" / "authtoken"
    token.parent.mkdir(parents=True)
    token.write_text("blt-stored-token-99\n")

    code, out, err = login(capsys, monkeypatch, config)

    assert code == 2 and "organization_uid" in err and "--force" in err
    assert logins(simulator) == 0 and token.read_text() == "blt-stored-token-99\n"
    assert "blt-stored-token-99" not in out + err


def test_an_unwritable_token_file_ends_the_new_session_again(
    capsys, monkeypatch, tmp_path: Path, simulator: Simulator
) -> None:
    (tmp_path / "a-file").write_text("")
    config = write_config(tmp_path / "etc", simulator, token_file=tmp_path / "a-file" / "token")

    code, _, err = login(capsys, monkeypatch, config)

    assert code == 1 and "cannot write" in err and "ended again" in err
    assert simulator.sessions.issued == 1
    assert simulator.sessions.live_tokens(OWNER.email) == []
