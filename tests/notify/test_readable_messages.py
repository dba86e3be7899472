"""What the on-call reads, through real receivers (the webhook receiver, aiosmtpd): the
stack by name, the absolute start with its zone, links to the alert's page and to the
stack in Contentstack, how to ack, and a reminder telling today's value."""

from __future__ import annotations

from agent.notify.links import Links

from .conftest import json_url, run_beat

LINKS = Links(
    external_url="https://sw.example.com/", contentstack_app="https://app.contentstack.com"
)
KEY = "blt5a1c0ffee0123"
PROD = {"stack": KEY, "stack_name": "prod", "service": "cdn"}


def test_webhook_message_names_the_stack_and_links_page_console_and_ack(
    make_notifier, alerts, clock, http_receiver
):
    notifier = make_notifier(
        {
            "channels": [{"name": "hook", "urls": [json_url(http_receiver)]}],
            "route": {"channels": ["hook"], "group_wait": "0s", "group_by": ["alertname", "stack"]},
        },
        links=LINKS,
    )
    firing = alerts.t(
        "HighErrors", "firing", annotations={"summary": "5xx at 7.5% on prod"}, **PROD
    )
    notifier.submit([firing])
    run_beat(notifier, clock)
    (post,) = http_receiver.posts("/hook")
    assert post["title"] == "[FIRING:1] HighErrors (stack=prod)"
    body = post["message"]
    assert "since: 2024-03-04 09:00:00 UTC" in body
    assert f"alert: https://sw.example.com/alerts/{firing.fingerprint}" in body
    assert f"contentstack: https://app.contentstack.com/#!/stack/{KEY}/dashboard" in body
    assert f"ack: stackwatch ack {firing.fingerprint}" in body
    assert "stack=prod" in body and "stack_name" not in body
    # the API key only inside the Contentstack link, which needs it
    assert body.count(KEY) == 1

    clock.advance(600)
    notifier.submit([alerts.t("HighErrors", "resolved", **PROD)])
    run_beat(notifier, clock, 300)
    resolved = http_receiver.posts("/hook")[-1]
    assert resolved["title"] == "[RESOLVED] HighErrors (stack=prod)"
    assert "started: 2024-03-04 09:00:00 UTC" in resolved["message"]
    assert "stackwatch ack" not in resolved["message"]


def test_email_gives_the_start_in_the_configured_zone_and_links(
    make_notifier, alerts, clock, smtp_receiver
):
    url = (
        f"mailto://127.0.0.1:{smtp_receiver.port}?from=sw@example.com"
        "&to=oncall@example.com&mode=insecure"
    )
    notifier = make_notifier(
        {
            "channels": [{"name": "mail", "urls": [url]}],
            "route": {"channels": ["mail"], "group_wait": "0s"},
            "timezone": "Europe/Berlin",
        },
        links=LINKS,
    )
    firing = alerts.t("HighErrors", "firing", **PROD)
    notifier.submit([firing])
    report = run_beat(notifier, clock)
    assert report.delivered == 1, report.errors
    (mail,) = smtp_receiver.messages
    html = mail.get_body(("html",)).get_content()
    assert "2024-03-04 10:00:00 CET (UTC+01:00)" in html
    assert f'<a href="https://sw.example.com/alerts/{firing.fingerprint}">' in html
    assert f"<code>stackwatch ack {firing.fingerprint}</code>" in html
    assert KEY not in mail["Subject"]


def test_without_external_url_there_is_no_page_link(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(
        {
            "channels": [{"name": "hook", "urls": [json_url(http_receiver)]}],
            "route": {"channels": ["hook"], "group_wait": "0s"},
        }
    )
    notifier.submit([alerts.t("HighErrors", "firing", **PROD)])
    run_beat(notifier, clock)
    body = http_receiver.posts("/hook")[0]["message"]
    assert "/alerts/" not in body and "alert:" not in body
    assert "ack: stackwatch ack" in body


def test_a_reminder_and_an_ack_tell_the_current_value(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(
        {
            "channels": [{"name": "hook", "urls": [json_url(http_receiver)]}],
            "route": {"channels": ["hook"], "group_wait": "0s", "repeat_interval": "1h"},
        },
        links=LINKS,
    )
    firing = alerts.t("HighErrors", "firing", value=7.5, annotations={"summary": "at 7.5%"}, **PROD)
    notifier.submit([firing])
    run_beat(notifier, clock)
    assert "at 7.5%" in http_receiver.posts("/hook")[0]["message"]

    # the cycle hands notify what the engine reads now for alerts that fire on
    notifier.refresh([(firing.fingerprint, 12.0, {"summary": "at 12%"})])
    run_beat(notifier, clock, 3600)
    reminder = http_receiver.posts("/hook")[-1]
    assert "(reminder)" in reminder["title"]
    assert "at 12%" in reminder["message"] and "value: 12" in reminder["message"]
    assert "7.5" not in reminder["message"]

    notifier.ack(firing.fingerprint, "alice")
    notifier.deliver()
    ack = http_receiver.posts("/hook")[-1]
    assert "acknowledged by alice" in ack["title"]
    assert "at 12%" in ack["message"]
    assert "ack: stackwatch ack" not in ack["message"]  # already taken
