"""Real Prometheus-world programs (Debian's ``prometheus``, ``prometheus-alertmanager``) run
by tests on 127.0.0.1: found or skipped (a failure under ``CI``, where ``.ci/run`` installs
them), started on a free port with their files in a temporary folder, stopped after."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def require(name: str) -> str:
    """The program's path; skips the test where it is missing, fails it under CI."""
    found = shutil.which(name) or (Path("/usr/bin") / name)
    if Path(found).exists():
        return str(found)
    message = f"{name} not installed (Debian: apt-get install prometheus prometheus-alertmanager)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_until(check: Any, what: str, deadline_seconds: float = 30.0, every: float = 0.1) -> Any:
    """Poll ``check()`` until it returns something truthy (another process's timing)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


@contextmanager
def running(args: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait for its readiness URL, stop it after."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{args[0]} exited: {log.read_text()[-2000:]}")
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                return bool(response.status == 200)

        wait_until(ready, f"{args[0]} to be ready")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
