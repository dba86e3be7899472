"""Start-up of the real daemon (``stackwatch run``) against the simulator process.

Measured from the moment the process is spawned: when ``/readyz`` first answers 200,
and when every rule group has finished its first cycle (the daemon's
``first_cycles_done`` log line, read as it is written: scraping ``/metrics`` every few
hundredths of a second would take CPU from the cycles it times; one scrape afterwards
checks that every group has its evaluations). The first cycle's API time is the floor
the API sets: the requests it made at the simulator at 10 per second, plus one job's
latency. The agent's modules are compiled first, as an install compiles them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.simproc import SimulatorProcess, peak_rate

#: the API's rate limit, requests per second
RATE = 10.0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def _groups_done(metrics: str) -> int:
    done = set()
    for line in metrics.splitlines():
        if line.startswith("stackwatch_evaluations_total{") and float(line.rsplit(" ", 1)[1]):
            done.add(line.split('group="', 1)[1].split('"', 1)[0])
    return len(done)


def _cycles_run(metrics: str) -> int:
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("stackwatch_evaluations_total{")
    )


def compile_agent(folder: Path | None = None) -> None:
    """Compile the agent's modules (those in ``folder``, default the imported ones) to
    bytecode, as ``pip install`` does (the Docker image too): a checkout run under
    PYTHONDONTWRITEBYTECODE would compile all of them again in every process it starts,
    which no installed stackwatch does."""
    import compileall

    import agent

    compileall.compile_dir(folder or Path(agent.__file__).parent, quiet=1)


def measure_startup(
    config: Path, sim: SimulatorProcess, groups: int, job_duration: float, observe: float = 0.0
) -> dict[str, Any]:
    """``observe``: seconds from the start to keep the daemon running, for the request
    rate the simulator saw over several cycles of every group."""
    compile_agent()
    folder = config.parent
    (folder / "state.db").unlink(missing_ok=True)
    run_config = folder / "run.toml"
    run_config.write_text(
        config.read_text()
        .replace("http://127.0.0.1:9", sim.url)
        .replace("[agent]\n", "[agent]\nhttp_port = 0\n")
        .replace('log_level = "warning"', 'log_level = "info"')
    )
    sim.clear()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(run_config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found: dict[str, str] = {}

    first_cycles: list[float] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if '"daemon_started"' in line:
                found["url"] = json.loads(line)["http"]
            elif '"first_cycles_done"' in line:
                first_cycles.append(time.perf_counter() - started)

    threading.Thread(target=read, daemon=True).start()
    try:
        while "url" not in found:
            if process.poll() is not None:
                raise RuntimeError(f"stackwatch run exited with {process.returncode}")
            time.sleep(0.01)
        url = found["url"]
        while _get(url + "/readyz")[0] != 200:
            time.sleep(0.02)
        ready = time.perf_counter() - started
        while groups and not first_cycles:
            if process.poll() is not None:
                raise RuntimeError(f"stackwatch run exited with {process.returncode}")
            time.sleep(0.01)
        first_cycle = first_cycles[0] if groups else ready
        requests = len(sim.arrivals())
        done = _groups_done(_get(url + "/metrics")[1])
        if done < groups:
            raise RuntimeError(f"first cycles logged done, but {done} of {groups} groups ran")
        while time.perf_counter() - started < observe:
            time.sleep(0.5)
        arrivals = sim.arrivals()
        cycles = _cycles_run(_get(url + "/metrics")[1])
    finally:
        process.terminate()
        process.wait(60)
    return {
        "ready": ready,
        "first_cycle": first_cycle,
        "api_time": requests / RATE + job_duration,
        "startup_requests": requests,
        "observed": time.perf_counter() - started if observe else first_cycle,
        "cycles": cycles,
        "observed_requests": len(arrivals),
        "peak_rate": peak_rate(arrivals),
        "throttled": sum(1 for a in arrivals if a.status == 429),
    }


def main() -> None:
    import argparse
    import statistics
    import tempfile
    from datetime import timedelta

    from agent.daemon.grouping import group_rules
    from agent.wiring import load_config, load_rule_set
    from bench.rulemix import write_setup

    parser = argparse.ArgumentParser(description="start -> /readyz and first cycle of `run`")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--stacks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job-duration", type=float, default=2.0)
    parser.add_argument("--no-first-cycle", action="store_true", help="stop at /readyz")
    parser.add_argument(
        "--observe", type=float, default=0.0, help="seconds to keep it running (request rate)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = write_setup(Path(folder), args.rules, args.stacks)
        rules = load_rule_set(load_config(config, explicit=True))
        groups = len(group_rules(rules, timedelta(minutes=1)))
        runs = []
        with SimulatorProcess(args.stacks, job_duration=args.job_duration) as sim:
            for _ in range(args.runs):
                runs.append(
                    measure_startup(
                        config,
                        sim,
                        0 if args.no_first_cycle else groups,
                        args.job_duration,
                        args.observe,
                    )
                )
                print(json.dumps(runs[-1]), flush=True)
    for key in ("ready", "first_cycle"):
        print(f"{key}: median {statistics.median(r[key] for r in runs):.2f} s", flush=True)


if __name__ == "__main__":
    main()
