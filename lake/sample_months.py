"""Month copies of the samples: each settled month of `jobs_sample` and `job_stages_sample` copied
into one Parquet file, so a query over a year opens 13 files instead of 365.

DuckDB pays about 0.2 ms per file it reads, whatever the file's size: grouping a year of the job
sample (620,000 rows in 365 day files) by workflow took 90 ms, and 5 ms from one file. Every
large-range query that reads a sample paid that, several times per page.

The copies are kept like the rollups (`lake.rollup`): a month's file is named for the signature
of its days' sample files, so a file that ingest adds, a compaction, a replay or a retention
makes the next query copy that month again, and today's rows are never copied. `shadow` gives a
query's cursor a temporary view with the sample table's name over the copies and the days not
copied; it hides the lake's view for that cursor only. The DuckDB shell, ingest and the lake's
own views never see the copies; deleting them is safe at any time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from lake import day_views, rollup
from lake.recent import Recent
from lake.tables import TABLES

log = logging.getLogger(__name__)


#: Seconds a view's SQL is reused by the next queries (a page's) before the files are listed
#: again (about 10 ms for a year): a new file counts within that, as the app's cache key does.
REUSE_S = 1.0
_views: Recent[tuple[Path, str], str] = Recent()

# A month's rows by workflow, in row groups of COPY_ROW_GROUP: DuckDB reads a file's row groups
# in parallel (one of 60,000 rows kept a core idle), and a query on one workflow reads the row
# groups that hold it (the scatter over a year: 0.21 -> 0.09 s).
COPY = """
select *
from memory.main.{table}
where list_contains(?::date[], date)
order by workflow_id, date, event_id
"""
COPY_ROW_GROUP = 8192
#: Per sample table, the rollup its month copies are kept as.
COPIES = {
    t.name: rollup.Rollup(f"{t.name}_months", (t.name,), f"{COPY}{COPY_ROW_GROUP}")
    for t in TABLES.values()
    if t.sample_of
}
#: A sample table named in a query's SQL as a word.
_NAMED = re.compile(r"\b(" + "|".join(map(re.escape, COPIES)) + r")\b")


def shadow(con: duckdb.DuckDBPyConnection, lake: Path, sql: str) -> list[str]:
    """Give `con` (a cursor of the lake's views) a temporary view over the month copies of each
    sample table `sql` names, copying the months that lack a current copy first where the lake
    can be written; the tables shadowed. A table without any copy keeps the lake's view."""
    shadowed = []
    for table in sorted(set(_NAMED.findall(sql))):
        key = (lake, table)
        reused = _views.get(key, REUSE_S)
        # Defining the view opens one of its files: day files listed before a compaction or a
        # retention fail there, and are listed again once.
        if reused is not None and (not reused or day_views.define(con, table, reused)):
            view = reused
        else:
            view = _views.put(key, _view(con, lake, table), REUSE_S)
            if view and not day_views.define(con, table, view):
                forget(con, lake, [table])
                continue
        if view:
            shadowed.append(table)
    return shadowed


def forget(con: duckdb.DuckDBPyConnection, lake: Path, tables: list[str]) -> None:
    """Drop `con`'s views of `tables` over the copies, and their SQL (a listed file went away)."""
    for table in tables:
        con.execute(f"drop view if exists temp.{table}")
    _views.forget(lambda key: key[0] == lake and key[1] in tables)


def _view(con: duckdb.DuckDBPyConnection, lake: Path, table: str) -> str:
    """The SQL of the rows of `table` over its current copies, copying the months that lack one
    where the lake can be written; '' when no month has a copy."""
    found = rollup.state(lake, COPIES[table], None, None, datetime.now(UTC).date())
    current, uncopied = dict(found.current), list(found.live)
    if found.stale:
        stored = _copy(con, lake, table, found.stale) if rollup.writable(lake) else {}
        current |= stored
        uncopied += [d for b in found.stale if b.month not in stored for d in b.days]
    return view_sql(lake, table, current.values(), uncopied) if current else ""


def view_sql(lake: Path, table: str, files: Iterable[Path], days: Sequence[date]) -> str:
    """The rows of `table`: those of the copies `files`, and of the day files of `days` (listed
    now: the lake's view would list every day folder of the table, about 10 ms a year)."""
    paths = ", ".join(_literal(str(f)) for f in sorted(files))
    sql = f"select * from read_parquet([{paths}], union_by_name = true, hive_partitioning = false)"
    if days:
        sql += f"\nunion all by name\n{day_views.days_sql(lake, table, sorted(days))}"
    return sql


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _copy(
    con: duckdb.DuckDBPyConnection, lake: Path, table: str, blocks: list[rollup.Block]
) -> dict[str, Path]:
    """Copy each block's days of `table` into its month file; the files stored, by month."""
    stored = {}
    for block in blocks:
        try:
            rows = con.sql(COPY.format(table=table), params=[list(block.days)]).to_arrow_table()
        except duckdb.Error as e:  # a file swapped away meanwhile: read the days instead
            log.warning("month copy of %s %s not made: %s", table, block.month, e)
            continue
        if (path := rollup.store(lake, COPIES[table], block, rows, COPY_ROW_GROUP)) is not None:
            stored[block.month] = path
    return stored
