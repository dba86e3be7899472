"""The CLI handlers: silences, acks, the audit trail they leave, and notify-test."""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta
from types import SimpleNamespace

from agent.clock import SystemClock
from agent.config import AgentSettings
from agent.daemon import cli as state_cli
from agent.notify import Notifier, NotifyConfig
from agent.notify import cli as notify_cli
from agent.store import Store

from .conftest import json_url


def settings_for(tmp_path, receiver):
    config = NotifyConfig.model_validate(
        {
            "channels": [{"name": "hook", "urls": [json_url(receiver)]}],
            "route": {"channels": ["hook"], "group_wait": "0s"},
        }
    )
    return SimpleNamespace(notify=config, agent=AgentSettings(state_path=tmp_path / "s.db"))


def parse(argv):
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    notify_cli.add_arguments(commands)
    state_cli.add_arguments(commands)
    return parser.parse_args(argv)


def test_cli_silences(tmp_path, http_receiver, capsys):
    settings = settings_for(tmp_path, http_receiver)
    args = parse(["silence", "add", "--match", "stack=prod", "--match", "alertname=~High.*",
                  "--duration", "2h", "--comment", "deploy", "--by", "bob"])  # fmt: skip
    assert args.settings_handler(settings, args) == 0
    silence_id = re.search(r"silence (\w+) until", capsys.readouterr().out).group(1)
    args = parse(["silence", "list"])
    assert args.settings_handler(settings, args) == 0
    listing = capsys.readouterr().out
    assert silence_id in listing and "stack=prod alertname=~High.*" in listing and "bob" in listing
    args = parse(["silence", "expire", silence_id])
    assert args.settings_handler(settings, args) == 0
    assert args.settings_handler(settings, args) == 1
    args = parse(["silence", "list"])
    args.settings_handler(settings, args)
    assert "no silences" in capsys.readouterr().out
    bad = parse(["silence", "add", "--match", "nonsense", "--duration", "1h"])
    assert bad.settings_handler(settings, bad) == 2


def test_cli_ack_and_notify_test(tmp_path, http_receiver, alerts, capsys):
    settings = settings_for(tmp_path, http_receiver)
    store = Store(settings.agent.state_path)
    notifier = Notifier(settings.notify, store, SystemClock())
    firing = alerts.t("HighErrors", "firing", stack="prod")
    notifier.submit([firing])
    notifier.tick()
    notifier.deliver()
    store.close()
    args = parse(["ack", firing.fingerprint, "--comment", "mine", "--by", "carol"])
    assert args.settings_handler(settings, args) == 0
    assert "announced on: hook" in capsys.readouterr().out
    args = parse(["ack", "nope"])
    assert args.settings_handler(settings, args) == 1
    args = parse(["notify-test", "hook"])
    assert args.settings_handler(settings, args) == 0
    assert http_receiver.posts()[-1]["title"] == "Stackwatch test notification"
    args = parse(["notify-test", "missing"])
    assert args.settings_handler(settings, args) == 2


def test_cli_silence_and_ack_show_in_the_audit_trail(tmp_path, http_receiver, alerts, capsys):
    settings = settings_for(tmp_path, http_receiver)
    store = Store(settings.agent.state_path)
    notifier = Notifier(settings.notify, store, SystemClock())
    firing = alerts.t("HighErrors", "firing", stack="prod")
    notifier.submit([firing])
    notifier.run_once()
    store.close()
    args = parse(["silence", "add", "--match", "stack=prod", "--duration", "1h", "--by", "bob"])
    assert args.settings_handler(settings, args) == 0
    silence_id = re.search(r"silence (\w+) until", capsys.readouterr().out).group(1)
    args = parse(["ack", firing.fingerprint, "--comment", "mine", "--by", "carol"])
    assert args.settings_handler(settings, args) == 0
    args = parse(["silence", "expire", silence_id, "--by", "dave"])
    assert args.settings_handler(settings, args) == 0
    refused = parse(["ack", "0123456789abcdef", "--by", "eve"])  # no such alert: no row
    assert refused.settings_handler(settings, refused) == 1
    capsys.readouterr()

    args = parse(["audit", "--format", "json"])
    assert args.settings_handler(settings, args) == 0
    trail = json.loads(capsys.readouterr().out)["audit"]
    assert [(row["actor"], row["action"], row["target"]) for row in trail] == [
        ("dave", "silence_expire", silence_id),
        ("carol", "ack", firing.fingerprint),
        ("bob", "silence_add", silence_id),
    ]
    assert {row["detail"]["via"] for row in trail} == {"cli"}
    assert trail[1]["detail"]["comment"] == "mine"
    assert trail[2]["detail"]["matchers"] == ["stack=prod"]
    args = parse(["audit"])
    assert args.settings_handler(settings, args) == 0
    table = capsys.readouterr().out
    assert "silence_add" in table and "carol" in table


def test_announce_tells_the_alerts_channels_even_when_silenced(tmp_path, http_receiver, alerts):
    settings = settings_for(tmp_path, http_receiver)
    store = Store(settings.agent.state_path)
    try:
        notifier = Notifier(settings.notify, store, SystemClock())
        firing = alerts.t("Runaway", "firing", automation="a1")
        notifier.submit([firing])
        notifier.add_silence(["alertname=Runaway"], duration=timedelta(hours=1), created_by="ann")
        notifier.run_once()
        assert http_receiver.posts() == []  # silenced: the alert itself is not told
        text = "Stackwatch disabled automation a1 in project P because rule Runaway fired."
        assert notifier.announce(firing.fingerprint, text) == ["hook"]
        assert notifier.announce("0000000000000000", text) == []  # no such alert
        notifier.run_once()
        [post] = http_receiver.posts()
        assert post["title"] == "Stackwatch remediation: Runaway"
        assert text in post["message"]
    finally:
        store.close()
