"""The state store's connections: one per thread, closed once their thread has ended."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from agent.store import Store


def test_the_connection_of_an_ended_thread_is_closed(tmp_path: Path) -> None:
    # the daemon's HTTP server runs each client connection in a thread of its own
    store = Store(tmp_path / "state.db")
    try:
        theirs: list[sqlite3.Connection] = []
        worker = threading.Thread(target=lambda: theirs.append(store.connection()))
        worker.start()
        worker.join()
        theirs[0].execute("SELECT 1")  # still open: nobody opened one since
        other = threading.Thread(target=store.connection)
        other.start()
        other.join()
        with pytest.raises(sqlite3.ProgrammingError):
            theirs[0].execute("SELECT 1")
        assert store.connection().execute("SELECT 1").fetchone()[0] == 1
    finally:
        store.close()
