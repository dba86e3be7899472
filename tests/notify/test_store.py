from __future__ import annotations

import sqlite3
import threading

import pytest

from agent.store import Store, StoreError


def test_pragmas_and_core_version(tmp_path):
    store = Store(tmp_path / "s.db")
    conn = store.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    store.close()


def test_components_register_their_own_migrations(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    assert store.migrate("alerts", ["CREATE TABLE a (x INTEGER);"]) == 1
    assert store.migrate("other", ["CREATE TABLE b (y INTEGER); CREATE TABLE c (z TEXT);"]) == 1
    # A later release appends a script; earlier ones are not run again.
    assert store.migrate("alerts", ["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD w;"]) == 2
    store.close()
    reopened = Store(path)
    assert reopened.migrate("alerts", ["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD w;"]) == 2
    with pytest.raises(StoreError, match="newer than this agent"):
        reopened.migrate("alerts", ["CREATE TABLE a (x INTEGER);"])
    reopened.close()


def test_failed_migration_rolls_back(tmp_path):
    store = Store(tmp_path / "s.db")
    with pytest.raises(sqlite3.OperationalError):
        store.migrate("bad", ["CREATE TABLE ok (x); CREATE TABLE broken (;"])
    tables = {r[0] for r in store.connection().execute("SELECT name FROM sqlite_master")}
    assert "ok" not in tables
    store.close()


def test_threads_write_concurrently(tmp_path):
    store = Store(tmp_path / "s.db")
    store.migrate("t", ["CREATE TABLE n (v INTEGER);"])

    def work() -> None:
        for i in range(50):
            with store.tx() as conn:
                conn.execute("INSERT INTO n VALUES (?)", (i,))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.connection().execute("SELECT COUNT(*) FROM n").fetchone()[0] == 200
    store.close()


def test_memory_database_refused():
    with pytest.raises(StoreError):
        Store(":memory:")
