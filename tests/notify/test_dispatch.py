"""Grouping, group_wait/group_interval, repeat, resolve and dedupe, through a real receiver."""

from __future__ import annotations

from agent.evaluate.alerts import AlertState

from .conftest import json_url, run_beat


def config(receiver, **route):
    return {
        "channels": [{"name": "hook", "urls": [json_url(receiver)]}],
        "route": {
            "channels": ["hook"],
            "group_by": ["alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "1h",
            **route,
        },
    }


def test_one_message_per_group_listing_its_alerts(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    notifier.submit(
        [
            alerts.t("HighErrors", "firing", stack="prod"),
            alerts.t("HighErrors", "firing", stack="staging"),
            alerts.t("SlowPublish", "firing", stack="prod"),
        ]
    )
    run_beat(notifier, clock, 29)
    assert http_receiver.posts() == []  # group_wait not over
    run_beat(notifier, clock, 1)
    posts = http_receiver.posts()
    assert sorted(p["title"] for p in posts) == ["[FIRING:1] SlowPublish", "[FIRING:2] HighErrors"]
    group = next(p for p in posts if "HighErrors" in p["title"])
    assert "HighErrors on prod" in group["message"] and "HighErrors on staging" in group["message"]

    # A new alert joins the flushed group: it waits for group_interval, not group_wait.
    notifier.submit([alerts.t("HighErrors", "firing", stack="dev")])
    run_beat(notifier, clock, 60)
    assert len(http_receiver.posts()) == 2
    run_beat(notifier, clock, 240)
    latest = http_receiver.posts()[-1]
    assert latest["title"] == "[FIRING:3] HighErrors"
    # The new alert is the subject; the others are listed as context, not re-announced.
    assert latest["message"].startswith("[FIRING] HighErrors on dev")
    assert "Still active: HighErrors on prod, HighErrors on staging" in latest["message"]


def test_repeat_interval_and_resolve(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 30)
    assert len(http_receiver.posts()) == 1
    for _ in range(11):  # 55 minutes of unchanged firing: no repeat yet
        run_beat(notifier, clock, 300)
    assert len(http_receiver.posts()) == 1
    run_beat(notifier, clock, 300)
    posts = http_receiver.posts()
    assert len(posts) == 2 and posts[1]["title"] == "[FIRING:1] HighErrors (reminder)"

    notifier.submit([alerts.t("HighErrors", AlertState.RESOLVED, stack="prod")])
    run_beat(notifier, clock, 300)
    posts = http_receiver.posts()
    assert posts[-1]["title"] == "[RESOLVED] HighErrors"
    assert "after 1h30s" in posts[-1]["message"]  # fired at 0, resolved at 1h0m30s
    for _ in range(20):
        run_beat(notifier, clock, 600)
    assert len(http_receiver.posts()) == 3  # nothing after the resolution


def test_same_state_never_sent_twice_to_a_channel(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(
        config(
            http_receiver,
            routes=[
                {"name": "a", "match": {"severity": "critical"}, "continue": True},
                {"name": "b", "match": {"stack": "prod"}},
            ],
        )
    )
    transition = alerts.t("HighErrors", "firing", severity="critical", stack="prod")
    notifier.submit([transition])
    notifier.submit([transition])  # the evaluator re-sending the same state
    run_beat(notifier, clock, 30)
    run_beat(notifier, clock, 300)
    assert len(http_receiver.posts()) == 1  # two routes, one channel: one message
    # A restart does not forget what was sent.
    again = notifier.__class__(notifier.config, notifier.store, clock)
    again.submit([transition])
    run_beat(again, clock, 300)
    assert len(http_receiver.posts()) == 1


def test_send_resolved_false_and_quiet_pending(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver, send_resolved=False))
    notifier.submit([alerts.t("HighErrors", "pending", stack="prod")])
    run_beat(notifier, clock, 60)
    assert http_receiver.posts() == []
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 30)
    notifier.submit([alerts.t("HighErrors", "resolved", stack="prod")])
    run_beat(notifier, clock, 300)
    assert [p["title"] for p in http_receiver.posts()] == ["[FIRING:1] HighErrors"]


def test_flapping_inside_group_wait_sends_nothing(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    clock.advance(10)
    notifier.submit([alerts.t("HighErrors", "resolved", stack="prod")])
    run_beat(notifier, clock, 60)
    assert http_receiver.posts() == []
    assert notifier.outbox_counts() == {}


def test_nodata_and_error_are_silent_unless_a_route_asks(
    make_notifier, alerts, clock, http_receiver
):
    notifier = make_notifier(config(http_receiver))
    notifier.submit([alerts.t("HighErrors", "nodata", stack="prod", value=None)])
    notifier.submit([alerts.t("LowTraffic", "error", stack="prod", value=None)])
    run_beat(notifier, clock, 30)
    run_beat(notifier, clock, 300)
    assert http_receiver.posts() == []
    notifier.submit([alerts.t("HighErrors", "inactive", stack="prod", value=None)])
    run_beat(notifier, clock, 300)
    assert http_receiver.posts() == []  # no resolution for what nobody was told


def test_routes_asking_for_nodata_and_error_get_their_own_titles_and_new_episodes(
    make_notifier, alerts, clock, http_receiver
):
    notifier = make_notifier(config(http_receiver, send_nodata=True, send_error=True))
    notifier.submit([alerts.t("HighErrors", "nodata", stack="prod", value=None)])
    notifier.submit([alerts.t("LowTraffic", "error", stack="prod", value=None)])
    run_beat(notifier, clock, 30)
    assert sorted(p["title"] for p in http_receiver.posts()) == [
        "[ERROR] LowTraffic",
        "[NO DATA] HighErrors",
    ]
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 300)
    notifier.submit([alerts.t("HighErrors", "resolved", stack="prod")])
    run_beat(notifier, clock, 300)
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 300)
    titles = [p["title"] for p in http_receiver.posts()[2:]]
    assert titles == ["[FIRING:1] HighErrors", "[RESOLVED] HighErrors", "[FIRING:1] HighErrors"]


def test_next_due_and_housekeeping(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver, group_wait="30s") | {"retention": "1d"})
    assert notifier.next_due() is None
    start = clock.now()
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    assert (notifier.next_due() - start).total_seconds() == 30
    run_beat(notifier, clock, 30)
    notifier.submit([alerts.t("HighErrors", "resolved", stack="prod")])
    run_beat(notifier, clock, 300)
    db = notifier.store.connection()
    assert db.execute("SELECT COUNT(*) FROM notify_alerts").fetchone()[0] == 1
    run_beat(notifier, clock, 2 * 86400)
    for table in ("notify_alerts", "notify_log", "notify_outbox", "notify_groups"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    # Forgotten alerts come back as new episodes and are notified again.
    notifier.submit([alerts.t("HighErrors", "firing", stack="prod")])
    run_beat(notifier, clock, 30)
    assert [p["title"] for p in http_receiver.posts()][-1] == "[FIRING:1] HighErrors"
