"""The one way to read the lake: a DuckDB connection with one view per table, and a query runner.

The views are plain scans of the Parquet files (the writer keeps duplicates out), so DuckDB prunes
by the hive `date` column and reads only the columns a query names. The same view definitions
feed the init script of the DuckDB shell (`perflake sql`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake import QueryError
from lake.layout import (
    data_files,
    ensure_lake,
    has_partitions,
    partition_days,
    partition_dir,
    partition_glob,
)
from lake.recent import Recent
from lake.tables import TABLES, Table

log = logging.getLogger(__name__)

#: A reader can race compaction or retention (files listed, then swapped away): it retries.
_RETRIES = 5


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamptz"
    if pa.types.is_map(t):
        return f"map({_sql_type(t.key_type)}, {_sql_type(t.item_type)})"
    return {
        pa.string(): "varchar",
        pa.int64(): "bigint",
        pa.int32(): "integer",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.binary(): "blob",
    }[t]


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def view_sql(lake: Path, table: Table, relative: bool = False) -> str:
    """`create view` for one table: a scan of its files, or a typed empty relation if none yet."""
    columns = ", ".join(f'"{f.name}"' for f in table.schema)
    if partition_days(lake, table.name):
        glob = partition_glob(Path(".") if relative else lake, table.name)
        source = (
            f"read_parquet({_quote(glob)}, hive_partitioning = true, "
            "hive_types = {'date': 'date'})"
        )
        return f"create or replace view {table.name} as select {columns}, date from {source};"
    return f"create or replace view {table.name} as {empty_sql(table)};"


def empty_sql(table: Table) -> str:
    """A relation with the columns and types of `table`'s view and no row."""
    typed = ", ".join(f'cast(null as {_sql_type(f.type)}) as "{f.name}"' for f in table.schema)
    return f"select {typed}, cast(null as date) as date where false"


def init_script(lake: Path, relative: bool = False) -> str:
    """SQL that defines every view; `relative` paths resolve from the lake folder (for the shell)."""
    lake = ensure_lake(lake)
    # Days, hours and `date` casts in UTC, whatever the analyst's machine is set to.
    lines = ["set TimeZone = 'UTC';"] + [view_sql(lake, t, relative) for t in TABLES.values()]
    return "\n".join(lines) + "\n"


def connect(lake: Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per lake table (read-only on the files)."""
    lake = ensure_lake(lake)
    config: dict[str, Any] = {}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    try:
        # Defining a view binds it, which opens one of its files: the same race as any read.
        _execute(con, init_script(lake))
    except duckdb.Error as e:
        con.close()
        raise QueryError(f"cannot define the lake views over {lake}: {e}") from e
    return con


#: Seconds which tables have files is reused by the next cursors (a page's queries) before it
#: is looked at again (1 ms a cursor): a table's first files count within that.
SHAPE_REUSE_S = 1.0
_shapes: Recent[Path, tuple[bool, ...]] = Recent()
#: One read connection per lake and process, with the shape of the lake it was defined for.
_SHARED: dict[Path, tuple[tuple[bool, ...], duckdb.DuckDBPyConnection]] = {}
_SHARED_LOCK = threading.Lock()


def cursor(lake: Path) -> duckdb.DuckDBPyConnection:
    """A cursor on the lake's shared read connection (close it after use).

    The views are defined once per process and Parquet footers stay cached between queries,
    which saves a tenth of a second or more per query on a big lake. The views re-list their
    files at every query; they are redefined when a table gets its first files.
    """
    lake = ensure_lake(lake)
    shape = _shapes.get(lake, SHAPE_REUSE_S)
    if shape is None:
        shape = _shapes.put(
            lake, tuple(has_partitions(lake, t.name) for t in TABLES.values()), SHAPE_REUSE_S
        )
    with _SHARED_LOCK:
        entry = _SHARED.get(lake)
        if entry is None or entry[0] != shape:
            con = connect(lake)
            try:
                con.execute("set global parquet_metadata_cache = true;set global TimeZone = 'UTC';")
            except duckdb.Error as e:
                con.close()
                raise QueryError(f"cannot configure the lake connection: {e}") from e
            # A replaced connection is not closed: cursors other threads hold keep it alive.
            _SHARED[lake] = entry = (shape, con)
        cur = entry[1].cursor()
    # A long query would draw DuckDB's progress bar on the caller's stderr.
    cur.execute("set enable_progress_bar = false")
    return cur


def run(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] = ()
) -> duckdb.DuckDBPyConnection:
    """Execute `sql` with bound `params`, logging time; retries a read that raced a file swap."""
    started = time.perf_counter()
    try:
        result = _execute(con, sql, params)
    except duckdb.Error as e:
        raise QueryError(f"{e}") from e
    log.debug("%.1f ms %s %s", (time.perf_counter() - started) * 1000, sql.strip(), params)
    return result


def _execute(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] = ()
) -> duckdb.DuckDBPyConnection:
    """`con.execute`, again when it raced compaction or retention (files listed, then swapped
    away), up to _RETRIES times; the last error is raised as DuckDB's."""
    for attempt in range(1, _RETRIES + 1):
        try:
            return con.execute(sql, params)
        except duckdb.IOException as e:
            if attempt == _RETRIES or not raced_file_swap(e):
                raise
            log.info("retrying a read that raced compaction/retention: %s", e)
    raise AssertionError("unreachable")


def raced_file_swap(e: Exception) -> bool:
    """Whether a read failed for a file listed, then swapped away (compaction, retention)."""
    text = str(e)
    return "No such file" in text or "No files found" in text or "Cannot open file" in text


def table_files(lake: Path, table: str) -> list[tuple[date, Path, int]]:
    """Every published file of a table: (day, path, modification time in ns)."""
    out = []
    for day in partition_days(lake, table):
        for path in data_files(partition_dir(lake, table, day)):
            try:
                out.append((day, path, path.stat().st_mtime_ns))
            except FileNotFoundError:  # swapped away by compaction or retention since the listing
                continue
    return out


def newest_ingested_at(files: list[tuple[date, Path, int]]) -> datetime | None:
    """The latest `ingested_at` among `files` (of `table_files`), reading as few as it can.

    A row is stamped before its file is published, so no row of a file is newer than the file:
    once the newest files read hold a time T, only files modified after T can hold a later one
    (less a minute, for the clocks of a writer and of a shared file system that differ a little).
    Usually a few footers are read (the row groups' statistics), at worst every file's.
    """
    newest: datetime | None = None
    for _, path, mtime_ns in sorted(files, key=lambda f: f[2], reverse=True):
        if newest is not None and mtime_ns < _ns(newest) - _CLOCK_SKEW_NS:
            break
        try:
            found = file_max_ingested_at(path)
        except FileNotFoundError:
            continue
        except (OSError, pa.ArrowException) as e:
            raise QueryError(f"cannot read {path}: {e}") from e
        if found is not None and (newest is None or found > newest):
            newest = found
    return newest


_CLOCK_SKEW_NS = 60 * 1_000_000_000


def file_max_ingested_at(path: Path) -> datetime | None:
    """One file's latest `ingested_at`: from its footer's statistics, or the column without."""
    meta = pq.read_metadata(path)
    paths = [meta.schema.column(i).path for i in range(meta.num_columns)]
    index = paths.index("ingested_at")
    found: list[datetime] = []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            found = []
            break
        found.append(stats.max)
    if len(found) == meta.num_row_groups:
        return max(found, default=None)
    value: datetime | None = pc.max(pq.read_table(path, columns=["ingested_at"])[0]).as_py()
    return value


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
