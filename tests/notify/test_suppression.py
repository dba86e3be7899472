"""Silences, maintenance windows and inhibition (including the source-down storm)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.notify.config import InhibitRuleConfig, MaintenanceWindowConfig
from agent.notify.dispatch import FlushContext
from agent.notify.inhibit import Inhibitor, InhibitRule
from agent.notify.mute import Muting
from agent.notify.silence import MaintenanceWindow, Silence
from agent.notify.state import TrackedAlert

from .conftest import START, json_url, run_beat


def config(receiver, **extra):
    return {
        "channels": [{"name": "hook", "urls": [json_url(receiver)]}],
        "route": {
            "channels": ["hook"],
            "group_by": ["alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
        },
        **extra,
    }


def titles(receiver):
    return [post["title"] for post in receiver.posts()]


def test_silenced_alert_is_reported_and_notified_when_the_silence_ends(
    make_notifier, alerts, clock, http_receiver
):
    notifier = make_notifier(config(http_receiver))
    silence = notifier.add_silence(
        ["stack=~prod.*", "alertname!=Other"],
        duration=timedelta(hours=1),
        created_by="bob",
        comment="deploy",
    )
    notifier.submit(
        [
            alerts.t("HighErrors", "firing", stack="prod-eu"),
            alerts.t("SlowPublish", "firing", stack="dev"),
        ]
    )
    run_beat(notifier, clock, 30)
    assert titles(http_receiver) == ["[FIRING:1] SlowPublish"]
    status = {a.labels["stack"]: a for a in notifier.alerts()}
    assert status["prod-eu"].suppressed == f"silence:{silence.id}"
    assert status["prod-eu"].state == "firing"  # state kept while silenced
    assert [s.id for s in notifier.silences()] == [silence.id]

    run_beat(notifier, clock, 1800)
    assert len(http_receiver.posts()) == 1
    run_beat(notifier, clock, 1800)  # the silence has ended; the alert still fires
    assert titles(http_receiver)[-1] == "[FIRING:1] HighErrors"
    assert notifier.silences() == []
    assert notifier.silences(include_expired=True)[0].comment == "deploy"
    assert [a.suppressed for a in notifier.alerts()] == [None, None]


def test_expiring_a_silence_notifies_at_once(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    silence = notifier.add_silence(["alertname=HighErrors"], duration=timedelta(hours=8))
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 30)
    assert http_receiver.posts() == []
    assert notifier.expire_silence(silence.id)
    assert not notifier.expire_silence(silence.id)
    run_beat(notifier, clock, 1)  # no waiting for the group interval
    assert titles(http_receiver) == ["[FIRING:1] HighErrors"]


def test_resolution_of_a_notified_alert_passes_a_silence(
    make_notifier, alerts, clock, http_receiver
):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 30)
    notifier.add_silence(["alertname=HighErrors"], duration=timedelta(hours=8))
    notifier.submit([alerts.t("HighErrors", "resolved", stack="prod")])
    run_beat(notifier, clock, 300)
    assert titles(http_receiver) == ["[FIRING:1] HighErrors", "[RESOLVED] HighErrors"]


def test_maintenance_window_in_a_time_zone(make_notifier, alerts, clock, http_receiver):
    window = {
        "name": "sunday-deploys",
        "weekdays": ["Sunday"],
        "start": "23:00",
        "end": "01:30",
        "timezone": "Europe/Berlin",
        "matchers": ["stack=prod"],
    }
    notifier = make_notifier(config(http_receiver, maintenance=[window]))
    # Sunday 2024-03-10 22:30 UTC is 23:30 in Berlin (CET, UTC+1): inside the window.
    clock.set(datetime(2024, 3, 10, 22, 30, tzinfo=UTC))
    notifier.submit(
        [
            alerts.t("HighErrors", "firing", stack="prod"),
            alerts.t("SlowPublish", "firing", stack="dev"),
        ]
    )
    run_beat(notifier, clock, 30)
    assert titles(http_receiver) == ["[FIRING:1] SlowPublish"]
    muted = [a for a in notifier.alerts() if a.labels["stack"] == "prod"]
    assert muted[0].suppressed == "maintenance:sunday-deploys"
    # Monday 00:29 UTC = 01:29 Berlin: still inside (the window crosses midnight).
    clock.set(datetime(2024, 3, 11, 0, 29, tzinfo=UTC))
    notifier.tick()
    notifier.deliver()
    assert len(http_receiver.posts()) == 1
    clock.set(datetime(2024, 3, 11, 0, 31, tzinfo=UTC))  # 01:31 Berlin: over
    notifier.tick()
    notifier.deliver()
    assert titles(http_receiver)[-1] == "[FIRING:1] HighErrors"


def test_maintenance_window_follows_daylight_saving():
    window = MaintenanceWindow(
        MaintenanceWindowConfig(
            name="nightly", start="02:00", end="03:00", timezone="America/New_York"
        )
    )
    # 02:30 New York is 07:30 UTC in winter (EST) and 06:30 UTC in summer (EDT).
    assert window.active_at(datetime(2024, 1, 15, 7, 30, tzinfo=UTC))
    assert not window.active_at(datetime(2024, 1, 15, 6, 30, tzinfo=UTC))
    assert window.active_at(datetime(2024, 7, 15, 6, 30, tzinfo=UTC))
    assert not window.active_at(datetime(2024, 7, 15, 7, 30, tzinfo=UTC))


def test_source_down_inhibits_the_no_data_storm(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    storm = [
        alerts.t(rule, "nodata", stack=stack, value=None)
        for rule in ("HighErrors", "SlowPublish", "LowTraffic")
        for stack in ("prod", "staging", "dev")
    ]
    storm.append(alerts.t("WebhookFailures", "firing", stack="prod", source_dependent="true"))
    storm.append(alerts.t("OtherSignal", "firing", stack="prod"))  # independent of the source
    down = alerts.t(
        "ContentstackSourceDown",
        "firing",
        severity="critical",
        value=None,
        threshold=None,
        annotations={"summary": "Contentstack API unreachable: 401 Unauthorized"},
    )
    notifier.submit([*storm, down])
    run_beat(notifier, clock, 30)
    assert sorted(titles(http_receiver)) == [
        "[FIRING:1] ContentstackSourceDown",
        "[FIRING:1] OtherSignal",
    ]
    inhibited = [a for a in notifier.alerts() if a.suppressed]
    assert len(inhibited) == 10
    assert {a.suppressed for a in inhibited} == {f"inhibited:{down.fingerprint}"}
    for _ in range(6):
        run_beat(notifier, clock, 300)
    assert len(http_receiver.posts()) == 2

    # The source recovers and the data comes back: nothing more to say about the symptoms.
    recovered = [alerts.t(t.rule, "inactive", **_dims(t)) for t in storm[:-1]]
    notifier.submit([alerts.t("ContentstackSourceDown", "resolved", severity="critical"),
                     *recovered])  # fmt: skip
    run_beat(notifier, clock, 300)
    assert titles(http_receiver)[2:] == ["[RESOLVED] ContentstackSourceDown"]


def _dims(transition):
    return {k: v for k, v in transition.labels.items() if k not in ("alertname", "severity")}


def test_critical_inhibits_warning_with_equal_stack(make_notifier, alerts, clock, http_receiver):
    rule = {
        "source_matchers": ["severity=critical"],
        "target_matchers": ["severity=warning"],
        "equal": ["stack"],
    }
    notifier = make_notifier(config(http_receiver, inhibit_rules=[rule]))
    notifier.submit(
        [
            alerts.t("ErrorsCritical", "firing", severity="critical", stack="prod"),
            alerts.t("ErrorsWarning", "firing", severity="warning", stack="prod"),
            alerts.t("ErrorsWarning", "firing", severity="warning", stack="staging"),
        ]
    )
    run_beat(notifier, clock, 30)
    posts = {p["title"]: p["message"] for p in http_receiver.posts()}
    assert set(posts) == {"[FIRING:1] ErrorsCritical", "[FIRING:1] ErrorsWarning"}
    assert "staging" in posts["[FIRING:1] ErrorsWarning"]
    assert "prod" not in posts["[FIRING:1] ErrorsWarning"]
    # When the critical one resolves, the warning on prod is told.
    notifier.submit([alerts.t("ErrorsCritical", "resolved", severity="critical", stack="prod")])
    run_beat(notifier, clock, 300)
    assert "[RESOLVED] ErrorsCritical" in titles(http_receiver)
    assert any("ErrorsWarning on prod" in p["message"] for p in http_receiver.posts()[2:])


def _tracked(fingerprint, name, severity, state="firing"):
    labels = {"alertname": name, "severity": severity, "stack": "prod"}
    return TrackedAlert(fingerprint, name, labels, {}, state, episode=1)


def test_muting_alone_reports_the_first_reason_and_never_mutes_a_resolution():
    rule = InhibitRuleConfig(
        source_matchers=["severity=critical"], target_matchers=["severity=warning"], equal=["stack"]
    )
    window = MaintenanceWindow(
        MaintenanceWindowConfig(
            name="patch", weekdays=["mon"], start="08:00", end="10:00", matchers=["stack=prod"]
        )
    )
    warning, critical = _tracked("f1", "Slow", "warning"), _tracked("f2", "Down", "critical")
    everyone = [warning, critical]
    silence = Silence(
        "s1", ("alertname=Slow",), START, START + timedelta(hours=1), "bob", "", START
    )
    inhibiting = Muting(Inhibitor([InhibitRule.from_config(rule)]), [])
    assert inhibiting.reason(warning, alerts=everyone, silences=[], now=START) == "inhibited:f2"
    assert inhibiting.reason(critical, alerts=everyone, silences=[], now=START) is None
    reason = inhibiting.reason(warning, alerts=everyone, silences=[silence], now=START)
    assert reason == "silence:s1"  # what an operator did is named before what rules infer
    later = START + timedelta(hours=2)  # the silence is over
    assert inhibiting.reason(warning, alerts=everyone, silences=[silence], now=later) == (
        "inhibited:f2"
    )
    in_window = Muting(Inhibitor([InhibitRule.from_config(rule)]), [window])
    assert in_window.reason(warning, alerts=everyone, silences=[], now=START) == (
        "maintenance:patch"
    )
    resolved = _tracked("f1", "Slow", "warning", state="resolved")
    assert in_window.reason(resolved, alerts=everyone, silences=[silence], now=START) is None


def test_inhibition_sources_are_indexed_once_and_renewed_when_an_alert_changes():
    rule = InhibitRuleConfig(
        source_matchers=["severity=critical"], target_matchers=["severity=warning"], equal=["stack"]
    )
    inhibitor = Inhibitor([InhibitRule.from_config(rule)])

    def alert(fingerprint, severity, stack, state="firing"):
        labels = {"alertname": fingerprint, "severity": severity, "stack": stack}
        return TrackedAlert(fingerprint, fingerprint, labels, {}, state, episode=1)

    everyone = [
        alert("w-eu", "warning", "eu"),
        alert("w-us", "warning", "us"),
        alert("c-eu-pending", "critical", "eu", state="pending"),  # not firing: mutes nobody
        alert("c-eu", "critical", "eu"),
        alert("c-eu-2", "critical", "eu"),
    ]
    sources = inhibitor.sources(everyone)
    # the first firing source of the stack is named, as a scan of every alert names it
    assert inhibitor.inhibited_by(everyone[0], sources) == "inhibited:c-eu"
    assert inhibitor.inhibited_by(everyone[0], everyone) == "inhibited:c-eu"
    assert inhibitor.inhibited_by(everyone[1], sources) is None  # no critical in "us"
    assert inhibitor.inhibited_by(everyone[3], sources) is None  # sources are not targets

    context = FlushContext(
        now=0.0, alerts={a.fingerprint: a for a in everyone}, silences=[], acked=set()
    )
    context.sources = sources
    context.renew(alert("w-us", "warning", "us"))  # re-read unchanged: the index stands
    assert context.sources is sources
    context.renew(alert("c-us", "critical", "us"))  # a new firing source: indexed again
    assert context.sources is None
    renewed = inhibitor.sources(context.alerts.values())
    assert inhibitor.inhibited_by(context.alerts["w-us"], renewed) == "inhibited:c-us"
