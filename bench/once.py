"""``stackwatch once`` cold (a new process, nothing cached) against the simulator process.

CPU and peak RSS of the process, its wall time, and the API's floor for it: the requests
it made at 10 per second, with the issue's allowance (1.5 x requests / 10 req/s + 10 s).

    python -m bench.once [--rules 1000] [--stacks 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rulemix import write_setup
from bench.simproc import SimulatorProcess, peak_rate
from bench.startup import compile_agent

#: the API's rate limit, requests per second
RATE = 10.0


def measure_once(config: Path, sim: SimulatorProcess) -> dict[str, Any]:
    compile_agent()
    run_config = config.with_name("once.toml")
    run_config.write_text(config.read_text().replace("http://127.0.0.1:9", sim.url))
    sim.clear()
    started = time.perf_counter()
    command = ["once", "--format", "json", "--config", str(run_config)]
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: a rule could not be evaluated (reported, not a crash)
        raise RuntimeError(f"stackwatch once exited with {code}")
    arrivals = sim.arrivals()
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,
        "wall": wall,
        "requests": len(arrivals),
        "allowed_wall": 1.5 * len(arrivals) / RATE + 10.0,
        "peak_rate": peak_rate(arrivals),
        "throttled": sum(1 for a in arrivals if a.status == 429),
        "exit": code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--stacks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job-duration", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = write_setup(Path(folder), args.rules, args.stacks)
        runs = []
        with SimulatorProcess(args.stacks, job_duration=args.job_duration) as sim:
            for _ in range(args.runs):
                runs.append(measure_once(config, sim))
                print(json.dumps(runs[-1]), flush=True)
    for key in runs[0]:
        print(f"{key}: median {statistics.median(r[key] for r in runs):.2f}", flush=True)


if __name__ == "__main__":
    main()
