"""Soak: a simulated month of the real daemon against the simulator, in minutes.

    nice python -m bench.soak [--days 30] [--speed 5000] [--seed 12] [--out bench/SOAK.md]

``stackwatch run`` (a child process) and the simulator (in this process, over 127.0.0.1)
share one clock running ``--speed`` times the wall clock. Over the month: random CDN 5xx
spikes on three stacks; between them, random Contentstack API faults (503s, a 429 storm,
401, dropped connections, malformed JSON, "Job Failed"), each a source-down episode; and,
at random times whatever else is going on, outages of the webhook receiver (it answers
500). Twice a simulated day the daemon's RSS and the row count of every table of its state
file are sampled. At the end: every incident must have been detected during it and
notified, each stack's alert told firing then resolved, in that order, once per incident;
each API fault must have made one source-down page and no per-rule notice; and every
notification must have arrived exactly once (posts counted by their ``Idempotency-Key``).
Prints a table and writes the report (``--out``) with the figures, the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.clock import shared_clock
from agent.simulator import Fault, Incident, Scenario, Simulator, Stack
from tests.daemon.support import DaemonProcess, WebhookReceiver

AUTHTOKEN = "soak-authtoken-0b7f"
ORG = "org-soak"
STACKS = {
    "Website": "blt00000000000soakweb",
    "Mobile": "blt0000000000soakmob",
    "Shop": "blt00000000000soakshop",
}
RULE = "soak-5xx"
SOURCE_DOWN = "ContentstackSourceDown"
API_FAULTS = [
    Fault("http_status", path_prefix="/analytics", status=503),
    Fault("http_status", path_prefix="/analytics", status=429, retry_after=1),
    Fault("http_status", path_prefix="/analytics", status=401),
    Fault("disconnect", path_prefix="/analytics"),
    Fault("malformed_json", path_prefix="/analytics"),
    Fault("job_failed", path_prefix="/analytics"),
]
#: after the month: time for the last alerts to resolve and the outbox to drain.
TAIL = timedelta(hours=12)
SAMPLE_EVERY = timedelta(hours=12)
#: an incident counts as detected when its alert fired before it ended plus this.
DETECTION_SLACK = timedelta(hours=3)
_TITLE = re.compile(r"^\[(FIRING|RESOLVED)[^\]]*\] (\S+)(?: \((?:.*?)stack=(\w+))?")


@dataclass(frozen=True)
class Episode:
    kind: str  # "incident", "api" (an API fault) or "hook" (the receiver answers 500)
    start: datetime
    end: datetime
    stack: str | None = None
    fault: Fault | None = None

    def covers(self, when: datetime) -> bool:
        return self.start <= when < self.end


def schedule(origin: datetime, days: int, rng: random.Random) -> list[Episode]:
    """Incidents and API faults one after the other with quiet gaps (an API fault in an
    incident would hide it); receiver outages beginning just before half the incidents
    (their notices queue up), and a few more at random times."""
    end = origin + timedelta(days=days)
    episodes: list[Episode] = []
    at = origin + timedelta(hours=6)
    faults = 0
    while at < end - timedelta(hours=12):
        if rng.random() < 0.7:
            length = timedelta(hours=rng.uniform(3, 8))
            stack = rng.choice(sorted(STACKS.values()))
            episodes.append(Episode("incident", at, at + length, stack=stack))
            if rng.random() < 0.5:
                outage = timedelta(hours=rng.uniform(2, 6))
                down = at - timedelta(minutes=30)
                episodes.append(Episode("hook", down, down + outage))
        else:
            # long enough in wall time for whole cycles to fail: the API client's timeouts
            # and Retry-After run on the wall clock, 5000x slower than this one
            length = timedelta(hours=rng.uniform(6, 12))
            fault = API_FAULTS[faults % len(API_FAULTS)]
            episodes.append(Episode("api", at, at + length, fault=fault))
            faults += 1
        at = episodes[-1].end + timedelta(hours=rng.uniform(6, 14))
    at = origin + timedelta(days=rng.uniform(1, 3))
    while at < end - timedelta(hours=12):
        length = timedelta(hours=rng.uniform(2, 6))
        episodes.append(Episode("hook", at, at + length))
        at += length + timedelta(days=rng.uniform(4, 8))
    return sorted(episodes, key=lambda e: e.start)


def write_config(
    folder: Path, sim_url: str, hook_port: int, origin: datetime, speed: float
) -> Path:
    stacks = "\n".join(f'{name} = "{key}"' for name, key in STACKS.items())
    (folder / "rules").mkdir()
    (folder / "rules" / "soak.toml").write_text(
        f"""
[[rule]]
name = "{RULE}"
severity = "critical"
summary = "CDN 5xx share {{{{ value | pct }}}} on {{{{ labels.stack_name }}}}"
interval = "1h"

[rule.query]
metric = "status_codes"
services = ["cdn"]
stacks = ["*"]
window = "2h"

[rule.value]
function = "ratio"
numerator = {{ status = "5xx" }}
min_denominator = 10

[rule.condition]
type = "threshold"
op = ">"
value = 0.05

[rule.clear]
op = "<"
value = 0.02
"""
    )
    config = folder / "config.toml"
    config.write_text(
        f"""
[contentstack]
organization_uid = "{ORG}"
authtoken = "{AUTHTOKEN}"
analytics_base_url = "{sim_url}"
automations_base_url = "{sim_url}"
max_retries = 1
request_timeout = "5s"

[contentstack.stacks]
{stacks}

[agent]
rule_paths = ["rules"]
state_path = "state/stackwatch.db"
http_port = 0
log_level = "info"
clock_speed = {speed}
clock_origin = "{origin.isoformat()}"
notify_interval = "5m"
retention = "3d"
sample_retention = "1d"

[notify]
retention = "2d"

[[notify.channels]]
name = "hook"
urls = ["json://127.0.0.1:{hook_port}/"]

[notify.route]
channels = ["hook"]
group_by = ["alertname", "stack"]
group_wait = "0s"
group_interval = "1h"
repeat_interval = "2d"

[notify.outbox]
retry_initial = "10m"
retry_max = "1h"
dead_letter_after = "2d"
claim_timeout = "30m"
"""
    )
    return config


@dataclass
class Sample:
    day: float
    rss_mb: float
    rows: dict[str, int]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def row_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {
            t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in sorted(tables)
        }
    finally:
        conn.close()


class Soak:
    def __init__(self, days: int, speed: float, seed: int) -> None:
        self.days = days
        self.speed = speed
        self.origin = datetime.now(UTC).replace(microsecond=0)
        self.clock = shared_clock(speed, self.origin)
        self.episodes = schedule(self.origin, days, random.Random(seed))
        self.samples: list[Sample] = []
        self.wall_seconds = 0.0
        self.requests: list[Any] = []
        #: outbox rows the daemon delivered (its stackwatch_notifications_sent_total)
        self.delivered_rows = 0

    def sim_time(self, wall: float) -> datetime:
        """The shared clock's reading at wall time ``wall`` (``time.time()``)."""
        return self.origin + (datetime.fromtimestamp(wall, UTC) - self.origin) * self.speed

    def run(self, folder: Path) -> tuple[DaemonProcess, WebhookReceiver]:
        incidents = [
            Incident("5xx_spike", e.start, e.end, stack=e.stack, service="cdn", magnitude=0.3)
            for e in self.episodes
            if e.kind == "incident"
        ]
        scenario = Scenario(
            name="soak",
            seed=5,
            stacks=[Stack(key, name) for name, key in STACKS.items()],
            incidents=incidents,
        )
        simulator = Simulator(
            scenario, clock=self.clock, authtoken=AUTHTOKEN, organization_uid=ORG, job_duration=0.0
        )
        with simulator as sim, WebhookReceiver() as hook:
            config = write_config(folder, sim.url, hook.port, self.origin, self.speed)
            db = folder / "state" / "stackwatch.db"
            started = time.monotonic()
            daemon = DaemonProcess(config)
            try:
                daemon.url  # noqa: B018  (waits for the daemon to listen)
                finish = self.origin + timedelta(days=self.days) + TAIL
                next_sample = self.origin + SAMPLE_EVERY
                fault: Fault | None = None
                while (now := self.clock.now()) < finish:
                    daemon.check_alive()
                    wanted = next(
                        (e.fault for e in self.episodes if e.kind == "api" and e.covers(now)), None
                    )
                    if wanted != fault:
                        sim.clear_faults()
                        if wanted is not None:
                            sim.add_fault(wanted)
                        fault = wanted
                    down = any(e.kind == "hook" and e.covers(now) for e in self.episodes)
                    hook.mode = "fail" if down else "ok"
                    if now >= next_sample:
                        day = (now - self.origin) / timedelta(days=1)
                        self.samples.append(Sample(day, rss_mb(daemon.proc.pid), row_counts(db)))
                        next_sample += SAMPLE_EVERY
                        print(f"day {day:5.1f}: RSS {self.samples[-1].rss_mb:6.1f} MB", flush=True)
                    time.sleep(0.02)
                self.wall_seconds = time.monotonic() - started
                self.delivered_rows = _sent(daemon.get("/metrics")[1].decode())
                code = daemon.stop(60)
                if code != 0:
                    raise RuntimeError(f"the daemon exited with {code}")
            finally:
                if daemon.proc.poll() is None:
                    daemon.kill()
            self.requests = sim.requests
        return daemon, hook


def _sent(metrics: str) -> int:
    for line in metrics.splitlines():
        if line.startswith("stackwatch_notifications_sent_total "):
            return int(float(line.split()[1]))
    return 0


@dataclass
class Verdict:
    incidents: int
    detected: int
    notified: int
    false_firings: int
    api_faults: int
    source_down_pages: int
    source_back_pages: int
    per_rule_during_faults: int
    hook_outages: int
    failed_attempts: int
    posts: int
    keys: int
    duplicates: int
    without_key: int
    firing_posts: int
    resolved_posts: int
    peak_requests_per_second: int
    requests: int
    #: what went wrong, episode by episode
    problems: list[str]


def judge(soak: Soak, daemon: DaemonProcess, hook: WebhookReceiver) -> Verdict:
    incidents = [e for e in soak.episodes if e.kind == "incident"]
    faults = [e for e in soak.episodes if e.kind == "api"]
    firings = [
        (
            soak.sim_time(datetime.fromisoformat(e["timestamp"]).timestamp()),
            e["labels"].get("stack"),
        )
        for e in daemon.events("alert_transition")
        if e["rule"] == RULE and e["state"] == "firing"
    ]
    posts = []  # (sim time, state, alertname, stack)
    for payload, wall in zip(hook.posts, hook.received, strict=True):
        found = _TITLE.match(payload.get("title", ""))
        if found:
            posts.append((soak.sim_time(wall), found.group(1), found.group(2), found.group(3)))

    def detected(e: Episode) -> bool:
        return any(
            stack == e.stack and e.start <= at <= e.end + DETECTION_SLACK for at, stack in firings
        )

    def notified(e: Episode) -> bool:
        later = [i.start for i in incidents if i.stack == e.stack and i.start > e.start]
        until = min(later, default=datetime.max.replace(tzinfo=UTC))
        return any(
            state == "FIRING" and name == RULE and stack == e.stack and e.start <= at < until
            for at, state, name, stack in posts
        )

    downs = [
        soak.sim_time(datetime.fromisoformat(e["timestamp"]).timestamp())
        for e in daemon.events("alert_transition")
        if e["rule"] == SOURCE_DOWN and e["state"] == "firing"
    ]
    problems = []
    for f in faults:
        paged = [at for at in downs if f.start <= at <= f.end]
        if len(paged) != 1 and f.fault is not None:
            problems.append(
                f"API fault {f.fault.kind} {f.fault.status} from day {_day(soak, f.start)} "
                f"for {(f.end - f.start) / timedelta(hours=1):.1f} h: "
                f"{len(paged)} source-down transition(s)"
            )
    for stack in sorted(STACKS.values()):  # each alert: told firing, resolved, firing, ...
        told = [state for _, state, name, on in posts if name == RULE and on == stack]
        expected = ["FIRING", "RESOLVED"] * sum(1 for e in incidents if e.stack == stack)
        if told != expected:
            problems.append(f"{RULE} on {stack}: told {told}, expected {expected}")
    explained = [
        (at, stack)
        for at, stack in firings
        if any(i.stack == stack and i.start <= at <= i.end + DETECTION_SLACK for i in incidents)
    ]
    keys = Counter(hook.keys)
    per_second = Counter(int(r.received_at) for r in soak.requests)
    return Verdict(
        incidents=len(incidents),
        detected=sum(map(detected, incidents)),
        notified=sum(map(notified, incidents)),
        false_firings=len(firings) - len(explained),
        api_faults=len(faults),
        source_down_pages=sum(1 for _, s, n, _ in posts if n == SOURCE_DOWN and s == "FIRING"),
        source_back_pages=sum(1 for _, s, n, _ in posts if n == SOURCE_DOWN and s == "RESOLVED"),
        per_rule_during_faults=sum(
            1 for at, _, n, _ in posts if n == RULE and any(f.covers(at) for f in faults)
        ),
        hook_outages=sum(1 for e in soak.episodes if e.kind == "hook"),
        failed_attempts=hook.failed,
        posts=len(hook.posts),
        keys=len([k for k in keys if k is not None]),
        duplicates=sum(n - 1 for k, n in keys.items() if k is not None and n > 1),
        without_key=keys.get(None, 0),
        firing_posts=sum(1 for _, s, n, _ in posts if n == RULE and s == "FIRING"),
        resolved_posts=sum(1 for _, s, n, _ in posts if n == RULE and s == "RESOLVED"),
        peak_requests_per_second=max(per_second.values(), default=0),
        requests=len(soak.requests),
        problems=problems,
    )


def _day(soak: Soak, when: datetime) -> str:
    return f"{(when - soak.origin) / timedelta(days=1):.2f}"


def report(soak: Soak, verdict: Verdict, command: str) -> str:
    samples = soak.samples
    settled = [s for s in samples if s.day >= 2] or samples
    rss = [s.rss_mb for s in settled]
    lines = [
        "# Soak benchmark",
        "",
        f"Command: `{command}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC).",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine).",
        "",
        f"{soak.days} simulated days at {soak.speed:g}x in {soak.wall_seconds:.0f} s of wall time "
        f"(+{TAIL.total_seconds() / 3600:.0f} h simulated for the last alerts to resolve): "
        "`stackwatch run` as a child process against the simulator over 127.0.0.1, one rule "
        "(CDN 5xx share, every stack, hourly, 2 h window), retention 3 d (daemon) / 2 d "
        "(notify) / 1 d (samples).",
        "",
        "## Checks",
        "",
        "| check | figure | expected |",
        "|---|---|---|",
        f"| incidents detected during them (+{DETECTION_SLACK.total_seconds() / 3600:.0f} h) "
        f"| {verdict.detected} of {verdict.incidents} | all |",
        f"| incidents notified (a FIRING post for the stack) | {verdict.notified} of "
        f"{verdict.incidents} | all |",
        f"| firings outside any incident | {verdict.false_firings} | 0 |",
        f"| API fault episodes → source-down pages / back pages | {verdict.api_faults} → "
        f"{verdict.source_down_pages} / {verdict.source_back_pages} | one each |",
        f"| per-rule notices during API faults | {verdict.per_rule_during_faults} | 0 |",
        f"| receiver outages (500), failed attempts | {verdict.hook_outages}, "
        f"{verdict.failed_attempts} | – |",
        f"| posts received / distinct idempotency keys / rows delivered (daemon metric) | "
        f"{verdict.posts} / {verdict.keys} / {soak.delivered_rows} | equal |",
        f"| duplicates (same key twice), posts without a key | {verdict.duplicates}, "
        f"{verdict.without_key} | 0, 0 |",
        f"| {RULE} FIRING / RESOLVED posts | {verdict.firing_posts} / {verdict.resolved_posts} "
        "| equal |",
        f"| API requests, peak in any second | {verdict.requests}, "
        f"{verdict.peak_requests_per_second} | ≤ 10 |",
        f"| daemon RSS from day 2: min / max / last; trend | {min(rss):.1f} / {max(rss):.1f} / "
        f"{rss[-1]:.1f} MB; {_trend(settled):+.2f} MB per day | flat |",
        "",
    ]
    if verdict.problems:
        lines += ["Episodes that did not go as expected:", ""]
        lines += [f"- {problem}" for problem in verdict.problems]
        lines.append("")
    lines += ["## RSS and rows over time", ""]
    tables = sorted({t for s in samples for t in s.rows})
    shown = [t for t in tables if any(s.rows.get(t) for s in samples)]
    lines.append("| day | RSS MB | " + " | ".join(shown) + " |")
    lines.append("|---|---|" + "---|" * len(shown))
    chosen = samples[:1] + samples[3::4]  # day 0.5, then every second day
    for s in chosen + ([samples[-1]] if samples[-1] not in chosen else []):
        cells = " | ".join(str(s.rows.get(t, 0)) for t in shown)
        lines.append(f"| {s.day:.1f} | {s.rss_mb:.1f} | {cells} |")
    empty = [t for t in tables if t not in shown]
    if empty:
        lines += ["", f"Always empty: {', '.join(empty)}."]
    return "\n".join(lines) + "\n"


def _trend(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over days."""
    if len(samples) < 2:
        return 0.0
    fit = statistics.linear_regression([s.day for s in samples], [s.rss_mb for s in samples])
    return float(fit.slope)


def passed(soak: Soak, verdict: Verdict) -> bool:
    return (
        verdict.detected == verdict.notified == verdict.incidents
        and verdict.false_firings == 0
        and verdict.source_down_pages == verdict.source_back_pages == verdict.api_faults
        and verdict.per_rule_during_faults == 0
        and verdict.duplicates == verdict.without_key == 0
        and verdict.posts == verdict.keys == soak.delivered_rows
        and verdict.firing_posts == verdict.resolved_posts
        and verdict.peak_requests_per_second <= 10
        and not verdict.problems
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--speed", type=float, default=5000.0)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("SOAK.md"))
    parser.add_argument("--daemon-log", type=Path, help="also write the daemon's log lines here")
    args = parser.parse_args(argv)
    soak = Soak(args.days, args.speed, args.seed)
    with tempfile.TemporaryDirectory(prefix="stackwatch-soak-") as folder:
        daemon, hook = soak.run(Path(folder))
    if args.daemon_log:
        args.daemon_log.write_text("".join(daemon.raw))
    verdict = judge(soak, daemon, hook)
    command = "nice python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(soak, verdict, command.strip())
    print(text)
    args.out.write_text(text)
    ok = passed(soak, verdict)
    print("soak passed" if ok else "soak FAILED: see the checks above", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
