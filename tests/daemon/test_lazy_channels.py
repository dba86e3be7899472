"""Apprise (about a second to import) is not on the daemon's way to readiness: settings and
the pipeline load without it, the channels load once the daemon serves, and a channel URL
Apprise refuses still stops ``stackwatch run`` as a config error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .support import ROOT, DaemonProcess, write_config

pytestmark = pytest.mark.timeout(120)

SECRET = "hunter2pass"


def _config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path, simulator_url="http://127.0.0.1:9", hook_port=9, origin=datetime.now(UTC), speed=1
    )


def test_the_daemon_is_built_without_apprise_and_loads_it_once_started(tmp_path: Path) -> None:
    config = _config(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys, threading
        from pathlib import Path
        from agent.config import load_settings
        from agent.daemon.service import Daemon

        daemon = Daemon(load_settings(Path({str(config)!r})), Path({str(config)!r}))
        assert "apprise" not in sys.modules, "built with Apprise"
        assert not daemon.notifier.channels.loaded
        daemon.start()
        assert daemon.ready()
        loader = [t for t in threading.enumerate() if t.name == "channels"]
        for thread in loader:
            thread.join(60)
        assert daemon.notifier.channels.loaded and "apprise" in sys.modules
        assert daemon.notifier.channels.get("hook").destinations[0].scheme == "json"
        assert daemon.stop()
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_a_url_apprise_refuses_stops_run_as_a_config_error(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.write_text(
        config.read_text().replace(
            'urls = ["json://127.0.0.1:9/"]',
            f'urls = ["json://127.0.0.1:9/", "nosuchscheme://user:{SECRET}@host"]',
        )
    )
    daemon = DaemonProcess(config)
    try:
        code = daemon.proc.wait(60)
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
    assert code == 2
    assert (
        "error: channel 'hook': URL #2 (nosuchscheme://…) is not a valid Apprise URL"
        in (daemon.unparsed())[-1]
    )
    assert daemon.events("config_invalid")
    everything = "".join(daemon.raw)
    assert SECRET not in everything and "Traceback" not in everything
