"""A channel down while several alerts fire and resolve: everything is delivered once it
is back, in order per alert, each with its idempotency key; past the outbox's maximum age
a notification becomes a dead letter with a log line, a metric and a meta-alert.

In process: the injected clock, a real webhook receiver on 127.0.0.1, a real SQLite file.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from structlog.testing import capture_logs

from agent.notify.outbox import DEAD
from agent.notify.undeliverable import UNDELIVERABLE

from .conftest import json_url, run_beat

KEY = "Idempotency-Key"
TITLE = re.compile(r"^\[(FIRING|RESOLVED)[^\]]*\] (\w+)")


def config(receiver):
    return {
        "channels": [
            {"name": "hook", "urls": [json_url(receiver, "hook")]},
            {"name": "fallback", "urls": [json_url(receiver, "fallback")]},
        ],
        "route": {
            "channels": ["hook"],
            "group_by": ["..."],
            "group_wait": "0s",
            "group_interval": "1m",
            "routes": [{"match": {"alertname": UNDELIVERABLE}, "channels": ["fallback"]}],
        },
        "outbox": {
            "retry_initial": "1m",
            "retry_max": "10m",
            "dead_letter_after": "1h",
            "dead_letter_channel": "fallback",
        },
    }


def heard(receiver, path="/hook"):
    """alertname -> the states the receiver was told, in the order it heard them."""
    told = defaultdict(list)
    for post in receiver.posts(path):
        found = TITLE.match(post["title"])
        assert found, post["title"]
        told[found.group(2)].append(found.group(1))
    return dict(told)


@pytest.mark.parametrize("outage", ["503", "connection refused"])
def test_everything_queued_in_an_outage_arrives_in_order_per_alert(
    make_notifier, alerts, clock, http_receiver, outage
):
    notifier = make_notifier(config(http_receiver))
    if outage == "503":
        http_receiver.fail = True
    else:
        http_receiver.refuse()
    story = {  # minute -> what changes; the channel is down for 27 minutes
        1: ["Alpha firing", "Bravo firing", "Charlie firing"],
        3: ["Bravo resolved", "Delta firing"],
        7: ["Alpha resolved"],
        12: ["Alpha firing"],  # a second episode
    }
    retrying = 0
    for minute in range(1, 28):
        changes = [alerts.t(n, s, stack="prod") for n, s in map(str.split, story.get(minute, []))]
        notifier.submit(changes)
        retrying += run_beat(notifier, clock, 60).retrying
    assert retrying >= 7 and http_receiver.posts() == []
    assert notifier.outbox_counts() == {"pending": 7}

    if outage == "503":
        http_receiver.fail = False
    else:
        http_receiver.accept()
    for _ in range(12):  # at most retry_max until every row has had its next attempt
        run_beat(notifier, clock, 60)

    assert notifier.outbox_counts() == {"delivered": 7}
    assert heard(http_receiver) == {
        "Alpha": ["FIRING", "RESOLVED", "FIRING"],
        "Bravo": ["FIRING", "RESOLVED"],
        "Charlie": ["FIRING"],
        "Delta": ["FIRING"],
    }
    keys = [request.headers[KEY] for request in http_receiver.requests]
    stored = notifier.store.connection().execute("SELECT idempotency_key FROM notify_outbox")
    assert sorted(keys) == sorted(row[0] for row in stored)  # each once, each its row's


def test_idempotency_key_is_the_same_on_every_attempt(make_notifier, alerts, clock, http_receiver):
    notifier = make_notifier(config(http_receiver))
    seen = []

    def flaky(item):
        seen.append(item.headers[KEY])
        return (500, {}) if len(seen) < 3 else (200, {})

    http_receiver.respond = flaky
    notifier.submit([alerts.t("Alpha", "firing", stack="prod")])
    for _ in range(5):
        run_beat(notifier, clock, 120)
    assert notifier.outbox_counts() == {"delivered": 1}
    assert len(seen) == 3 and len(set(seen)) == 1 and re.fullmatch(r"[0-9a-f]{32}", seen[0])


def test_past_the_maximum_age_a_dead_letter_a_log_line_a_metric_and_a_meta_alert(
    make_notifier, alerts, clock, http_receiver
):
    notifier = make_notifier(config(http_receiver))
    http_receiver.respond = lambda item: (503, {}) if item.path == "/hook" else (202, {})
    dead_before = DEAD.labels("hook")._value.get()
    with capture_logs() as logs:
        notifier.submit([alerts.t(name, "firing", stack="prod") for name in ("Alpha", "Bravo")])
        for _ in range(16):
            run_beat(notifier, clock, 300)  # 80 minutes: past dead_letter_after (1h)

    buried = [entry for entry in logs if entry["event"] == "notification_dead_letter"]
    assert [entry["channel"] for entry in buried] == ["hook", "hook"]
    assert all(entry["log_level"] == "error" for entry in buried)
    assert DEAD.labels("hook")._value.get() == dead_before + 2
    rows = notifier.store.connection().execute("SELECT channel FROM notify_dead_letters")
    assert [row[0] for row in rows] == ["hook", "hook"]
    [meta] = [a for a in notifier.alerts() if a.alertname == UNDELIVERABLE]
    assert (meta.state, meta.labels["channel"]) == ("firing", "hook")
    fallback = [post["title"] for post in http_receiver.posts("/fallback")]
    assert fallback.count("Stackwatch: notification undeliverable") == 2
    assert heard_meta(fallback) == ["FIRING"]  # once, however many rows died

    http_receiver.requests.clear()
    http_receiver.respond = None  # the channel is back: new alerts go out, the meta resolves
    notifier.submit([alerts.t("Charlie", "firing", stack="prod")])
    for _ in range(3):
        run_beat(notifier, clock, 60)
    assert heard(http_receiver) == {"Charlie": ["FIRING"]}  # the dead stay dead
    assert heard_meta(post["title"] for post in http_receiver.posts("/fallback")) == ["RESOLVED"]
    assert [a.state for a in notifier.alerts() if a.alertname == UNDELIVERABLE] == ["resolved"]


def heard_meta(titles):
    return [m.group(1) for t in titles if (m := TITLE.match(t)) and m.group(2) == UNDELIVERABLE]


def test_a_row_leased_by_a_dead_deliverer_holds_back_the_later_rows_of_its_alert(
    make_notifier, alerts, clock, http_receiver
):
    first = make_notifier(config(http_receiver))
    first.submit([alerts.t(name, "firing", stack="prod") for name in ("Alpha", "Bravo")])
    first.tick()
    [held] = first.outbox.claim(1)  # ...and this deliverer dies holding it
    name = "Alpha" if "Alpha" in held["payload"] else "Bravo"
    other = "Bravo" if name == "Alpha" else "Alpha"
    run_beat(first, clock, 60)
    assert heard(http_receiver) == {other: ["FIRING"]}
    first.submit([alerts.t(name, "resolved", stack="prod")])

    second = make_notifier(config(http_receiver))  # a new process, same SQLite file
    run_beat(second, clock, 60)
    assert heard(http_receiver) == {other: ["FIRING"]}  # the resolution waits for the lease
    run_beat(second, clock, 300)  # the dead deliverer's lease expires
    assert heard(http_receiver) == {other: ["FIRING"], name: ["FIRING", "RESOLVED"]}
