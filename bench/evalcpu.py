"""Evaluation CPU of cycles bringing one new minute, offline: record once, iterate in seconds.

    python -m bench.evalcpu [--size 1000x20] [--rows FILE] [--record] [--rounds 3] [--profile]
                            [--daemon]

The first run (or ``--record``) fetches a cycle from the simulator (as ``bench.scale``
does) and pickles the rows and the moment to ``--rows``; later runs replay them with
``bench.scale.incremental_cpu`` (its figure, without the simulator), ``--rounds`` times,
and print the median per cycle and per 10k instances. ``--profile`` runs the cycles
under pyinstrument instead and prints its tree. ``--daemon`` measures the daemon's whole
cycle instead (``daemon.cycle.evaluate``: evaluate, then in one transaction hand notify
the transitions and the firing alerts' values, save the instances and their samples,
against a state file in a temporary folder), and evaluation alone within it. ``bench.scale``
stays the figure of record for evaluation.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.clock import SystemClock
from agent.collect import build_clients
from agent.collect.ratelimit import RateLimiter
from agent.evaluate.engine import Engine
from agent.evaluate.rules import Rule
from agent.evaluate.sources import LiveSource
from agent.logs import configure_logging
from agent.wiring import load_config, load_rule_set
from bench.rulemix import write_setup
from bench.scale import JOB_DURATION, RecordingSource, ReplaySource, incremental_cpu, settings_for
from bench.simproc import SimulatorProcess


def load_rules(rules: int, stacks: int) -> list[Rule]:
    with tempfile.TemporaryDirectory(prefix="stackwatch-evalcpu-") as folder:
        return load_rule_set(load_config(write_setup(Path(folder), rules, stacks), explicit=True))


def record(rules: list[Rule], stacks: int) -> dict[str, Any]:
    clock = SystemClock()
    with (
        SimulatorProcess(stacks, job_duration=JOB_DURATION) as sim,
        build_clients(settings_for(sim.url), clock, limiter=RateLimiter(10, clock)) as clients,
    ):
        recording = RecordingSource(LiveSource(clients.analytics, clients.automations))
        now = clock.now()
        Engine(rules, recording, default_interval=timedelta(minutes=1)).evaluate(now)
    return {"now": now, "rows": recording.rows}


def profile(rules: list[Rule], recorded: dict[str, Any]) -> None:
    from pyinstrument import Profiler

    now: datetime = recorded["now"]
    replay = ReplaySource(recorded["rows"])
    engine = Engine(rules, replay, default_interval=timedelta(minutes=1), watch_source=False)
    replay.cutoff = now - timedelta(minutes=5)
    engine.evaluate(replay.cutoff)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for minutes in range(4, -1, -1):
        replay.cutoff = now - timedelta(minutes=minutes)
        engine.evaluate(replay.cutoff)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def daemon_cpu(rules: list[Rule], recorded: dict[str, Any], stacks: int) -> dict[str, float]:
    """Median CPU seconds of the daemon's cycles a minute apart (as ``incremental_cpu``),
    and of evaluation alone within them."""
    from agent.clock import ManualClock
    from agent.daemon import cycle, heap, persistence
    from agent.store import Store
    from agent.wiring import build_pipeline

    now: datetime = recorded["now"]
    clock = ManualClock(now - timedelta(minutes=5))
    with tempfile.TemporaryDirectory(prefix="stackwatch-evalcpu-") as folder:
        settings = load_config(write_setup(Path(folder), len(rules), stacks), explicit=True)
        store = Store(Path(folder) / "state.db")
        persistence.migrate(store)
        pipeline = build_pipeline(settings, clock, rules, store=store, lazy_channels=True)
        replay = ReplaySource(recorded["rows"])
        pipeline.engine.source = replay
        engine_evaluate = pipeline.engine.evaluate
        evaluating: list[float] = []

        def timed(at: datetime, selected: Any = None) -> Any:
            started = time.process_time()
            report = engine_evaluate(at, selected)
            evaluating.append(time.process_time() - started)
            return report

        pipeline.engine.evaluate = timed  # type: ignore[method-assign]
        replay.cutoff = clock.now()
        cycle.evaluate(pipeline, store, rules, replay.cutoff)
        heap.settle()
        spent, evaluating[:] = [], []
        for minutes in range(4, -1, -1):
            replay.cutoff = now - timedelta(minutes=minutes)
            clock.set(replay.cutoff)
            started = time.process_time()
            cycle.evaluate(pipeline, store, rules, replay.cutoff)
            spent.append(time.process_time() - started)
        store.close()
    return {"cycle": statistics.median(spent), "evaluate": statistics.median(evaluating)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1000x20")
    parser.add_argument("--rows", type=Path, default=None)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--daemon", action="store_true")
    args = parser.parse_args()
    configure_logging("error")
    rules_count, stacks = map(int, args.size.split("x"))
    path = args.rows or Path(tempfile.gettempdir()) / f"stackwatch-evalcpu-{args.size}.pickle"
    rules = load_rules(rules_count, stacks)
    if args.record or not path.exists():
        path.write_bytes(pickle.dumps(record(rules, stacks)))
    recorded = pickle.loads(path.read_bytes())
    if args.profile:
        profile(rules, recorded)
        return
    if args.daemon:
        figures = [daemon_cpu(rules, recorded, stacks) for _ in range(args.rounds)]
        cycle_cpu = statistics.median(f["cycle"] for f in figures)
        evaluate_cpu = statistics.median(f["evaluate"] for f in figures)
        print(
            f"daemon cycle CPU, cycle bringing one new minute ({args.size}): "
            f"{cycle_cpu * 1000:.0f} ms, of which evaluation {evaluate_cpu * 1000:.0f} ms "
            f"(median of {args.rounds} rounds, each the median of 5 cycles)"
        )
        return
    instances = 0
    spent = []
    for _ in range(args.rounds):
        started = time.process_time()
        spent.append(incremental_cpu(rules, recorded["rows"], recorded["now"]))
        instances = instances or _instances(rules, recorded)
        print(f"  round: {spent[-1] * 1000:.0f} ms ({time.process_time() - started:.1f} s)")
    median = statistics.median(spent)
    print(
        f"evaluation CPU, cycle bringing one new minute ({args.size}, {instances} instances): "
        f"{median * 1000:.0f} ms per cycle, {median * 1000 * 10_000 / instances:.0f} ms per "
        f"10k instances (median of {args.rounds} rounds, each the median of 5 cycles; "
        f"least {min(spent) * 1000:.0f} ms)"
    )


def _instances(rules: list[Rule], recorded: dict[str, Any]) -> int:
    engine = Engine(rules, ReplaySource(recorded["rows"]), watch_source=False)
    engine.evaluate(recorded["now"])
    return len(engine.all_instances())


if __name__ == "__main__":
    main()
