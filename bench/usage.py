"""CPU time and peak RSS of a command run to completion, measured by a small launcher.

On Linux a child's ``ru_maxrss`` starts at its parent's RSS at the time it is spawned
(vfork and exec carry the high-water mark over), so a command started by a large
benchmark process reports the benchmark's size, not its own. ``measure`` therefore runs
the command under this file as a script: a fresh interpreter of about 10 MB that waits
for the command and writes its resource usage to a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    cpu: float  # user + system seconds
    peak_rss: int  # bytes
    exit_code: int
    output: str  # stdout, when captured


def measure(
    command: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    capture: bool = True,
) -> Usage:
    """Run ``command`` (stderr discarded; stdout returned when ``capture``)."""
    with tempfile.TemporaryDirectory(prefix="stackwatch-usage-") as folder:
        report = Path(folder) / "usage.json"
        finished = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), str(report), *command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        figures = json.loads(report.read_text())
    output = finished.stdout.decode() if capture else ""
    return Usage(figures["cpu"], figures["peak_rss"], figures["exit_code"], output)


def own_peak_rss() -> int:
    """This process's own peak RSS in bytes (its memory's high-water mark, ``VmHWM``),
    which, unlike ``ru_maxrss``, does not start at the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _launch() -> None:
    report, *command = sys.argv[1:]
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    figures = {
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,
        "exit_code": os.waitstatus_to_exitcode(status),
    }
    Path(report).write_text(json.dumps(figures))


if __name__ == "__main__":
    _launch()
