"""Channel sources (inline, env, files, Apprise config), console output, secrets kept out."""

from __future__ import annotations

import argparse
import logging
from types import SimpleNamespace

import structlog

from agent.config import AgentSettings
from agent.logs import configure_logging
from agent.notify import NotifyConfig, cli

from .conftest import json_url

SECRET = "Sup3rS3cretT0ken"


def test_channel_urls_from_env_files_and_apprise_config(
    make_notifier, alerts, clock, http_receiver, tmp_path, monkeypatch
):
    monkeypatch.setenv("HOOK_URL", json_url(http_receiver, "env"))
    url_file = tmp_path / "urls"
    url_file.write_text(f"# comment\n{json_url(http_receiver, 'file')}\n")
    apprise_config = tmp_path / "apprise.yml"
    apprise_config.write_text(f"urls:\n  - {json_url(http_receiver, 'yaml')}\n")
    notifier = make_notifier(
        {
            "channels": [
                {
                    "name": "hook",
                    "url_env": ["HOOK_URL"],
                    "url_files": [url_file],
                    "config_files": [apprise_config],
                }
            ],
            "route": {"channels": ["hook"], "group_wait": "0s"},
        }
    )
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    notifier.tick()
    assert notifier.deliver().delivered == 1
    assert sorted(r.path for r in http_receiver.requests) == ["/env", "/file", "/yaml"]


def test_console_prints_one_clear_line(make_notifier, alerts, clock, capsys):
    notifier = make_notifier(
        {
            "channels": [{"name": "console", "urls": ["console://?color=yes"]}],
            "route": {"channels": ["console"], "group_wait": "0s"},
        }
    )
    notifier.submit([alerts.t("HighErrors", "firing", severity="critical", stack="prod")])
    notifier.tick()
    notifier.deliver()
    lines = [line for line in capsys.readouterr().out.splitlines() if "HighErrors" in line]
    assert len(lines) == 1
    assert lines[0].startswith("\033[1;31m● [FIRING:1] HighErrors")
    assert "HighErrors on prod = 7.5 (threshold 5)" in lines[0]


def test_secrets_never_in_logs_errors_or_cli_output(
    make_notifier, alerts, clock, http_receiver, capsys, caplog, tmp_path
):
    configure_logging("debug", json_output=True)
    caplog.set_level(logging.DEBUG)
    try:
        config = NotifyConfig.model_validate(
            {
                "channels": [
                    {"name": "hook", "urls": [f"json://bot:{SECRET}@{http_receiver.url}/x"]},
                    {"name": "pager", "urls": [f"pdevents://{SECRET}?url=http://{http_receiver.url}/pd"]},
                ],
                "route": {"channels": ["hook", "pager"], "group_wait": "0s"},
                "outbox": {"dead_letter_after": "1m", "retry_initial": "10s"},
            }
        )  # fmt: skip
        notifier = make_notifier(config)
        http_receiver.fail = True
        notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
        notifier.tick()
        reports = [notifier.deliver()]
        clock.advance(120)
        reports.append(notifier.deliver())
        assert reports[0].retrying == 2 and reports[1].dead == 2

        settings = SimpleNamespace(
            notify=config, agent=AgentSettings(state_path=tmp_path / "state.db")
        )
        code = cli.notify_test(settings, argparse.Namespace(channel="hook", message=""))
        assert code == 1
        http_receiver.fail = False
        assert cli.notify_test(settings, argparse.Namespace(channel="pager", message="")) == 0
        captured = capsys.readouterr()
        assert f"FAIL  json://***@{http_receiver.url}/x: " in captured.out
        assert "error=503" in captured.out and "ok    pdevents://***" in captured.out
        everything = "\n".join(
            [captured.out, captured.err, caplog.text, repr(reports)]
            + [
                str(tuple(row))
                for table in ("notify_outbox", "notify_dead_letters")
                for row in notifier.store.connection().execute(f"SELECT * FROM {table}")
            ]
        )
        assert SECRET not in everything.replace(f'"routing_key": "{SECRET}"', "")
        assert "notification_dead_letter" in captured.out + captured.err
    finally:
        structlog.reset_defaults()


def test_invalid_url_is_reported_without_its_value(make_notifier):
    import pytest

    from agent.config import ConfigError

    with pytest.raises(ConfigError) as error:
        make_notifier({"channels": [{"name": "bad", "urls": [f"nosuchscheme://{SECRET}"]}]})
    assert SECRET not in str(error.value) and "URL #1" in str(error.value)


def test_a_daemon_keeps_only_the_apprise_plugins_its_channels_use(
    make_notifier, alerts, http_receiver
):
    import sys

    from agent.notify import plugins

    plugins.keep_used_only()  # (the conftest gives the next test every plugin again)
    hooks = make_notifier(
        {
            "channels": [{"name": "hook", "urls": [json_url(http_receiver)]}],
            "route": {"channels": ["hook"], "group_wait": "0s"},
        }
    )
    assert "apprise.plugins.discord" not in sys.modules
    assert "apprise.plugins.email" not in sys.modules
    # a reloaded config may name any other scheme: its URLs are judged as before
    mail = make_notifier(
        {"channels": [{"name": "mail", "urls": ["mailtos://u:p@mail.example.com"]}]},
        db="other.db",
    )
    assert mail.channels.get("mail") is not None
    assert "apprise.plugins.email" in sys.modules
    assert "apprise.plugins.discord" not in sys.modules
    # and what the first channels send with stayed
    hooks.submit([alerts.t("HighErrors", "firing", stack="prod")])
    hooks.tick()
    assert hooks.deliver().delivered == 1
    assert [r.path for r in http_receiver.requests] == ["/hook"]
