"""How long the simulator's traffic model takes to produce a day by the minute.

The simulator answers every test and benchmark, so its cost is part of theirs: a day at
minute granularity (1,440 buckets, CDN and CMA, two stacks, an incident in the day) must
stay far below the agent's own work. Hours an incident does not touch are computed in one
step; this prints the median over cold models (fresh caches each run).

    python -m bench.simulator_traffic
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, date, datetime

from agent.simulator import Incident, Scenario, Stack
from agent.simulator.buckets import epoch, make_buckets
from agent.simulator.traffic import TrafficModel

RUNS = 7


def one_day(seed: int) -> float:
    now = datetime(2024, 2, 5, 23, 59, tzinfo=UTC)
    scenario = Scenario(
        seed=seed,
        stacks=[Stack("blt1", "one", 1.0), Stack("blt2", "two", 0.5)],
        incidents=[Incident("5xx_spike", now.replace(hour=3), now.replace(hour=4))],
    ).resolve(now)
    model = TrafficModel(scenario)
    started = time.perf_counter()
    buckets = make_buckets("minute", date(2024, 2, 5), date(2024, 2, 5), now, "iso")
    for service in ("cdn", "cma"):
        model.series(list(model.stacks), service, "minute", buckets, epoch(now))
    return time.perf_counter() - started


def main() -> None:
    times = [one_day(seed) for seed in range(RUNS)]
    print(
        f"simulator, one day by the minute (2 stacks, cdn+cma): median "
        f"{statistics.median(times) * 1000:.1f} ms, min {min(times) * 1000:.1f} ms "
        f"over {RUNS} cold runs"
    )


if __name__ == "__main__":
    main()
