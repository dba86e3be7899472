"""``[remediate]`` config: coherent actions, secrets from env or file, errors with positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import ConfigError, load_settings
from agent.evaluate.alerts import AlertState
from agent.evaluate.engine import Engine
from agent.evaluate.loader import RulesInvalid
from agent.redact import redact
from agent.remediate import EngineHealth, Guardrail
from agent.wiring import load_rule_set

ACTION = """
[[remediate.actions]]
name = "purge"
kind = "trigger"
trigger = "purge-cdn-cache"
project = "b366a45ebc21d4ca237ed7ef266dc598"
automation_title = "Purge CDN cache"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_http_key_from_a_file_or_the_environment_is_a_registered_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "purge.key").write_text("file-trigger-key-77\n")
    monkeypatch.setenv("PURGE_KEY", "env-trigger-key-88")
    path = write(
        tmp_path,
        "[remediate]\nenabled = true\nallowlist = ['Purge CDN cache']\n"
        + ACTION
        + 'http_key_file = "purge.key"\n'
        + ACTION.replace('"purge"', '"purge-2"')
        + 'http_key_env = "PURGE_KEY"\n',
    )
    actions = load_settings(path).remediate.build().actions
    assert actions["purge"].http_key.get_secret_value() == "file-trigger-key-77"  # type: ignore[union-attr]
    assert actions["purge-2"].http_key.get_secret_value() == "env-trigger-key-88"  # type: ignore[union-attr]
    assert redact("key file-trigger-key-77 env-trigger-key-88") == "key *** ***"
    assert "file-trigger-key-77" not in repr(actions["purge"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('when = "firing_for"\n', "'after' goes with when = \"firing_for\""),
        ("revert_on_resolve = true\n", "'revert_on_resolve' is for disable actions only"),
        ('method = "GET"\nbody = { a = "b" }\n', "'body' needs method = \"POST\""),
        ('body = { a = "{{ labels.x" }\n', "template"),
        ('http_key_env = "NOT_SET_ANYWHERE_42"\n', "NOT_SET_ANYWHERE_42 is not set"),
        ('automation = "abc"\n', "not both"),
    ],
)
def test_incoherent_actions_name_file_and_line(tmp_path: Path, extra: str, message: str) -> None:
    path = write(tmp_path, "[remediate]\n" + ACTION + extra)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:") and "remediate.actions.0" in problem
    assert message in problem


def test_enabled_needs_an_allowlist_and_rules_must_name_actions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[remediate]\nenabled = true\n" + ACTION))
    assert "'allowlist' is empty" in caught.value.problems[0]

    text = "[remediate]\nenabled = true\nallowlist = ['Purge CDN cache']\n" + ACTION
    settings = load_settings(write(tmp_path, text))
    (tmp_path / "rules" / "r.toml").write_text(
        '[[rule]]\nname = "r"\nactions = ["purge", "purgee"]\n[rule.query]\nmetric = "usage"\n'
        '[rule.value]\nfunction = "sum"\nfield = "total_api_count"\n'
        '[rule.condition]\ntype = "threshold"\nop = ">"\nvalue = 10\n'
    )
    with pytest.raises(RulesInvalid) as rules:
        load_rule_set(settings)
    assert "no action named 'purgee' in [[remediate.actions]]" in str(rules.value.problems[0])
    settings.remediate.enabled = False  # off: names of actions not configured are tolerated
    assert [rule.actions for rule in load_rule_set(settings)] == [("purge", "purgee")]


def test_engine_health_reads_the_live_engine() -> None:
    engine = Engine([], source=None)  # type: ignore[arg-type]
    health = EngineHealth(lambda: engine)
    from agent.evaluate.engine import Instance
    from agent.evaluate.state import InstanceState

    now = datetime(2024, 6, 1, tzinfo=UTC)
    firing = Instance("r", ("a",), {}, "fp-a", InstanceState(AlertState.FIRING, firing_since=now))
    quiet = Instance("r", ("b",), {}, "fp-b", InstanceState(AlertState.NODATA))
    engine.instances["r"] = {("a",): firing, ("b",): quiet}

    assert health.blocked("r", "fp-a") is None
    assert health.still_firing("fp-a", now.timestamp())
    assert not health.still_firing("fp-a", now.timestamp() - 600)  # an earlier episode
    assert health.blocked("r", "fp-b") is Guardrail.NODATA
    assert not health.still_firing("fp-b", now.timestamp())
    quiet.state = InstanceState(AlertState.ERROR, error="HTTP 500")
    assert health.blocked("r", "fp-a") is Guardrail.ERROR  # the rule's data is in error
    quiet.state = InstanceState(AlertState.INACTIVE)
    engine.source_state.state = InstanceState(AlertState.FIRING, firing_since=now - timedelta(1))
    assert health.blocked("r", "fp-a") is Guardrail.SOURCE_DOWN


def test_audit_filter_from_a_query_string() -> None:
    from agent.remediate import AuditFilter

    now = datetime(2024, 6, 1, tzinfo=UTC)
    wanted = AuditFilter.from_query(
        {"since": ["24h"], "outcome": ["failed"], "action": ["purge"], "limit": ["5"]}, now
    )
    assert (wanted.since, wanted.outcome, wanted.action, wanted.limit) == (
        now - timedelta(hours=24),
        "failed",
        "purge",
        5,
    )
    for bad, message in (
        ({"since": ["yesterday"]}, "invalid duration"),
        ({"outcome": ["great"]}, "outcome must be one of"),
        ({"limit": ["0"]}, "limit must be"),
    ):
        with pytest.raises(ValueError, match=message):
            AuditFilter.from_query(bad, now)
