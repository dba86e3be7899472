"""A small SQLite state store: WAL, one connection per thread, per-package migrations.

Why per-package migrations: notify, the daemon's alert-instance tables and later
packages evolve independently, so one global ``PRAGMA user_version`` integer could
not order their scripts. ``user_version`` versions the store's own bookkeeping table
(``schema_versions``); each package's scripts are numbered in that table under the
package's name. A package calls ``store.migrate("notify", NOTIFY_MIGRATIONS)`` once
at start-up; scripts already applied are skipped, new ones run in order, each in its
own transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: bookkeeping schema, versioned by PRAGMA user_version.
_CORE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS schema_versions (
        component TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    );
    """,
)


class StoreError(Exception):
    """The state file cannot be opened or migrated."""


class Store:
    """A SQLite file used from any number of threads.

    Each thread gets its own connection (SQLite connections must not be shared
    while in use); writers serialise on SQLite's own lock, waited for up to
    ``busy_timeout`` seconds. Keep transactions short: ``with store.tx() as db``.
    """

    def __init__(self, path: Path | str, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise StoreError("Store needs a file: an in-memory database is private to a thread")
        # The state holds alert contents and audit trails: private whatever the umask.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            # (SQLite gives its -wal and -shm files the database file's mode)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        #: every open connection with the thread it belongs to
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        self._migrate_lock = threading.Lock()
        self._closed = False
        self._migrate_core()

    # -- connections ----------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode (use ``tx`` to group writes)."""
        if self._closed:
            raise StoreError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    # Each connection is used by its own thread only; False lets
                    # close() release them all from the closing thread.
                    check_same_thread=False,
                )
            except sqlite3.Error as error:
                raise StoreError(f"cannot open state file {self.path}: {error}") from None
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            # SQLite's default keeps up to 2 MB of pages per connection, and a daemon has
            # one per thread that writes: a few hundred KB each do (the file's pages stay
            # in the OS's cache)
            conn.execute("PRAGMA cache_size=-256")
            self._local.conn = conn
            with self._all_lock:
                # threads that ended (an HTTP request's) leave theirs: close them now
                ended = [old for thread, old in self._all if not thread.is_alive()]
                self._all = [(t, c) for t, c in self._all if t.is_alive()]
                self._all.append((threading.current_thread(), conn))
            for old in ended:
                old.close()
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken with BEGIN IMMEDIATE so it never fails half-way on lock
        upgrade; committed on success, rolled back on error."""
        conn = self.connection()
        if conn.in_transaction:  # nested use joins the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for _thread, conn in conns:
            conn.close()

    # -- migrations -----------------------------------------------------------------

    def _migrate_core(self) -> None:
        conn = self.connection()
        with self._migrate_lock, self.tx():
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(_CORE_MIGRATIONS, start=1):
                if number > current:
                    conn.execute(script)
            conn.execute(f"PRAGMA user_version = {len(_CORE_MIGRATIONS)}")

    def migrate(self, component: str, scripts: Sequence[str]) -> int:
        """Apply ``scripts[version:]`` for ``component``; return the component's version.

        Scripts are append-only: never edit one that has shipped, add a new one.
        """
        conn = self.connection()
        with self._migrate_lock:
            for number, script in enumerate(scripts, start=1):
                with self.tx():
                    row = conn.execute(
                        "SELECT version FROM schema_versions WHERE component = ?", (component,)
                    ).fetchone()
                    current = row[0] if row else 0
                    if number <= current:
                        continue
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        (component, number),
                    )
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            if row and row[0] > len(scripts):
                raise StoreError(
                    f"state file {self.path} has {component} schema v{row[0]}, newer than this "
                    f"agent knows (v{len(scripts)}); upgrade the agent"
                )
            return row[0] if row else 0


def _statements(script: str) -> list[str]:
    """Split a script into statements (executescript would commit our transaction).

    Cut at each ``;`` where SQLite agrees the statement is complete, so semicolons
    inside strings or trigger bodies stay put.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            text = buffer.strip()
            if text.strip(";").strip() and not _only_comments(text):
                statements.append(text)
            buffer = ""
    if buffer.strip(";").strip() and not _only_comments(buffer):
        statements.append(buffer.strip())
    return statements


def _only_comments(text: str) -> bool:
    lines = [line.strip() for line in text.strip(";").splitlines()]
    return all(not line or line.startswith("--") for line in lines)
