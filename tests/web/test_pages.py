"""The web pages without a browser: a real ``Daemon`` (not started) on a real state file,
its pages asked through ``WebUI.handle`` as the daemon's HTTP server asks them."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import pytest

from agent.clock import ManualClock
from agent.config import load_settings
from agent.daemon import persistence
from agent.daemon.operations import Conflict, Invalid, NotFound
from agent.daemon.service import Daemon
from agent.daemon.transitions import CONFIG_FINGERPRINT, config_transition
from agent.evaluate.alerts import AlertState, Transition, fingerprint
from agent.evaluate.anomaly import AnomalyCondition, AnomalyTracker
from agent.evaluate.engine import Instance
from agent.evaluate.loader import load_rules
from agent.evaluate.state import InstanceState
from agent.web import Request, Response, WebUI
from agent.web.chart import build_chart

from ..daemon.support import ROOT, WEBSITE, ratio_rule, write_config

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
TOKEN = "web-test-api-token-7f3a"
HOST = "127.0.0.1:8123"
LABELS = {
    "alertname": "cdn-5xx",
    "severity": "critical",
    "stack": WEBSITE,
    "stack_name": "Website",
    "service": "cdn",
}
FP = fingerprint("cdn-5xx", LABELS)
#: one evaluation a minute; None: no data that minute
VALUES = [0.01, 0.02, None, 0.2, 0.3]
MAINTENANCE = """
[[notify.maintenance]]
name = "nightly-deploy"
start = "02:00"
end = "03:00"
matchers = ["stack_name=Mobile"]
"""


@dataclass
class Site:
    daemon: Daemon
    web: WebUI

    def get(self, target: str, cookie: str = "") -> Response:
        path, _, query = target.partition("?")
        headers = {"Host": HOST, **({"Cookie": cookie} if cookie else {})}
        return self.web.handle(Request("GET", path, parse_qs(query), headers, b"", "127.0.0.1"))

    def post(
        self, path: str, fields: dict[str, str], *, cookie: str = "", origin: str | None = None
    ) -> Response:
        headers = {"Host": HOST, "Origin": f"http://{HOST}" if origin is None else origin}
        if cookie:
            headers["Cookie"] = cookie
        body = urlencode(fields).encode()
        return self.web.handle(Request("POST", path, {}, headers, body, "127.0.0.1"))

    def csrf(self) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', self.get("/login").body.decode())
        assert match
        return match.group(1)

    def login(self) -> str:
        answer = self.post("/login", {"csrf": self.csrf(), "token": TOKEN, "next": "/"})
        assert answer.status == 303, answer.body
        return answer.headers["Set-Cookie"].split(";")[0]


def _fire(daemon: Daemon) -> None:
    """The alert's stored evaluations, and the transition to firing that notify records."""
    key = (("stack", WEBSITE),)
    start = NOW - timedelta(minutes=len(VALUES))
    for minute, value in enumerate(VALUES):
        at = start + timedelta(minutes=minute + 1)
        state = AlertState.FIRING if value is not None and value > 0.05 else AlertState.INACTIVE
        if value is None:
            state = AlertState.NODATA
        instance = Instance(
            "cdn-5xx",
            key,
            dict(LABELS),
            FP,
            state=InstanceState(state, since=at, value=value, evaluated_at=at),
            annotations={"summary": "cdn-5xx at <b>30%</b>"},
        )
        with daemon.store.tx() as conn:
            persistence.save(conn, [instance], daemon.pipeline.rule_hashes, at)
            persistence.record_samples(conn, [instance])
    firing = Transition(
        "cdn-5xx", FP, dict(LABELS), AlertState.PENDING, AlertState.FIRING, NOW, 0.3, 0.05,
        firing_since=NOW,
    )  # fmt: skip
    with daemon.store.tx():
        daemon.pipeline.react([firing])
    daemon.notifier.tick()  # group_wait 0: the firing notification is queued


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    # nothing listens on port 9: no request is answered, no notification delivered
    config = write_config(
        tmp_path, simulator_url="http://127.0.0.1:9", hook_port=9, origin=NOW, speed=1.0
    )
    config.write_text(config.read_text() + MAINTENANCE)
    (tmp_path / "rules" / "a.toml").write_text(
        ratio_rule("cdn-5xx", stack="Website", above=0.05, clear_below=0.02)
    )
    clock = ManualClock(NOW)
    daemon = Daemon(load_settings(config), config, clock=clock)
    _fire(daemon)
    try:
        refused = {Invalid: 400, NotFound: 404, Conflict: 409}
        yield Site(daemon, WebUI(daemon, TOKEN, refused=refused, clock=clock))
    finally:
        daemon.pipeline.close()
        daemon.store.close()


def _rows(page: Response) -> list[str]:
    return re.findall(r'<tr class="alert[^"]*" data-fingerprint="([0-9a-f]+)"', page.body.decode())


# -- reading ----------------------------------------------------------------------------


def test_alerts_page_shows_the_stack_name_and_filters(site: Site) -> None:
    page = site.get("/")
    text = page.body.decode()
    assert page.status == 200 and _rows(page) == [FP]
    assert '<td class="stack">Website</td>' in text
    assert WEBSITE not in text  # the API key is not what names the stack
    assert "0.3" in text and "0.05" in text  # value against its threshold
    assert "&lt;b&gt;30%&lt;/b&gt;" in text  # annotations are escaped
    assert 'http-equiv="refresh"' in text
    assert page.headers["X-Frame-Options"] == "DENY"  # no clicking "ack" through a frame
    assert "script-src" not in page.headers["Content-Security-Policy"]  # no script at all
    assert _rows(site.get("/?stack=Website&state=firing")) == [FP]
    assert _rows(site.get("/?stack=Mobile")) == []
    assert _rows(site.get("/?state=pending")) == []
    assert _rows(site.get("/?label=service%3Dcdn")) == [FP]
    assert _rows(site.get("/?label=service%3Dapi")) == []
    assert "KEY=VALUE" in site.get("/?label=service").body.decode()
    grouped = site.get("/?group=stack").body.decode()
    assert re.search(r"<h2>Website <small>1</small></h2>", grouped)


def test_alert_page_charts_values_against_the_threshold(site: Site) -> None:
    text = site.get(f"/alerts/{FP}").body.decode()
    chart = re.search(r'<svg class="chart".*?</svg>', text, re.S)
    assert chart, text
    svg = chart.group(0)
    points = re.findall(r'<circle class="point (\w+)" cx="([\d.]+)" cy="([\d.]+)"', svg)
    assert len(points) == len([v for v in VALUES if v is not None])
    assert len(re.findall(r'<polyline class="series"', svg)) == 2  # the no-data minute breaks it
    threshold = re.search(r'<line class="threshold"[^>]* y1="([\d.]+)"', svg)
    assert threshold
    ys = [float(p[2]) for p in points]
    # 0.05 is drawn between the low values (below it: larger y) and the high ones
    assert ys[1] > float(threshold.group(1)) > ys[2]
    assert [p[0] for p in points] == ["inactive", "inactive", "firing", "firing"]
    ticks = re.findall(r'<text class="tick y"[^>]*>([^<]+)<', svg)
    assert ticks == ["0", "0.1", "0.2", "0.3", "0.4"]  # round values, not below zero
    transitions = re.search(r'<table id="transitions">.*?</table>', text, re.S)
    assert transitions and transitions.group(0).count("<tr>") == 3  # in, out of nodata, firing
    assert 'id="ack-form"' in text and 'id="silence-form"' in text
    sent = re.search(r'<table id="notifications">.*?</table>', text, re.S)
    assert sent and re.search(r"<td>hook</td><td>alert</td>\s*<td>pending</td>", sent.group(0))
    assert "alertname=cdn-5xx\nservice=cdn\nstack_name=Website</textarea>" in text


def test_unknown_pages_and_alerts_answer_404(site: Site) -> None:
    assert site.get("/alerts/0123456789abcdef").status == 404
    assert site.get("/nowhere").status == 404
    assert site.get("/static/style.css").content_type.startswith("text/css")


def test_the_other_pages_read_without_a_login(site: Site) -> None:
    maintenance = site.get("/maintenance").body.decode()
    assert "nightly-deploy" in maintenance and "stack_name=Mobile" in maintenance
    health = site.get("/health").body.decode()
    assert "10 requests per second" in health and "No request made yet." in health
    assert '<span class="badge inactive" id="source">up</span>' in health
    assert site.get("/silences").status == 200
    assert "started" not in site.get("/audit").body.decode()  # the daemon never started


# -- changing ---------------------------------------------------------------------------


def test_ack_needs_a_login_a_form_of_ours_and_our_origin(site: Site) -> None:
    cookie = site.login()
    form = {"csrf": site.csrf(), "by": "ann", "comment": "on it", "next": f"/alerts/{FP}"}
    ack = f"/alerts/{FP}/ack"
    assert site.post(ack, form).status == 401  # no session
    assert site.post(ack, form, cookie="stackwatch_session=1.forged").status == 401
    assert site.post(ack, {**form, "csrf": "1.bad"}, cookie=cookie).status == 403
    assert site.post(ack, form, cookie=cookie, origin="http://evil.example").status == 403
    assert site.post(ack, form, cookie=cookie, origin="").status == 403
    assert site.daemon.operations().alert(FP)["acked_by"] is None  # type: ignore[index]
    done = site.post(ack, form, cookie=cookie)
    assert done.status == 303 and done.headers["Location"] == f"/alerts/{FP}?note=acked"
    assert site.daemon.operations().alert(FP)["acked_by"] == "ann"  # type: ignore[index]
    (row,) = site.daemon.operations().audit_trail(10, target=FP)
    assert (row["actor"], row["action"], row["detail"]) == (
        "ann",
        "ack",
        {"comment": "on it", "via": "web"},
    )
    page = site.get(f"/alerts/{FP}?note=acked", cookie=cookie).body.decode()
    assert "Alert acknowledged." in page and 'id="ack-form"' not in page


def test_login_refuses_a_wrong_token(site: Site) -> None:
    answer = site.post("/login", {"csrf": site.csrf(), "token": "guess"})
    assert answer.status == 401 and "Set-Cookie" not in answer.headers


def test_silence_and_expire_through_the_forms(site: Site) -> None:
    cookie = site.login()
    fields = {"csrf": site.csrf(), "matchers": "alertname=cdn-5xx\nservice=cdn", "next": "/"}
    assert site.post("/silences", {**fields, "duration": "soon"}, cookie=cookie).status == 400
    bad = site.post("/silences", {**fields, "matchers": "no-operator"}, cookie=cookie)
    assert bad.status == 400 and "no-operator" in bad.body.decode()
    made = site.post("/silences", {**fields, "duration": "1h"}, cookie=cookie)
    assert made.status == 303
    (silence,) = site.daemon.operations().silences()
    assert silence.matchers == ("alertname=cdn-5xx", "service=cdn")
    assert silence.ends_at == NOW + timedelta(hours=1)
    assert silence.created_by == "web@127.0.0.1"
    listed = site.get("/silences").body.decode()
    assert f'data-id="{silence.id}"' in listed
    expire = site.post(f"/silences/{silence.id}/expire", {"csrf": site.csrf()}, cookie=cookie)
    assert expire.status == 303
    assert site.daemon.operations().silences() == []
    actions = [row["action"] for row in site.daemon.operations().audit_trail(10)]
    assert actions == ["silence_expire", "silence_add"]
    assert "matchers: alertname=cdn-5xx, service=cdn; via: web" in site.get("/audit").body.decode()
    again = site.post(f"/silences/{silence.id}/expire", {"csrf": site.csrf()}, cookie=cookie)
    assert again.status == 404 and "no active silence" in again.body.decode()


def test_a_redirect_never_leaves_the_site(site: Site) -> None:
    cookie = site.login()
    form = {"csrf": site.csrf(), "next": "//evil.example/x"}
    answer = site.post(f"/alerts/{FP}/ack", form, cookie=cookie)
    assert answer.headers["Location"] == "/?note=acked"


# -- the chart --------------------------------------------------------------------------


def test_chart_draws_the_anomaly_band_and_nothing_without_values() -> None:
    start = NOW
    samples = [
        {
            "at": (start + timedelta(minutes=i)).isoformat(),
            "value": value,
            "state": "firing" if value > 20 else "inactive",
            "lower": 8.0,
            "upper": 12.0,
        }
        for i, value in enumerate([10.0, 11.0, 9.0, 30.0])
    ]
    chart = build_chart(samples, None)
    assert chart is not None and chart.threshold_y is None and chart.band is not None
    corners = [tuple(map(float, pair.split(","))) for pair in chart.band.split()]
    assert len(corners) == 2 * len(samples)  # the upper edge there, the lower edge back
    upper_y, lower_y = corners[0][1], corners[-1][1]
    inside = [p.y for p in chart.points[:3]]
    assert all(upper_y < y < lower_y for y in inside)  # SVG y grows downwards
    assert chart.points[3].y < upper_y and chart.points[3].state == "firing"
    assert build_chart([{**samples[0], "value": None}], 1.0) is None
    flat = build_chart([{**s, "value": 5.0, "lower": None} for s in samples], 5.0)
    assert flat is not None and {p.y for p in flat.points} == {flat.threshold_y}


def test_an_anomaly_rules_band_is_stored_with_each_value(site: Site) -> None:
    rules = {item.rule.name: item.rule for item in load_rules([ROOT / "rules"])}
    condition = rules["cdn-traffic-anomaly"].condition
    assert isinstance(condition, AnomalyCondition)
    tracker = AnomalyTracker(condition)
    instance = Instance("cdn-traffic-anomaly", (), {"alertname": "cdn-traffic-anomaly"}, "ab12")
    instance.tracker = tracker
    store = site.daemon.store
    for minute in range(40):
        at = NOW + timedelta(minutes=minute)
        seen = tracker.observe(at, 100.0 + minute % 7)
        instance.state = InstanceState(AlertState.INACTIVE, value=seen.value, evaluated_at=at)
        with store.tx() as conn:
            persistence.record_samples(conn, [instance])
    samples = persistence.samples(store.connection(), "ab12")
    last = tracker.last
    assert last is not None and len(samples) == 40
    assert (samples[-1]["lower"], samples[-1]["upper"]) == (last.lower, last.upper)
    chart = build_chart(samples, None)
    assert chart is not None and chart.band is not None and chart.threshold_y is None


def test_an_alert_only_notify_knows_has_its_page(site: Site) -> None:
    # the daemon's own meta-alerts have no instance: their notifications link here too
    with site.daemon.store.tx():
        site.daemon.pipeline.react([config_transition(True, NOW, ["rules/x.toml:3: oops"])])
    page = site.get(f"/alerts/{CONFIG_FINGERPRINT}")
    text = page.body.decode()
    assert page.status == 200 and "StackwatchConfigInvalid" in text
    assert "rejected its new configuration" in text and "No values stored yet." in text
    assert 'id="ack-form"' in text  # firing: it can be acknowledged


def test_the_web_package_never_imports_the_daemon() -> None:
    # the daemon imports agent.web and hands it what it needs: no arrow back
    code = (
        "import sys, agent.web\n"
        "print(sorted(m for m in sys.modules if m.startswith('agent.daemon')))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert shown.stdout.strip() == "[]"
