"""``stackwatch --help`` (and a sub-command's) loads no heavy library; ``check`` only those
it judges with.

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
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
loaded = {name.split(".")[0] for name, m in sys.modules.items() if m}
print(json.dumps({"code": code, "modules": sorted(loaded)}))
"""

#: the top-level packages a fresh interpreter has loaded after ``code`` (a module that is
#: marked missing, None in ``sys.modules``, is not loaded)
_LOADED_AFTER = """
import json, sys
{code}
print(json.dumps(sorted({{name.split(".")[0] for name, m in sys.modules.items() if m}})))
"""


def _loaded_after(code: str) -> set[str]:
    probe = _LOADED_AFTER.format(code=code)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def _loaded(*argv: str) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    return report["code"], set(report["modules"])


def test_importing_the_cli_loads_no_heavy_library() -> None:
    modules = _loaded_after("import agent.cli")
    assert "agent" in modules
    assert modules & HEAVY == set()


def test_our_http_client_loads_no_command_line_library() -> None:
    # httpx's own command-line tool would bring click (and pygments, rich) into the daemon
    modules = _loaded_after("import agent.collect.http")
    assert "httpx" in modules
    assert modules & {"click", "pygments", "rich"} == set()


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


def test_check_loads_neither_the_engine_nor_the_http_clients(tmp_path) -> None:
    from bench.rulemix import write_setup

    config = write_setup(tmp_path, 20, 2)
    code, modules = _loaded("check", "--config", str(config))
    assert code == 0
    # Apprise judges the channels' URLs (Jinja2 would judge the rules' own templates: these
    # keep the default); fetching is not checking: no HTTP client, scheduler or metrics
    assert modules & HEAVY == {"apprise", "pydantic"}
