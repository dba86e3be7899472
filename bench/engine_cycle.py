"""Benchmark: one evaluation cycle of many rules against the simulator over real HTTP.

    python bench/engine_cycle.py [--rules 200] [--stacks 5]

Prints the wall time of a cycle, the requests it cost (counted at the simulator),
the CPU time of evaluation alone (rows already fetched) and peak Python memory.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import timedelta

from pydantic import SecretStr

from agent.clock import SystemClock
from agent.collect import build_clients
from agent.config import ContentstackSettings
from agent.evaluate.engine import Engine
from agent.evaluate.planner import plan
from agent.evaluate.rules import Rule
from agent.evaluate.sources import LiveSource, MemorySource
from agent.logs import configure_logging
from agent.simulator import Scenario, Simulator, Stack

TEMPLATES = [
    ("status_codes", '{ status = "5xx" }', "ratio", 0.02, "5m"),
    ("status_codes", '{ status = "4xx" }', "ratio", 0.2, "15m"),
    ("cache", '{ cache = "HIT" }', "ratio", 0.9, "10m"),
]


def make_rules(count: int, stacks: list[str]) -> list[Rule]:
    import tomllib

    rules = []
    for index in range(count):
        metric, numerator, function, threshold, window = TEMPLATES[index % len(TEMPLATES)]
        text = f"""
name = "rule-{index}"
[query]
metric = "{metric}"
services = ["cdn"]
stacks = {stacks!r}
window = "{window}"
[value]
function = "{function}"
numerator = {numerator}
[condition]
type = "threshold"
op = ">"
value = {threshold}
"""
        rules.append(Rule.model_validate(tomllib.loads(text.replace("'", '"'))))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--stacks", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning")
    stacks = [Stack(f"blt_bench_{i}", f"stack-{i}") for i in range(args.stacks)]
    clock = SystemClock()
    scenario = Scenario(name="bench", seed=3, stacks=stacks)
    with Simulator(
        scenario, clock=clock, authtoken="bench-token", organization_uid="bench", job_duration=0.2
    ) as sim:
        settings = ContentstackSettings(
            organization_uid="bench",
            authtoken=SecretStr("bench-token"),
            analytics_base_url=sim.url,
            automations_base_url=sim.url,
        )
        rules = make_rules(args.rules, [s.api_key for s in stacks])
        with build_clients(settings, clock) as clients:
            live = LiveSource(clients.analytics, clients.automations)
            engine = Engine(rules, live, default_interval=timedelta(minutes=1))
            sim.clear_requests()
            tracemalloc.start()
            started = time.perf_counter()
            report = engine.evaluate(clock.now())
            wall = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            http_requests = len(sim.requests)
            now = clock.now()
            rows = [s for q in plan(rules, now).requests for s in live.fetch(q)]
        offline = Engine(rules, MemorySource(rows), watch_source=False)
        cpu_started = time.process_time()
        offline.evaluate(now)
        cpu = time.process_time() - cpu_started
        instances = len(engine.all_instances())
        print(f"rules {args.rules}, stacks {args.stacks}, instances {instances}")
        print(f"cycle wall time: {wall:.2f} s (includes job waits and the 10 req/s limit)")
        print(
            f"HTTP requests in the cycle (counted at the simulator): {http_requests} "
            f"for {report.requests} distinct queries"
        )
        print(f"evaluation CPU on fetched rows ({len(rows)} rows): {cpu * 1000:.1f} ms")
        print(f"peak Python memory during the cycle: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
