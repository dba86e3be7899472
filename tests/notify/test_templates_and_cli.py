"""Default and overridden templates."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from agent.notify import NotifyConfig
from agent.notify.destination import Destination
from agent.notify.message import AlertSnapshot, Message
from agent.notify.template import Renderer

from .conftest import START, json_url

NOW = START.timestamp()


def snapshot(**changes) -> AlertSnapshot:
    values = {
        "fingerprint": "abc123",
        "rule": "HighErrors",
        "labels": {"alertname": "HighErrors", "severity": "critical", "stack": "prod"},
        "annotations": {
            "summary": "Error rate 7.5%",
            "description": "Delivery API errors above threshold",
            "link": "https://dash/x",
            "runbook": "https://runbooks/errors",
            "band": "1 – 3",
        },
        "state": "firing",
        "episode": 1,
        "value": 7.5,
        "threshold": 5.0,
        "active_since": NOW - 754,
    }
    values.update(changes)
    return AlertSnapshot(**values)


def message(**changes) -> Message:
    values = {
        "kind": "alert",
        "created_at": NOW,
        "alerts": [snapshot()],
        "route_id": "root",
        "group_labels": {"alertname": "HighErrors", "stack": "prod"},
    }
    values.update(changes)
    return Message(**values)


def destination(scheme: str, kind: str) -> Destination:
    return Destination(id="d1", url=f"{scheme}://x", scheme=scheme, kind=kind, display="x")


@pytest.mark.parametrize("kind", ["markdown", "html", "text"])
def test_defaults_carry_everything(kind):
    title, body = Renderer().render(message(), kind)
    assert title == "[FIRING:1] HighErrors (stack=prod)"
    for expected in ("Error rate 7.5%", "7.5", "5", "1 – 3", "12m34s", "stack", "prod",
                     "https://dash/x", "https://runbooks/errors", "critical"):  # fmt: skip
        assert expected in body, (kind, expected, body)
    if kind == "markdown":
        assert "[Runbook](https://runbooks/errors)" in body and "**Error rate 7.5%**" in body


def test_short_and_html_escaping():
    hostile = snapshot(annotations={"summary": "<script>x</script>"})
    _, html = Renderer().render(message(alerts=[hostile]), "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    _, short = Renderer().render(message(), "short")
    assert short == "Error rate 7.5% = 7.5 (threshold 5) (expected 1 – 3)"


def test_override_and_fallback_on_error():
    renderer = Renderer()
    overrides = NotifyConfig.model_validate(
        {"templates": {"title": "{{ alerts[0].labels.stack }} is {{ status }}",
                       "text": "{{ alerts | map(attribute='value') | join(',') }}"}}
    ).templates  # fmt: skip
    assert renderer.render(message(), "text", overrides) == ("prod is firing", "7.5")
    broken = overrides.model_copy(update={"text": "{{ nosuchvar.x }}", "title": "{% if %}"})
    with capture_logs() as logs:
        title, body = renderer.render(message(), "text", broken)
    assert title == "[FIRING:1] HighErrors (stack=prod)" and "Error rate 7.5%" in body
    assert {entry["template"] for entry in logs if entry["event"] == "template_error_fallback"} == {
        "title",
        "text",
    }
    sneaky = overrides.model_copy(update={"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    with capture_logs() as logs:
        _, body = renderer.render(message(), "text", sneaky)
    assert "Error rate 7.5%" in body and logs[0]["event"] == "template_error_fallback"


def test_route_templates_used_for_delivery(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(
        {
            "channels": [{"name": "hook", "urls": [json_url(http_receiver)]}],
            "templates": {"title": "default: {{ alertnames }}"},
            "route": {
                "channels": ["hook"],
                "group_wait": "0s",
                "routes": [
                    {"match": {"stack": "prod"}, "templates": {"text": "PROD {{ status }}"}}
                ],
            },
        }
    )
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    notifier.tick()
    notifier.deliver()
    [post] = http_receiver.posts()
    assert (post["title"], post["message"]) == ("default: HighErrors", "PROD firing")


def test_incident_parts_per_alert():
    renderer = Renderer()
    two = message(alerts=[snapshot(), snapshot(fingerprint="def456", state="resolved")])
    parts = renderer.parts(two, destination("opsgenie", "short"), None)
    assert [(p.id, p.params["alias"], p.notify_type) for p in parts] == [
        ("d1:abc123", "abc123", "failure"),
        ("d1:def456", "def456", "success"),
    ]
    ack = renderer.parts(message(kind="ack", ack_by="al"), destination("pagerduty", "short"), None)
    assert ack == []  # Apprise's pagerduty:// cannot acknowledge
