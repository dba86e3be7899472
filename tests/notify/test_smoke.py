from __future__ import annotations

from agent.evaluate.alerts import AlertState

from .conftest import json_url


def test_firing_then_resolved_through_console_and_json(
    make_notifier, alerts, clock, http_receiver, capsys
):
    notifier = make_notifier(
        {
            "channels": [
                {"name": "console", "urls": ["console://?color=no"]},
                {"name": "hook", "urls": [json_url(http_receiver)]},
            ],
            "route": {"channels": ["console", "hook"], "group_wait": "10s"},
        }
    )
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    assert notifier.tick() == 0
    clock.advance(10)
    assert notifier.tick() == 2
    report = notifier.deliver()
    assert report.delivered == 2, report
    out = capsys.readouterr().out
    assert "[FIRING:1] HighErrors" in out
    [post] = http_receiver.posts()
    assert post["title"] == "[FIRING:1] HighErrors"
    assert "value: 7.5" in post["message"]

    clock.advance(60)
    notifier.submit([alerts.t("HighErrors", AlertState.RESOLVED, stack="prod")])
    clock.advance(300)
    notifier.tick()
    assert notifier.deliver().delivered == 2
    assert "[RESOLVED] HighErrors" in capsys.readouterr().out
    assert http_receiver.posts()[-1]["title"] == "[RESOLVED] HighErrors"
    assert http_receiver.posts()[-1]["type"] == "success"
