"""The web pages in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) against the real ``stackwatch run`` process on
the simulator, with a CDN 5xx incident so an alert fires.

One daemon for the whole file (the tests run in order on its state). Skipped where
Chromium is not installed, unless ``CI`` is set: there a missing browser fails.
Screenshots of each page go to ``$STACKWATCH_SCREENSHOTS`` (default
``tests/screenshots/``, not committed).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.clock import shared_clock
from agent.simulator import Incident, Scenario, Simulator, Stack

from ..daemon import support
from ..daemon.support import WEBSITE, DaemonProcess, wait_until

pytestmark = pytest.mark.timeout(180)

SPEED = 60.0
SHOTS = Path(os.environ.get("STACKWATCH_SCREENSHOTS") or support.ROOT / "tests" / "screenshots")
MAINTENANCE = """
[[notify.maintenance]]
name = "mobile-release"
weekdays = ["tue", "thu"]
start = "22:00"
end = "23:30"
timezone = "Europe/Berlin"
matchers = ["stack_name=Mobile"]
"""


def _browser_missing() -> str | None:
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    return None


@dataclass
class World:
    daemon: DaemonProcess
    driver: Any
    url: str
    token: str
    fingerprint: str

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def alert(self) -> dict[str, Any]:
        found = [a for a in self.api("/api/v1/alerts")["alerts"] if a["rule"] == "cdn-5xx"]
        assert found, "the cdn-5xx alert is gone"
        return dict(found[0])

    def submit(self, selector: str) -> None:
        """Click a form's button and wait for the page it leads to."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        page = self.css("html")[0]
        self.css(selector)[0].click()
        WebDriverWait(self.driver, 10).until(expected_conditions.staleness_of(page))

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    folder = tmp_path_factory.mktemp("web")
    origin = datetime.now(UTC)
    scenario = Scenario(
        name="web-ui",
        seed=11,
        stacks=[Stack(WEBSITE, "Website", 1.0), Stack(support.MOBILE, "Mobile")],
    )
    simulator = Simulator(
        scenario,
        clock=shared_clock(SPEED, origin),
        authtoken=support.AUTHTOKEN,
        organization_uid=support.ORG,
        job_duration=0.0,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1000")
    with simulator as sim, support.WebhookReceiver() as hook:
        config = support.write_config(
            folder, simulator_url=sim.url, hook_port=hook.port, origin=origin, speed=SPEED
        )
        config.write_text(config.read_text() + MAINTENANCE)
        (folder / "rules" / "errors.toml").write_text(
            support.ratio_rule("cdn-5xx", stack="Website", above=0.05, clear_below=0.02)
        )
        daemon = DaemonProcess(config)
        driver = webdriver.Chrome(
            options=options, service=Service(executable_path=str(shutil.which("chromedriver")))
        )
        try:
            url = daemon.url
            wait_until(lambda: daemon.get("/readyz")[0] == 200, 60, "/readyz 200")
            sim.add_incident(
                Incident(
                    "5xx_spike", timedelta(0), timedelta(hours=2), stack=WEBSITE, service="cdn",
                    magnitude=0.3,
                )
            )  # fmt: skip
            firing = wait_until(
                lambda: [a for a in daemon.alerts() if a["state"] == "firing"], 60, "firing"
            )
            fp = firing[0]["fingerprint"]
            # a few evaluations while it fires, so the chart has a line
            wait_until(
                lambda: (
                    len(json.loads(daemon.get(f"/api/v1/alerts/{fp}/samples")[1])["samples"]) >= 4
                ),
                60,
                "four stored evaluations",
            )
            token = (folder / "state" / "api-token").read_text().strip()
            yield World(daemon, driver, url, token, fp)
            assert daemon.stop() == 0
        finally:
            driver.quit()
            if daemon.proc.poll() is None:
                daemon.kill()


def test_alerts_page_lists_the_firing_alert_by_stack_name(world: World) -> None:
    world.open("/")
    rows = world.css(f'tr.alert[data-fingerprint="{world.fingerprint}"]')
    assert len(rows) == 1
    row = rows[0]
    assert "firing" in row.get_attribute("class")
    assert row.find_element("css selector", "td.stack").text == "Website"
    assert WEBSITE not in world.driver.page_source  # named, never by its API key
    world.shot("alerts")
    world.open("/?stack=Mobile")
    assert world.css("tr.alert") == []


def test_alert_page_charts_the_values_against_the_threshold(world: World) -> None:
    world.open("/")
    world.submit(f'tr.alert[data-fingerprint="{world.fingerprint}"] a')
    assert world.driver.current_url == f"{world.url}/alerts/{world.fingerprint}"
    points = world.css("svg#chart circle.point")
    assert len(points) >= 4
    (threshold,) = world.css("svg#chart line.threshold")
    assert world.css("svg#chart polyline.series")
    # drawn, not only present: the threshold line spans the plot and lies below a firing point
    assert threshold.size["width"] > 300
    threshold_y = float(threshold.get_attribute("y1"))
    firing = [p for p in points if "firing" in p.get_attribute("class")]
    assert firing and all(float(p.get_attribute("cy")) < threshold_y for p in firing)
    world.shot("alert")


def test_changes_without_the_token_or_with_a_forged_form_are_refused(world: World) -> None:
    world.open(f"/alerts/{world.fingerprint}")
    world.submit("#ack")
    assert "log in with the API token" in world.css("#error")[0].text
    assert world.alert()["acked_by"] is None
    _login(world)
    world.open(f"/alerts/{world.fingerprint}")
    world.driver.execute_script(
        "document.querySelector('#ack-form input[name=csrf]').value = '1.forged'"
    )
    world.submit("#ack")
    assert "not ours" in world.css("#error")[0].text
    assert world.alert()["acked_by"] is None
    world.shot("refused")


def test_ack_and_silence_through_the_page(world: World) -> None:
    _login(world)
    world.open(f"/alerts/{world.fingerprint}")
    world.css("#ack-form input[name=by]")[0].send_keys("ann")
    world.css("#ack-form input[name=comment]")[0].send_keys("on it")
    world.submit("#ack")
    assert "Alert acknowledged." in world.css("p.note")[0].text
    assert world.alert()["acked_by"] == "ann"
    world.css("#silence-form input[name=by]")[0].send_keys("ann")
    world.submit("#silence")
    assert "Silence created." in world.css("p.note")[0].text
    (silence,) = world.api("/api/v1/silences")["silences"]
    assert "alertname=cdn-5xx" in silence["matchers"]
    try:
        muted = wait_until(lambda: world.alert()["suppressed"], 30, "the alert muted")
    except AssertionError as error:
        tail = "".join(world.daemon.raw[-15:])
        raise AssertionError(f"{error}: {world.alert()}, daemon log:\n{tail}") from None
    assert muted == f"silence:{silence['id']}"
    trail = world.api("/api/v1/audit?limit=20")["audit"]
    done = [(r["actor"], r["action"], r["detail"]["via"]) for r in trail if r["actor"] == "ann"]
    assert done == [("ann", "silence_add", "web"), ("ann", "ack", "web")]
    world.open("/audit")
    assert [e.text for e in world.css("#audit td.action")][:2] == ["silence_add", "ack"]
    world.shot("audit")
    world.open("/silences")
    assert len(world.css(f'tr.silence[data-id="{silence["id"]}"]')) == 1
    world.shot("silences")
    world.submit(f'tr.silence[data-id="{silence["id"]}"] button.expire')
    assert "Silence expired." in world.css("p.note")[0].text
    assert world.api("/api/v1/silences")["silences"] == []


def test_maintenance_and_health_pages(world: World) -> None:
    world.open("/maintenance")
    assert "mobile-release" in world.css("#maintenance")[0].text
    world.shot("maintenance")
    world.open("/health")
    endpoints = world.css("#endpoints tr.ok code")
    assert any("/analytics/v2" in e.text for e in endpoints)
    assert "10 requests per second" in world.css("#ratelimit")[0].text
    world.shot("health")


def _login(world: World) -> None:
    world.open(f"/login?next=/alerts/{world.fingerprint}")
    world.shot("login")
    world.css("#token")[0].send_keys(world.token)
    world.submit("#login")
    assert "Logged in" in world.css("p.note")[0].text, world.driver.page_source
