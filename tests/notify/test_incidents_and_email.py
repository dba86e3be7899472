"""PagerDuty Events v2 (our pdevents://), Opsgenie (Apprise's plugin) and email, end to end."""

from __future__ import annotations

import importlib

from .conftest import json_url


def test_pagerduty_events_trigger_ack_resolve(make_notifier, alerts, clock, http_receiver):
    events = f"http://{http_receiver.url}/v2/enqueue"
    notifier = make_notifier(
        {
            "channels": [
                {"name": "pager", "urls": ["pdevents://R0UTINGKEY0123456789abcdef"]},
                {"name": "chat", "urls": [json_url(http_receiver, "chat")]},
            ],
            "pagerduty_events_url": events,
            "route": {"channels": ["pager", "chat"], "group_wait": "0s"},
        }
    )
    prod = alerts.t(
        "HighErrors",
        "firing",
        severity="critical",
        stack="prod",
        annotations={"summary": "Errors at 7.5%", "runbook": "https://runbooks/errors"},
    )
    staging = alerts.t("HighErrors", "firing", severity="critical", stack="staging")
    notifier.submit([prod, staging])
    notifier.tick()
    assert notifier.deliver().delivered == 2
    triggers = http_receiver.posts("/v2/enqueue")
    # One PagerDuty event per alert, keyed by its fingerprint.
    assert {e["dedup_key"] for e in triggers} == {prod.fingerprint, staging.fingerprint}
    assert {e["event_action"] for e in triggers} == {"trigger"}
    event = next(e for e in triggers if e["dedup_key"] == prod.fingerprint)
    assert event["routing_key"] == "R0UTINGKEY0123456789abcdef"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == "prod"
    assert "Errors at 7.5%" in event["payload"]["summary"]
    assert event["payload"]["custom_details"]["threshold"] == "5"
    assert event["links"] == [{"href": "https://runbooks/errors", "text": "Runbook"}]

    assert notifier.ack(prod.fingerprint, "alice", "looking") == ["chat", "pager"]
    notifier.deliver()
    acks = [e for e in http_receiver.posts("/v2/enqueue") if e["event_action"] == "acknowledge"]
    assert [e["dedup_key"] for e in acks] == [prod.fingerprint]
    chat = http_receiver.posts("/chat")[-1]
    assert "acknowledged by alice" in chat["title"] and "looking" in chat["message"]

    clock.advance(120)
    notifier.submit([alerts.t("HighErrors", "resolved", severity="critical", stack="prod")])
    clock.advance(300)
    notifier.tick()
    notifier.deliver()
    resolves = [e for e in http_receiver.posts("/v2/enqueue") if e["event_action"] == "resolve"]
    assert [e["dedup_key"] for e in resolves] == [prod.fingerprint]
    assert "payload" not in resolves[0]


def test_opsgenie_resolve_closes_the_alert_by_alias(
    make_notifier, alerts, clock, http_receiver, monkeypatch
):
    base = f"http://{http_receiver.url}/v2/alerts"
    # (looked up now: a daemon's channel loading in this process may have loaded it anew)
    opsgenie_plugin = importlib.import_module("apprise.plugins.opsgenie")
    monkeypatch.setitem(opsgenie_plugin.OPSGENIE_API_LOOKUP, "us", base)
    http_receiver.respond = lambda item: (202, {"requestId": f"req-{len(http_receiver.requests)}"})
    notifier = make_notifier(
        {
            "channels": [
                {"name": "genie", "urls": ["opsgenie://0123456789abcdef0123456789abcdef"]}
            ],
            "route": {"channels": ["genie"], "group_wait": "0s"},
        }
    )
    firing = alerts.t("HighErrors", "firing", severity="critical", stack="prod")
    notifier.submit([firing])
    notifier.tick()
    assert notifier.deliver().delivered == 1
    [created] = http_receiver.posts("/v2/alerts")
    assert created["alias"] == firing.fingerprint

    # A new Notifier (a restart): Apprise's persistent store still knows the request id.
    restarted = notifier.__class__(notifier.config, notifier.store, clock)
    restarted.submit([alerts.t("HighErrors", "resolved", severity="critical", stack="prod")])
    clock.advance(300)
    restarted.tick()
    assert restarted.deliver().delivered == 1
    closes = [r.path for r in http_receiver.requests if "/close" in r.path]
    assert closes == ["/v2/alerts/req-1/close?identifierType=id"]  # id from the create


def test_email_through_local_smtp(make_notifier, alerts, clock, smtp_receiver):
    url = (
        f"mailto://127.0.0.1:{smtp_receiver.port}?from=stackwatch@example.com"
        "&to=oncall@example.com&mode=insecure"
    )
    notifier = make_notifier(
        {
            "channels": [{"name": "mail", "urls": [url]}],
            "link": "https://dash.example/errors",
            "route": {"channels": ["mail"], "group_wait": "0s", "group_by": ["alertname", "stack"]},
        }
    )
    notifier.submit(
        [
            alerts.t(
                "TrafficAnomaly",
                "firing",
                stack="prod",
                value=1250,
                threshold=None,
                annotations={
                    "summary": "Traffic far above normal",
                    "band_lower": "300",
                    "band_upper": "700",
                },
            )
        ]
    )
    clock.advance(600)
    notifier.tick()
    assert notifier.deliver().delivered == 1
    [mail] = smtp_receiver.messages
    assert mail["Subject"] == "[FIRING:1] TrafficAnomaly (stack=prod)"
    assert mail["To"] == "oncall@example.com"
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    for body in (html, text):
        assert "Traffic far above normal" in body
        assert "1250" in body and "300 – 700" in body
        assert "https://dash.example/errors" in body
    assert "for 10m" in text
