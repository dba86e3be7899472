"""Durable agent state: one SQLite file shared by the packages that need memory across restarts."""

from agent.store.db import Store, StoreError

__all__ = ["Store", "StoreError"]
