from __future__ import annotations

import tomllib
from pathlib import Path

import agent.notify
from agent.notify import NotifyConfig
from agent.notify.route import RouteTree

EXAMPLE = Path(agent.notify.__file__).with_name("example.toml")


def test_example_config_parses(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "STACKWATCH_SLACK_URL", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    )
    pager = tmp_path / "pagerduty"
    pager.write_text("pdevents://0123456789abcdef0123456789abcdef\n")
    email = tmp_path / "email.yml"
    email.write_text("urls:\n  - mailto://127.0.0.1:2525?from=a@example.com&to=b@example.com\n")
    text = EXAMPLE.read_text()
    text = text.replace("/run/credentials/stackwatch/pagerduty", str(pager))
    text = text.replace("/etc/stackwatch/apprise-email.yml", str(email))
    config = NotifyConfig.model_validate(tomllib.loads(text)["notify"])
    tree = RouteTree(config.route, config.templates)
    names = [r.name for r in tree.match({"severity": "critical", "stack": "staging-1"})]
    assert names == ["critical", "staging"]
    assert tree.by_name["critical"].channels == ("console", "chat")
    assert tree.by_name["staging"].send_resolved is False
    assert config.escalations[0].tiers[1].after.total_seconds() == 900
    assert config.maintenance[0].start.hour == 23
