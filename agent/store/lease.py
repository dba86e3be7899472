"""Claim by lease, the one mechanism behind every queue in the store (notify's outbox,
remediation's actions due): a row is leased to one worker until a time, by a
compare-and-swap that is a plain conditional UPDATE, so any number of workers (threads,
processes, later hosts on a shared database) may claim from one table and a crashed
worker's rows are taken over once its lease expires.

A leased table has the columns ``id``, ``status`` (``'pending'`` while claimable),
``claimed_by`` and ``claimed_until``. Which rows are due, in which order, is the owning
stage's SQL: it selects candidate ids (with ``UNCLAIMED`` among its conditions) and
hands them here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

#: the condition of a row no unexpired lease holds; takes one parameter, ``now``
UNCLAIMED = "(claimed_until IS NULL OR claimed_until < ?)"


def claim(
    conn: sqlite3.Connection,
    table: str,
    candidates: Iterable[int],
    worker: str,
    now: float,
    until: float,
) -> list[sqlite3.Row]:
    """Lease each candidate row still pending and unclaimed at ``now`` to ``worker``
    until ``until``; returns the rows won, in the candidates' order. A row another
    worker won meanwhile matches no UPDATE and is left out."""
    if not table.isidentifier():  # the owner's constant, never input: checked all the same
        raise ValueError(f"not a table name: {table!r}")
    update = (
        f"UPDATE {table} SET claimed_by = ?, claimed_until = ? "
        f"WHERE id = ? AND status = 'pending' AND {UNCLAIMED}"
    )
    won: list[sqlite3.Row] = []
    for row_id in candidates:
        if conn.execute(update, (worker, until, row_id, now)).rowcount == 1:
            won.append(conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone())
    return won
