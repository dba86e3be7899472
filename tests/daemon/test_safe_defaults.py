"""Safe defaults: private state files whatever the umask, a token for every mutation,
no tokenless API on a reachable address."""

from __future__ import annotations

import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_settings
from agent.daemon import security
from agent.daemon.service import Daemon
from agent.store import Store

from .test_units import _daemon_config


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_state_database_and_its_folder_are_private_whatever_the_umask(tmp_path, open_umask):
    store = Store(tmp_path / "new" / "state.db")
    with store.tx() as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    assert _mode(tmp_path / "new") == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        if (tmp_path / "new" / name).exists():
            assert _mode(tmp_path / "new" / name) == 0o600, name
    store.close()


def test_the_apprise_folder_is_private(tmp_path, open_umask):
    from agent.notify.channels import ChannelRegistry

    ChannelRegistry([], tmp_path / "apprise")
    assert _mode(tmp_path / "apprise") == 0o700


def test_a_generated_token_is_written_once_0600_and_read_back(tmp_path, open_umask):
    assert security.read_api_token(tmp_path) is None
    token = security.api_token(tmp_path)
    assert len(token) >= 32
    assert _mode(tmp_path / security.TOKEN_FILE) == 0o600
    assert security.api_token(tmp_path) == token
    assert security.read_api_token(tmp_path) == token


@pytest.mark.parametrize(
    "host,configured,refused",
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("192.0.2.7", False, True),
        ("stackwatch.internal", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_only_loopback_may_go_without_a_configured_token(host, configured, refused):
    assert (security.bind_problem(host, configured) is not None) is refused


def test_run_refuses_a_reachable_bind_without_a_token(tmp_path, capsys, monkeypatch):
    config = _daemon_config(tmp_path)
    monkeypatch.setenv("STACKWATCH_AGENT__HTTP_BIND", "0.0.0.0")
    assert main(["run", "--config", str(config)]) == 2
    assert "no api_token is configured" in capsys.readouterr().err
    assert not (tmp_path / "state.db").exists()  # refused before touching anything


def test_without_a_configured_token_mutations_need_the_generated_one(tmp_path, monkeypatch):
    # nothing listens behind this config: a cycle gives up at once instead of retrying
    # for seconds, so stop() does not wait out its shutdown timeout on it
    monkeypatch.setenv("STACKWATCH_CONTENTSTACK__MAX_RETRIES", "0")
    config = _daemon_config(tmp_path)
    daemon = Daemon(load_settings(config), config)
    daemon.start()
    try:
        token = security.read_api_token(tmp_path)
        assert token
        url = daemon.api.url + "/api/v1/silences"
        body = b'{"matchers": ["alertname=x"], "duration": "1h"}'

        def post(headers: dict[str, str]) -> int:
            request = urllib.request.Request(url, body, {**headers}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert post({}) == 401
        assert post({"Authorization": f"Bearer {token}"}) == 201
    finally:
        daemon.stop()


def test_a_crashing_rule_group_is_reported_and_the_others_go_on(tmp_path, monkeypatch):
    from collections import Counter

    from agent.daemon import cycle
    from agent.daemon.grouping import RuleGroup
    from agent.daemon.transitions import EVALUATION_CRASHED
    from agent.evaluate.engine import CycleReport

    from .support import ratio_rule

    config = _daemon_config(tmp_path)
    (tmp_path / "rules" / "b.toml").write_text(
        ratio_rule("other", stack="Website", above=0.05, clear_below=0.02, interval="40s")
    )
    daemon = Daemon(load_settings(config), config)
    evaluated: list[str] = []
    broken_now = ["kept"]

    def evaluate(pipeline, store, rules, now):  # no API behind this config: judge nothing
        if any(r.name in broken_now for r in rules):
            raise ZeroDivisionError("a bug in one group")
        evaluated.extend(r.name for r in rules)
        return CycleReport(at=now), Counter()

    monkeypatch.setattr(cycle, "evaluate", evaluate)
    broken = RuleGroup(daemon.pipeline.engine.default_interval, ("kept",))
    healthy = RuleGroup(daemon.pipeline.engine.default_interval, ("other",))
    try:
        for _ in range(2):  # one meta-alert per episode, not one per crash
            daemon.run_group(broken)
        daemon.run_group(healthy)
        assert evaluated == ["other"]
        crashes = [
            a for a in daemon.notifier.alerts() if a.labels.get("alertname") == EVALUATION_CRASHED
        ]
        assert [(a.state, a.episode) for a in crashes] == [("firing", 1)]
        (summary,) = (
            daemon.store.connection()
            .execute("SELECT annotations FROM notify_alerts WHERE rule = ?", (EVALUATION_CRASHED,))
            .fetchone()
        )
        assert "ZeroDivisionError: a bug in one group" in summary
        assert daemon.metrics.evaluations.labels("kept", "crashed")._value.get() == 2
        broken_now.clear()
        daemon.run_group(broken)
        crashes = [
            a for a in daemon.notifier.alerts() if a.labels.get("alertname") == EVALUATION_CRASHED
        ]
        assert [a.state for a in crashes] == ["resolved"]
    finally:
        daemon.pipeline.close()
        daemon.store.close()


def test_a_reload_failing_in_any_way_keeps_the_running_pipeline(tmp_path, monkeypatch):
    config = _daemon_config(tmp_path)
    daemon = Daemon(load_settings(config), config)
    running = daemon.pipeline

    def broken(*args, **kwargs):
        raise KeyError("unexpected")

    monkeypatch.setattr(daemon, "_build_pipeline", broken)
    try:
        assert daemon.reload() is False
        assert daemon.pipeline is running
        assert daemon.metrics.reloads.labels("failed")._value.get() == 1
    finally:
        daemon.pipeline.close()
        daemon.store.close()
