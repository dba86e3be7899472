"""The alertmanager:// channel: against a real Alertmanager (Debian's
prometheus-alertmanager, one per module on 127.0.0.1, routing to a webhook of ours) and,
for the re-post schedule, the HTTP receiver standing in for one (the clock decides)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.clock import ManualClock
from agent.notify.alertmanager import am_alert
from agent.notify.links import Links
from agent.notify.message import AlertSnapshot
from tests.binaries import free_port, get_json, require, running, wait_until
from tests.conftest import HttpReceiver, serve_receiver

from .conftest import Alerts

LINKS = Links(
    external_url="https://sw.example.com", contentstack_app="https://app.contentstack.com"
)
PROD = {"stack": "blt5a1c0ffee", "stack_name": "prod", "service": "cdn"}


@dataclass
class RealAlertmanager:
    address: str
    #: where Alertmanager's own route delivers (its webhook receiver).
    hook: HttpReceiver

    def alerts(self) -> list[dict[str, Any]]:
        return list(get_json(f"http://{self.address}/api/v2/alerts"))

    def hooked(self, status: str) -> list[dict[str, Any]]:
        return [post for post in self.hook.posts("/hook") if post["status"] == status]


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAlertmanager]:
    binary = require("prometheus-alertmanager")
    folder = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    with serve_receiver() as hook:
        (folder / "am.yml").write_text(
            "global:\n  resolve_timeout: 5m\n"
            "route:\n  receiver: hook\n  group_by: [alertname]\n"
            "  group_wait: 100ms\n  group_interval: 200ms\n  repeat_interval: 1h\n"
            "receivers:\n  - name: hook\n    webhook_configs:\n"
            f"      - url: http://{hook.url}/hook\n        send_resolved: true\n"
        )
        args = [
            binary,
            f"--config.file={folder / 'am.yml'}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        with running(args, f"http://127.0.0.1:{port}/-/ready", folder / "am.log"):
            yield RealAlertmanager(f"127.0.0.1:{port}", hook)


@pytest.fixture
def clock() -> ManualClock:
    # Alertmanager judges startsAt/endsAt by its own clock: this test's starts at real now
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def test_firing_alert_reaches_alertmanager_with_labels_and_resolves(
    alertmanager: RealAlertmanager, make_notifier, alerts: Alerts, clock: ManualClock
):
    notifier = make_notifier(
        {
            "channels": [{"name": "am", "urls": [f"alertmanager://{alertmanager.address}"]}],
            "route": {"channels": ["am"], "group_wait": "0s", "group_interval": "1s"},
        },
        links=LINKS,
    )
    summary = {"summary": "CDN 5xx share 7.5% on stack prod"}
    firing = alerts.t("HighErrors", "firing", severity="critical", annotations=summary, **PROD)
    notifier.submit([firing])
    notifier.tick()
    assert notifier.deliver().delivered == 1

    (alert,) = wait_until(alertmanager.alerts, "the alert in Alertmanager")
    # the stack by name: its API key stays out of the labels
    assert alert["labels"] == {
        "alertname": "HighErrors",
        "severity": "critical",
        "stack": "prod",
        "service": "cdn",
    }
    notes = alert["annotations"]
    assert notes["summary"] == "CDN 5xx share 7.5% on stack prod"
    assert notes["value"] == "7.5" and notes["threshold"] == "5"
    assert notes["ack"] == f"stackwatch ack {firing.fingerprint}"
    assert notes["contentstack_url"] == (
        "https://app.contentstack.com/#!/stack/blt5a1c0ffee/dashboard"
    )
    assert alert["generatorURL"] == f"https://sw.example.com/alerts/{firing.fingerprint}"
    assert alert["status"]["state"] == "active"
    assert datetime.fromisoformat(alert["startsAt"]) == clock.now()
    # routed through Alertmanager's own tree to its receiver
    wait_until(lambda: alertmanager.hooked("firing"), "Alertmanager's webhook to fire")

    clock.advance(1)
    notifier.submit([alerts.t("HighErrors", "resolved", severity="critical", **PROD)])
    clock.advance(1)
    notifier.tick()
    assert notifier.deliver().delivered == 1
    wait_until(lambda: not alertmanager.alerts(), "the alert to leave the active list")
    (resolved, *_) = wait_until(lambda: alertmanager.hooked("resolved"), "the resolution")
    assert resolved["alerts"][0]["labels"]["stack"] == "prod"
    # the resolve time, give or take Alertmanager's own clock (a minute prefix failed
    # whenever the test ran across a minute boundary)
    ends = datetime.fromisoformat(resolved["alerts"][0]["endsAt"])
    assert abs(ends - clock.now()) < timedelta(seconds=10)


def test_test_notification_is_a_short_lived_alert(alertmanager: RealAlertmanager, make_notifier):
    notifier = make_notifier(
        {"channels": [{"name": "am", "urls": [f"alertmanager://{alertmanager.address}/"]}]}
    )
    [result] = notifier.test_channel("am", "hello from the test")
    assert result.ok, result.error
    found = wait_until(
        lambda: [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "StackwatchTest"],
        "the test alert",
    )
    assert found[0]["annotations"]["summary"] == "hello from the test"


def test_unreachable_alertmanager_fails_the_send_and_retries(make_notifier, alerts):
    notifier = make_notifier(
        {
            "channels": [{"name": "am", "urls": [f"alertmanager://127.0.0.1:{free_port()}"]}],
            "route": {"channels": ["am"], "group_wait": "0s"},
        }
    )
    notifier.submit([alerts.t("HighErrors", "firing", **PROD)])
    notifier.tick()
    report = notifier.deliver()
    assert report.delivered == 0 and report.retrying == 1


def test_reposts_while_firing_past_acks_and_stops_when_resolved(
    make_notifier, alerts: Alerts, clock: ManualClock, http_receiver: HttpReceiver
):
    http_receiver.respond = lambda _: (200, {})
    url = f"alertmanager://user:s3cretpass@{http_receiver.url}/am?resend=30s"
    notifier = make_notifier(
        {
            "channels": [{"name": "am", "urls": [url]}],
            # Stackwatch's own reminders are hours apart and stop on ack
            "route": {"channels": ["am"], "group_wait": "0s", "repeat_interval": "4h"},
        }
    )
    firing = alerts.t("HighErrors", "firing", value=9.0, **PROD)
    notifier.submit([firing])
    notifier.tick()
    notifier.deliver()

    def posts() -> list[list[dict[str, Any]]]:
        return http_receiver.posts("/am/api/v2/alerts")

    assert len(posts()) == 1
    clock.advance(29)
    notifier.deliver()
    assert len(posts()) == 1  # not yet due
    clock.advance(1)
    notifier.deliver()
    assert len(posts()) == 2
    assert posts()[1][0]["labels"]["alertname"] == "HighErrors"
    assert "endsAt" not in posts()[1][0]

    notifier.ack(firing.fingerprint, "alice")
    notifier.refresh([(firing.fingerprint, 11.0, {"summary": "now at 11"})])
    clock.advance(30)
    notifier.deliver()
    assert len(posts()) == 3  # an ack does not end the alert in Alertmanager
    assert posts()[2][0]["annotations"]["summary"] == "now at 11"
    assert posts()[2][0]["annotations"]["value"] == "11"

    notifier.submit([alerts.t("HighErrors", "resolved", **PROD)])
    clock.advance(300)
    notifier.tick()
    notifier.deliver()
    assert "endsAt" in posts()[-1][0]
    count = len(posts())
    clock.advance(300)
    notifier.deliver()
    assert len(posts()) == count  # resolved: no more posts
    auth = [r.headers.get("Authorization", "") for r in http_receiver.requests]
    assert all(value.startswith("Basic ") for value in auth)


def test_label_names_alertmanager_would_refuse_are_made_valid():
    alert = AlertSnapshot(
        "fp", "r", {"alertname": "r", "automation-title": "x", "1st": "y"}, {}, "firing", 1
    )
    assert am_alert(alert, Links(), 0.0)["labels"] == {
        "alertname": "r",
        "automation_title": "x",
        "_1st": "y",
    }
