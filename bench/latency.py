"""Detection latency: from the retrieve that brings an incident's data to its notification.

    python -m bench.latency [--rounds 10] [--stacks 10] [--out bench/RESULTS.md]

The real daemon (``stackwatch run``) watches the simulator (both at 60× speed from one
origin, so an agent minute lasts a second) with one 5xx-share rule over every stack,
``for`` 0, notifying a webhook receiver on 127.0.0.1 (``group_wait`` 0). Each round, a
5xx spike begins on every stack at once and ends six agent minutes later; the next round
begins once every alert has resolved (or a minute has passed). For each
FIRING notification, the latency is its arrival at the receiver minus the arrival at
the simulator of the last Retrieve Data request before it: the end of the fetch of the
cycle that fired it (evaluation, commit and delivery are what is left). Wall clocks on
one machine (``time.monotonic``). Prints p50/p99 and the count, and adds them to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agent.clock import shared_clock
from agent.simulator import Incident, Scenario, Simulator, Stack
from bench.rulemix import TEMPLATES, write_setup
from bench.simproc import AUTHTOKEN as TOKEN
from bench.simproc import ORGANIZATION as ORG
from bench.simproc import stack_key

#: how long a spike lasts: longer than a cycle takes at 60× (its requests go at 10 per
#: second of real time: 10 stacks' queries take about 3 agent minutes)
SPIKE = timedelta(minutes=6)

SPEED = 60.0
RULE_NAME = "latency-5xx"


class Receiver:
    """Webhook posts with their arrival time."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str]] = []
        lock = threading.Lock()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    posts.append((arrived, body.decode(errors="replace")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self) -> list[float]:
        return self.arrivals("FIRING")

    def arrivals(self, state: str) -> list[float]:
        return [at for at, text in list(self.posts) if state in text and RULE_NAME in text]


def wait_for(count: Callable[[], int], wanted: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while count() < wanted and time.monotonic() < deadline:
        time.sleep(0.05)


def write_config(folder: Path, sim_url: str, hook_port: int, origin: datetime, stacks: int) -> Path:
    """The bench's setup (``rulemix``) at 60× with one 5xx-share rule over every stack."""
    config = write_setup(folder, 0, stacks, sim_url)
    config.write_text(
        config.read_text()
        .replace(
            "[agent]\n",
            f"[agent]\nhttp_port = 0\nclock_speed = {SPEED}\n"
            f'clock_origin = "{origin.isoformat()}"\n',
        )
        .replace("json://127.0.0.1:9/", f"json://127.0.0.1:{hook_port}/")
        .replace(
            "[notify.route]\n",
            '[notify.route]\ngroup_by = ["alertname", "stack"]\ngroup_wait = "0s"\n',
        )
    )
    _, ratio = TEMPLATES[0]  # the 5xx share of CDN answers, fired at once, every 20 agent seconds
    body = ratio.replace('for = "2m"', 'interval = "20s"')
    # (the simulator's quiet hours bring fewer than 50 CDN answers a minute)
    body = body.replace("min_denominator = 50", "min_denominator = 10").format(
        stacks=json.dumps([stack_key(i) for i in range(stacks)]), window="1m", threshold=0.05
    )
    (folder / "rules" / "bench.toml").write_text(f'[[rule]]\nname = "{RULE_NAME}"\n{body}')
    return config


def spike(stack: str) -> Incident:
    return Incident("5xx_spike", timedelta(0), SPIKE, stack, "cdn", 0.3)


def measure(rounds: int, stack_count: int) -> dict[str, Any]:
    origin = datetime.now(UTC)
    stacks = [stack_key(i) for i in range(stack_count)]
    scenario = Scenario(name="latency", seed=5, stacks=[Stack(key, key, 1.0) for key in stacks])
    receiver = Receiver()
    clock = shared_clock(SPEED, origin)
    world = Simulator(scenario, clock=clock, authtoken=TOKEN, organization_uid=ORG, job_duration=0)
    with world as sim, tempfile.TemporaryDirectory(prefix="stackwatch-latency-") as folder:
        root = Path(folder)
        config = write_config(root, sim.url, receiver.server.server_address[1], origin, stack_count)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            time.sleep(3 * 60 / SPEED)  # a few agent minutes of normal traffic first
            for _ in range(rounds):
                fired = len(receiver.firing()) + stack_count
                resolved = len(receiver.arrivals("RESOLVED")) + stack_count
                for key in stacks:  # 30 % 5xx on each stack's CDN
                    sim.add_incident(spike(key))
                wait_for(lambda: len(receiver.firing()), fired)
                wait_for(lambda: len(receiver.arrivals("RESOLVED")), resolved)
        finally:
            daemon.terminate()
            daemon.wait(60)
        retrieves = sorted(
            r.received_at for r in sim.requests if r.path.endswith("/data") and r.status == 200
        )
    latencies = []
    for arrived in receiver.firing():
        index = bisect_right(retrieves, arrived)
        if index:
            latencies.append(arrived - retrieves[index - 1])
    latencies.sort()
    return {
        "count": len(latencies),
        "expected": rounds * stack_count,
        "p50": statistics.median(latencies) if latencies else None,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--stacks", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = parser.parse_args()
    result = measure(args.rounds, args.stacks)
    p50, p99 = (
        f"{result[q] * 1000:.0f} ms" if result[q] is not None else "–" for q in ("p50", "p99")
    )
    text = "\n".join(
        [
            "## Detection latency",
            "",
            f"`python -m bench.latency --rounds {args.rounds} --stacks {args.stacks}` on "
            f"{platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()}), "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: from the last Retrieve Data of the cycle "
            "that fired to the FIRING post at a local webhook receiver.",
            "",
            "| incidents notified | p50 | p99 | target |",
            "|---|---|---|---|",
            f"| {result['count']} of {result['expected']} | {p50} | {p99} | p99 ≤ 1 s |",
            "",
        ]
    )
    print(text)
    previous = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(text + "\n\n" + previous)


if __name__ == "__main__":
    main()
