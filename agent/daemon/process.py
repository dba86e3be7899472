"""The daemon as a process: signals in, systemd notifications out, reloads on SIGHUP.

Signal handlers only set flags and wake the main thread; the reload itself runs there,
never inside a handler.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Protocol

from agent.daemon import systemd


class Controllable(Protocol):
    def start(self) -> None: ...

    def reload(self) -> bool: ...

    def stop(self) -> bool: ...

    def healthy(self) -> bool: ...


class ProcessLoop:
    def __init__(self, daemon: Controllable) -> None:
        self.daemon = daemon
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False

    def request_stop(self, *_args: object) -> None:
        self._stop_requested = True
        self._wake.set()

    def request_reload(self, *_args: object) -> None:
        self._reload_requested = True
        self._wake.set()

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        def reload(signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def run(self) -> bool:
        """Serve until SIGTERM/SIGINT; True when it stopped cleanly."""
        self.install_signal_handlers()
        self.daemon.start()
        watchdog = systemd.watchdog_interval()
        next_ping = time.monotonic()
        while not self._stop_requested:
            self._wake.wait(timeout=min(watchdog or 1.0, 1.0))
            self._wake.clear()
            if self._reload_requested and not self._stop_requested:
                self._reload_requested = False
                systemd.notify("RELOADING=1")
                self.daemon.reload()
                systemd.notify("READY=1")
            if watchdog and time.monotonic() >= next_ping and self.daemon.healthy():
                systemd.notify("WATCHDOG=1")
                next_ping = time.monotonic() + watchdog
        return self.daemon.stop()
