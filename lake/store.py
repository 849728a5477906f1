"""What the lake's SQLite store (thresholds, schedules, report runs) shares: opening a
connection, and switching to WAL.

Each module keeps its own tables and schema; this one holds the pieces they all need the same.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from lake import LakeError
from lake.layout import ensure_lake, metadata_db

#: Seconds a connection waits for another process's write before it gives up.
BUSY_TIMEOUT_S = 10.0


def connect(lake: Path, error: type[LakeError], what: str) -> sqlite3.Connection:
    """A connection to the lake's store (created with its folder if missing); `error` with
    `what` ("the threshold store") in its message when it cannot be opened.

    Implicit transactions start with BEGIN IMMEDIATE: a writer takes the lock up front instead
    of failing on upgrade when another process wrote in between.
    """
    path = metadata_db(ensure_lake(lake))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level="IMMEDIATE")
    except (OSError, sqlite3.Error) as e:
        raise error(f"cannot open {what} {path}: {e}") from e
    try:
        con.execute(f"pragma busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    except sqlite3.Error as e:
        con.close()
        raise error(f"cannot prepare {what} {path}: {e}") from e
    return con


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
