"""Views narrowed to a query's days: a cursor's temporary view over the files of the days in range
only, with a lake table's name, so DuckDB does not list the whole table's folders for the query.

The lake's views glob `<table>/date=*/*.parquet` at every query: about 10 ms for a year of day
folders, paid per table per query, before DuckDB prunes by date. A page over 30 days runs half a
dozen queries over two tables or more. `narrow` lists the folders of the days in range (the
listing reused for a second, like the app's cache key) and gives the cursor a temporary view over
exactly those files, in the shape of the lake's view; the lake's view stays for every other
cursor, the DuckDB shell and ingest. A query that raced a compaction or retention (a listed file
swapped away) drops the narrowed views and runs again on the lake's own (`forget`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb

from lake import views
from lake.layout import data_files, partition_dir
from lake.recent import Recent
from lake.tables import TABLES

#: Ranges longer than this read through the lake's views: listing every day folder of a long
#: range costs about what DuckDB's own glob does.
MAX_DAYS = 92
#: Seconds a listing is reused by the next queries (a page's) before the folders are listed
#: again: a new file counts within that, as the app's cache key does.
REUSE_S = 1.0
#: Tables a query can narrow: the samples have their month copies (`lake.sample_months`).
NARROWED = tuple(name for name, table in TABLES.items() if not table.sample_of)
#: A narrowed table named in a query's SQL as a word.
_NAMED = re.compile(r"\b(" + "|".join(map(re.escape, NARROWED)) + r")\b")

_listings: Recent[tuple[Path, str, date, date], str] = Recent()


def narrow(
    con: duckdb.DuckDBPyConnection, lake: Path, sql: str, start: date | None, end: date | None
) -> list[str]:
    """Give `con` a temporary view over the days `start` to `end` (both included) of each table
    `sql` names, which must read those tables within that range only; the tables narrowed.
    Nothing is narrowed for an open or a long range."""
    if start is None or end is None or not 0 <= (end - start).days < MAX_DAYS:
        return []
    narrowed = []
    for table in sorted(set(_NAMED.findall(sql))):
        key = (lake, table, start, end)
        reused = _listings.get(key, REUSE_S)
        # Defining the view opens one of its files: a listing reused from before a compaction
        # or retention fails there, and is made again once.
        if (reused and define(con, table, reused)) or define(con, table, _listed(key)):
            narrowed.append(table)
        else:
            forget(con, lake, [table])
    return narrowed


def _listed(key: tuple[Path, str, date, date]) -> str:
    """The view SQL of `key` (lake, table, start, end), listed now and kept for REUSE_S."""
    return _listings.put(key, view_sql(*key), REUSE_S)


def define(con: duckdb.DuckDBPyConnection, table: str, sql: str) -> bool:
    """Define `con`'s temporary view `table` as `sql`; False if a listed file went away."""
    try:
        con.execute(f"create or replace temp view {table} as {sql}")
    except duckdb.IOException as e:
        if not views.raced_file_swap(e):
            raise
        return False
    return True


def forget(con: duckdb.DuckDBPyConnection, lake: Path, tables: list[str]) -> None:
    """Drop `con`'s narrowed views of `tables` and their listings (a listed file went away)."""
    for table in tables:
        con.execute(f"drop view if exists temp.{table}")
    _listings.forget(lambda key: key[0] == lake and key[1] in tables)


def view_sql(lake: Path, table: str, start: date, end: date) -> str:
    """The rows of `table` from the files of the days `start` to `end`: the columns of the lake's
    view (`lake.views.view_sql`), typed alike when the range holds no file."""
    return days_sql(lake, table, [start + timedelta(days=i) for i in range((end - start).days + 1)])


def days_sql(lake: Path, table: str, days: Sequence[date]) -> str:
    """`view_sql` of the files of `days`, listed now."""
    files = [str(f) for day in days for f in data_files(partition_dir(lake, table, day))]
    columns = ", ".join(f'"{f.name}"' for f in TABLES[table].schema)
    if not files:
        return views.empty_sql(TABLES[table])
    paths = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return (
        f"select {columns}, date from read_parquet([{paths}], hive_partitioning = true, "
        "hive_types = {'date': 'date'})"
    )
