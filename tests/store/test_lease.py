"""Claim by lease on a real SQLite file: two claimers never hold one row, an expired lease
is taken over, only pending rows are leased."""

from __future__ import annotations

import threading
from contextlib import closing
from pathlib import Path

import pytest

from agent.store import Store, lease

TABLE = "test_queue"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with closing(Store(path)) as store, store.tx() as conn:
        conn.execute(
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, status TEXT NOT NULL, "
            "claimed_by TEXT, claimed_until REAL)"
        )
        conn.executemany(
            f"INSERT INTO {TABLE} (id, status) VALUES (?, ?)",
            [(1, "pending"), (2, "pending"), (3, "done"), (4, "pending")],
        )
    return path


def unclaimed(store: Store, now: float) -> list[int]:
    rows = store.connection().execute(
        f"SELECT id FROM {TABLE} WHERE status = 'pending' AND {lease.UNCLAIMED} ORDER BY id",
        (now,),
    )
    return [row[0] for row in rows]


def holders(store: Store) -> dict[int, str | None]:
    rows = store.connection().execute(f"SELECT id, claimed_by FROM {TABLE} ORDER BY id")
    return {row[0]: row[1] for row in rows}


def test_two_claimers_of_the_same_candidates_never_share_a_row(path: Path) -> None:
    with closing(Store(path)) as first, closing(Store(path)) as second:
        seen_by_first = unclaimed(first, 100.0)
        seen_by_second = unclaimed(second, 100.0)
        assert seen_by_first == seen_by_second == [1, 2, 4]

        won = lease.claim(first.connection(), TABLE, seen_by_first, "a", 100.0, 160.0)
        lost = lease.claim(second.connection(), TABLE, seen_by_second, "b", 100.0, 160.0)

        assert [row["id"] for row in won] == [1, 2, 4]
        assert [row["claimed_until"] for row in won] == [160.0] * 3
        assert lost == []
        assert holders(second) == {1: "a", 2: "a", 3: None, 4: "a"}


def test_a_lease_is_taken_over_once_it_has_expired(path: Path) -> None:
    with closing(Store(path)) as first, closing(Store(path)) as second:
        lease.claim(first.connection(), TABLE, [1, 2], "a", 100.0, 160.0)
        # still held at 159: nothing for the second claimer
        assert lease.claim(second.connection(), TABLE, [1, 2], "b", 159.0, 219.0) == []
        # the first claimer crashed: after 160 its rows are free again
        assert unclaimed(second, 161.0) == [1, 2, 4]
        taken = lease.claim(second.connection(), TABLE, [1, 2], "b", 161.0, 221.0)
        assert [row["claimed_by"] for row in taken] == ["b", "b"]
        assert holders(first)[1] == "b"


def test_only_pending_rows_are_leased(path: Path) -> None:
    with closing(Store(path)) as store:
        assert lease.claim(store.connection(), TABLE, [3], "a", 100.0, 160.0) == []
        assert holders(store)[3] is None


def test_claimers_racing_in_threads_split_the_rows(path: Path) -> None:
    with closing(Store(path)) as store, store.tx() as conn:
        conn.executemany(
            f"INSERT INTO {TABLE} (id, status) VALUES (?, 'pending')",
            [(n,) for n in range(10, 210)],
        )
    won: dict[str, list[int]] = {}
    start = threading.Barrier(2)

    def claimer(worker: str) -> None:
        with closing(Store(path)) as own:
            candidates = unclaimed(own, 100.0)
            start.wait()
            rows = lease.claim(own.connection(), TABLE, candidates, worker, 100.0, 160.0)
            won[worker] = [row["id"] for row in rows]

    threads = [threading.Thread(target=claimer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(won["a"]).isdisjoint(won["b"])
    assert sorted(won["a"] + won["b"]) == [1, 2, 4, *range(10, 210)]
    with closing(Store(path)) as store:
        held = holders(store)
    assert all(held[n] == "a" for n in won["a"])
    assert all(held[n] == "b" for n in won["b"])


def test_a_table_name_that_is_not_an_identifier_is_refused(path: Path) -> None:
    with closing(Store(path)) as store, pytest.raises(ValueError, match="not a table name"):
        lease.claim(store.connection(), "t; DROP TABLE x", [1], "a", 100.0, 160.0)
