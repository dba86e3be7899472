"""On-call escalation tiers, with and without acknowledgement."""

from __future__ import annotations

import pytest

from .conftest import json_url


def config(receiver):
    return {
        "channels": [
            {"name": "chat", "urls": [json_url(receiver, "chat")]},
            {"name": "pager", "urls": [json_url(receiver, "pager")]},
            {"name": "lead", "urls": [json_url(receiver, "lead")]},
        ],
        "escalations": [
            {
                "name": "oncall",
                "tiers": [
                    {"after": "0s", "channels": ["chat"]},
                    {"after": "15m", "channels": ["pager"]},
                    {"after": "45m", "channels": ["lead"]},
                ],
            }
        ],
        "route": {
            "channels": [],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "24h",
            "routes": [{"match": {"severity": "critical"}, "escalation": "oncall"}],
        },
    }


def run(notifier, clock, seconds):
    clock.advance(seconds)
    notifier.tick()
    notifier.deliver()


def paths(receiver):
    return [r.path for r in receiver.requests]


def test_escalates_while_unacknowledged(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "firing", severity="critical", stack="prod")])
    run(notifier, clock, 30)
    assert paths(http_receiver) == ["/chat"]
    run(notifier, clock, 14 * 60)
    assert paths(http_receiver) == ["/chat"]
    run(notifier, clock, 31)  # 15m01s: the pager tier, straight away
    assert paths(http_receiver) == ["/chat", "/pager"]
    run(notifier, clock, 30 * 60)
    assert paths(http_receiver) == ["/chat", "/pager", "/lead"]
    # Every channel reached hears the resolution.
    notifier.submit([alerts.t("HighErrors", "resolved", severity="critical", stack="prod")])
    run(notifier, clock, 300)
    resolved = [r.path for r in http_receiver.requests if "[RESOLVED]" in r.body["title"]]
    assert sorted(resolved) == ["/chat", "/lead", "/pager"]


def test_ack_stops_escalation_and_is_announced(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    firing = alerts.t("HighErrors", "firing", severity="critical", stack="prod")
    notifier.submit([firing])
    run(notifier, clock, 30)
    clock.advance(9 * 60)
    assert notifier.ack(firing.fingerprint, "alice", "on it") == ["chat"]
    assert notifier.ack(firing.fingerprint, "alice") == []  # once per episode
    run(notifier, clock, 0)
    ack = http_receiver.posts("/chat")[-1]
    assert ack["title"] == "[ACK] HighErrors acknowledged by alice"
    assert "on it" in ack["message"]
    run(notifier, clock, 2 * 3600)
    assert paths(http_receiver) == ["/chat", "/chat"]  # no pager, no lead
    [status] = notifier.alerts()
    assert status.acked_by == "alice"

    # A new episode escalates afresh.
    notifier.submit([alerts.t("HighErrors", "resolved", severity="critical", stack="prod")])
    run(notifier, clock, 300)
    notifier.submit([alerts.t("HighErrors", "firing", severity="critical", stack="prod")])
    run(notifier, clock, 300)
    run(notifier, clock, 15 * 60)
    assert paths(http_receiver)[-1] == "/pager"


def test_ack_of_unknown_or_inactive_alert(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    with pytest.raises(KeyError):
        notifier.ack("0000", "alice")
    notifier.submit([alerts.t("HighErrors", "pending", severity="critical", stack="prod")])
    with pytest.raises(ValueError, match="not active"):
        notifier.ack(next(iter(alerts.states)), "alice")


def test_first_tier_respects_group_wait(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "firing", severity="critical", stack="prod")])
    run(notifier, clock, 29)
    assert paths(http_receiver) == []
    run(notifier, clock, 1)
    assert paths(http_receiver) == ["/chat"]
