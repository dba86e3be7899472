"""Helpers for the daemon tests: a webhook receiver, a daemon subprocess, configs.

Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agent.simulator import Incident, Simulator
from agent.simulator.scenario import hex_id

AUTHTOKEN = "daemon-test-authtoken-5c1e"
ORG = "org-daemon-test"
WEBSITE = "blt0000000000000website"
MOBILE = "blt00000000000000mobile"
ROOT = Path(__file__).resolve().parents[2]
#: the scenario's Operations project and its "Purge CDN cache" automation (HTTP trigger)
PROJECT = hex_id("project", "Operations")
PURGE = hex_id(PROJECT, "purge")


def cdn_spike(sim: Simulator, stack: str, minutes: int = 60) -> Incident:
    """A CDN 5xx spike (30 %) on ``stack``, starting now."""
    incident = Incident(
        "5xx_spike",
        timedelta(0),
        timedelta(minutes=minutes),
        stack=stack,
        service="cdn",
        magnitude=0.3,
    )
    return sim.add_incident(incident)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WebhookReceiver:
    """Captures Apprise ``json://`` posts and their ``Idempotency-Key`` headers.

    ``mode``: ``ok`` answers 200; ``fail`` answers 500 (the post is counted in ``failed``,
    not kept); ``hold`` keeps the post, sets ``holding`` and answers only once ``release``
    is set (a delivery caught in flight)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.keys: list[str | None] = []
        #: when each post arrived (``time.time()``)
        self.received: list[float] = []
        self.failed = 0
        self.mode = "ok"
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"raw": body.decode(errors="replace")}
                mode = receiver.mode
                with receiver._lock:
                    if mode == "fail":
                        receiver.failed += 1
                    else:
                        receiver.posts.append(payload)
                        receiver.keys.append(self.headers.get("Idempotency-Key"))
                        receiver.received.append(time.time())
                if mode == "hold":
                    receiver.holding.set()
                    receiver.release.wait(60)
                with contextlib.suppress(OSError):  # a held sender may be gone
                    self.send_response(500 if mode == "fail" else 200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def texts(self) -> list[str]:
        with self._lock:
            return [f"{p.get('title', '')}\n{p.get('message', '')}" for p in self.posts]

    def matching(self, *needles: str) -> list[str]:
        return [t for t in self.texts() if all(n in t for n in needles)]

    def keys_of(self, *needles: str) -> list[str | None]:
        """The idempotency keys of the posts whose text holds every needle."""
        with self._lock:
            pairs = list(zip(self.keys, self.posts, strict=True))
        return [
            key
            for key, post in pairs
            if all(n in f"{post.get('title', '')}\n{post.get('message', '')}" for n in needles)
        ]


class DaemonProcess:
    """``python -m agent.cli run`` with its JSON log lines collected."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.raw.append(line)
                with contextlib.suppress(ValueError):
                    self.logs.append(json.loads(line))

    def unparsed(self) -> list[str]:
        """stderr lines that are not JSON log records (all of them, once the daemon exited)."""
        if self.proc.poll() is not None:
            self._reader.join(10)
        with self._lock:
            return [line for line in self.raw if not line.lstrip().startswith("{")]

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [entry for entry in self.logs if entry.get("event") == name]

    def wait_log(self, name: str, timeout: float, count: int = 1) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            self.check_alive()
            entries = self.events(name)
            return entries[count - 1] if len(entries) >= count else None

        return wait_until(found, timeout, f"log event {name!r} #{count}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            with self._lock:
                tail = "".join(self.raw[-30:])
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{tail}")

    @property
    def url(self) -> str:
        return str(self.wait_log("daemon_started", 60)["http"])

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def alerts(self) -> list[dict[str, Any]]:
        status, body = self.get("/api/v1/alerts?all=1")
        assert status == 200
        return list(json.loads(body)["alerts"])

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def write_config(
    folder: Path,
    *,
    simulator_url: str,
    hook_port: int,
    origin: datetime,
    speed: float,
    extra_agent: str = "",
    request_timeout: str = "5s",
    extra_contentstack: str = "",
    log_level: str = "info",
    group_wait: str = "0s",
    extra: str = "",
) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f"""
[contentstack]
organization_uid = "{ORG}"
authtoken = "{AUTHTOKEN}"
analytics_base_url = "{simulator_url}"
automations_base_url = "{simulator_url}"
max_retries = 1
request_timeout = "{request_timeout}"
{extra_contentstack}

[contentstack.stacks]
Website = "{WEBSITE}"
Mobile = "{MOBILE}"

[agent]
rule_paths = ["rules"]
state_path = "state/stackwatch.db"
http_port = 0
log_level = "{log_level}"
clock_speed = {speed}
clock_origin = "{origin.isoformat()}"
{extra_agent}

[[notify.channels]]
name = "hook"
urls = ["json://127.0.0.1:{hook_port}/"]

[notify.route]
channels = ["hook"]
group_by = ["alertname", "stack"]
group_wait = "{group_wait}"
group_interval = "5s"
repeat_interval = "4h"
{extra}
"""
    )
    (folder / "rules").mkdir(exist_ok=True)
    return config


def ratio_rule(
    name: str,
    *,
    stack: str,
    above: float,
    clear_below: float,
    for_: str = "0s",
    clear_for: str = "0s",
    interval: str = "20s",
    window: str = "1m",
    status: str = "5xx",
) -> str:
    return f"""
[[rule]]
name = "{name}"
severity = "critical"
summary = "{name} at {{{{ value | pct }}}}"
for = "{for_}"
clear_for = "{clear_for}"
interval = "{interval}"

[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = ["{stack}"]
window = "{window}"

[rule.value]
function = "ratio"
numerator = {{ status = "{status}" }}
min_denominator = 10

[rule.condition]
type = "threshold"
op = ">"
value = {above}

[rule.clear]
op = "<"
value = {clear_below}
"""


def purge_remediation(key: str, *more: str) -> str:
    """``[remediate]`` with one action, ``purge``, that calls the Purge CDN cache trigger;
    ``key`` is its key line (``http_key = …`` or ``http_key_file = …``), ``more`` further
    lines of the action."""
    lines = "\n".join((key, *more))
    return f"""
[remediate]
enabled = true
allowlist = ["Purge CDN cache"]

[[remediate.actions]]
name = "purge"
kind = "trigger"
trigger = "purge-cache"
project = "{PROJECT}"
automation = "{PURGE}"
{lines}
"""


@contextlib.contextmanager
def daemon_on_simulator(folder: Path, rules: str, now: datetime) -> Iterator[Any]:
    """A ``Daemon`` in this process on a ManualClock at ``now``, reading the simulator (two
    stacks, Website and Mobile) over 127.0.0.1, with ``rules`` as its one rule file. Not
    started: the test runs its groups (``run_group``) and beats itself."""
    from agent.clock import ManualClock
    from agent.config import load_settings
    from agent.daemon.service import Daemon
    from agent.simulator import Scenario, Simulator, Stack

    clock = ManualClock(now)
    scenario = Scenario(
        name="in-process",
        seed=11,
        stacks=[Stack(WEBSITE, "Website", 1.0), Stack(MOBILE, "Mobile", 0.5)],
    )
    simulator = Simulator(
        scenario,
        clock=clock,
        authtoken=AUTHTOKEN,
        organization_uid=ORG,
        job_duration=0.0,
        rate_limit=10_000,
    )
    with simulator:
        # no webhook listens there: notifications stay queued, which these tests ignore
        config = write_config(
            folder, simulator_url=simulator.url, hook_port=9, origin=now, speed=1.0
        )
        (folder / "rules" / "r.toml").write_text(rules)
        daemon = Daemon(load_settings(config), config, clock=clock)
        try:
            yield daemon
        finally:
            daemon.store.close()
