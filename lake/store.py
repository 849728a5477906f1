"""What the lake's SQLite store (thresholds, schedules, report runs) shares: switching to WAL.

Each module keeps its own tables and schema; this one holds the piece they all need the same.
"""

from __future__ import annotations

import sqlite3
import time


def use_wal(con: sqlite3.Connection, timeout_s: float) -> None:
    """Switch a store to WAL mode, which lasts; readers then never block the writer."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            con.execute("pragma journal_mode = wal")
            return
        except sqlite3.OperationalError as e:
            # Two connections switching at once would deadlock, so SQLite fails one of them
            # at once instead of waiting: it tries again.
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
