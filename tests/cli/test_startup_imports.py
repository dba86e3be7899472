"""``stackwatch --help`` (and a sub-command's) loads no heavy library.

Each case runs in a fresh interpreter and reports which top-level packages it loaded:
the sending, templating, scheduling, metrics and HTTP libraries belong to the
handlers that use them, not to start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = {"apprise", "jinja2", "apscheduler", "prometheus_client", "httpx", "pydantic"}

_PROBE = """
import json, sys
from agent.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    return report["code"], set(report["modules"])


def test_importing_the_cli_loads_no_heavy_library() -> None:
    probe = "import json, sys, agent.cli; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    modules = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert "agent" in modules
    assert modules & HEAVY == set()


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("run", "--help"),
        ("silence", "add", "--help"),
        ("login", "--help"),
        ("notify-test", "--help"),
        ("automations", "--help"),
        ("simulate", "--help"),
    ],
)
def test_help_loads_no_heavy_library(argv: tuple[str, ...]) -> None:
    code, modules = _loaded(*argv)
    assert code == 0
    assert modules & HEAVY == set()
