"""What every query module shares: the filters of a view, the one query runner, identifier quoting.

A query module builds SQL from module-level constants, binds values as parameters, and gets a
typed Polars frame back from `frame`. Nothing here knows a page or Streamlit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from lake import QueryError, day_views, sample_months, views
from lake.recent import Recent
from lake.sample import SAMPLE_RATE, SAMPLES
from lake.tables import TABLES

# DuckDB types of the result columns -> Polars types, so an empty result keeps its schema.
_POLARS_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "BIGINT": pl.Int64(),
    "UBIGINT": pl.UInt64(),
    "INTEGER": pl.Int32(),
    "HUGEINT": pl.Float64(),
    "DOUBLE": pl.Float64(),
    "FLOAT": pl.Float64(),
    "DECIMAL(38,0)": pl.Float64(),
    "BOOLEAN": pl.Boolean(),
    "DATE": pl.Date(),
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
    "BLOB": pl.Binary(),
    "VARCHAR[]": pl.List(pl.String()),
    "DOUBLE[]": pl.List(pl.Float64()),
}

#: Filter field -> the column it restricts; a table without that column ignores the filter.
FILTER_COLUMNS: dict[str, str] = {
    "projects": "project_id",
    "workflows": "workflow_id",
    "workers": "worker_id",
    "scene_types": "scene_type",
    "resolution_tiers": "resolution_tier",
}


@dataclass(frozen=True)
class Filters:
    """What a view is restricted to: UTC days `start`..`end` (both inclusive, None = open) and,
    per dimension, the values kept (empty = all)."""

    start: date | None = None
    end: date | None = None
    projects: tuple[str, ...] = field(default=())
    workflows: tuple[str, ...] = field(default=())
    workers: tuple[str, ...] = field(default=())
    scene_types: tuple[str, ...] = field(default=())
    resolution_tiers: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"from: {self.start} is after to: {self.end}")

    def where(self, table: str, alias: str = "") -> tuple[str, list[Any]]:
        """A SQL condition (`true` when nothing applies) and its parameters for `table`.

        The date range goes on the hive `date` column, so DuckDB skips other days' files.
        """
        return self.where_columns(TABLES[table].schema.names, alias)

    def where_columns(self, names: Iterable[str], alias: str = "") -> tuple[str, list[Any]]:
        """`where` for a relation with the columns `names` and a `date` (e.g. a rollup): a
        filter on a column it lacks does not apply."""
        columns = set(names)
        prefix = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        if self.start is not None:
            clauses.append(f"{prefix}date >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append(f"{prefix}date <= ?")
            params.append(self.end)
        for name, column in FILTER_COLUMNS.items():
            values = getattr(self, name)
            if values and column in columns:
                clauses.append(
                    f"{prefix}{quoted(column, columns)} in ({', '.join('?' * len(values))})"
                )
                params.extend(values)
        return (" and ".join(clauses) or "true"), params

    def days(self) -> int | None:
        """Days in the range, both ends included (None when an end is open)."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The same filters over the period of the same length just before this one."""
        length = self.days()
        if length is None or self.start is None:
            raise ValueError("previous period: needs both from and to")
        return replace(
            self, start=self.start - timedelta(days=length), end=self.start - timedelta(days=1)
        )


def quoted(name: str, allowed: Iterable[str]) -> str:
    """`name` as a quoted SQL identifier; ValueError unless it is on the `allowed` list."""
    if name not in set(allowed):
        raise ValueError(f"{name!r} is not a known lake table or column")
    return '"' + name.replace('"', '""') + '"'


def column(table: str, name: str) -> str:
    """A column of a lake table, quoted; ValueError for a column the table does not declare."""
    return quoted(name, TABLES[table].schema.names)


def _polars_type(duck_type: str) -> pl.DataType:
    if duck_type in _POLARS_TYPES:
        return _POLARS_TYPES[duck_type]
    if duck_type.startswith("DECIMAL"):
        return pl.Float64()
    if duck_type.startswith("MAP("):
        return pl.Object()
    raise QueryError(f"no Polars type for the DuckDB type {duck_type}")


def frame(
    lake: Path,
    sql: str,
    params: Sequence[Any] = (),
    tables: Mapping[str, pa.Table] | None = None,
    within: Filters | None = None,
) -> pl.DataFrame:
    """Run `sql` on the lake's shared read connection; the rows as a typed Polars frame.
    `tables` are Arrow tables the SQL reads by name (e.g. cached rollups, `queries.cells`).
    `within`: filters whose date range bounds every lake table the SQL reads, so that only
    those days' files are listed (`lake.day_views`); the SQL's own conditions still apply.

    Rows come through Arrow (a 2M-row result: 0.4 s, against 18 s as Python tuples), then each
    column takes the type of `_POLARS_TYPES` (HUGEINT and DECIMAL sums as floats, UTC times).
    """
    with closing(views.cursor(lake)) as con:
        shadowed = sample_months.shadow(con, lake, sql)
        for name, table in (tables or {}).items():
            con.register(name, table)
        narrowed = day_views.narrow(con, lake, sql, *_span(within))
        try:
            result = views.run(con, sql, params)
        except QueryError as e:
            if not (narrowed or shadowed) or not views.raced_file_swap(e):
                raise
            # A listed file went away (compaction, retention): again, on the lake's own views.
            day_views.forget(con, lake, narrowed)
            sample_months.forget(con, lake, shadowed)
            result = views.run(con, sql, params)
        try:
            schema = {name: _polars_type(str(t)) for name, t, *_ in result.description}
            with warnings.catch_warnings():
                # "Arrow output on a DB-API result makes an extra copy": cheap next to tuples.
                warnings.simplefilter("ignore", UserWarning)
                table = result.to_arrow_table()
        except duckdb.Error as e:
            raise QueryError(f"{e}") from e
    data = pl.from_arrow(table)
    assert isinstance(data, pl.DataFrame)
    casts = [
        pl.col(name).cast(dtype)
        for name, dtype in schema.items()
        if dtype != pl.Object() and data.schema[name] != dtype
    ]
    return data.with_columns(casts) if casts else data


def _span(within: Filters | None) -> tuple[date | None, date | None]:
    return (None, None) if within is None else (within.start, within.end)


#: Hash values a sample condition draws from (`hash(...) % SAMPLE_SCALE < kept share`).
SAMPLE_SCALE = 1_000_000


def sample_shares(counts: pl.DataFrame, group: str, size: int) -> tuple[str, list[Any]]:
    """The kept share of hash values per group, as a SQL expression over `group` and its
    parameters, so that a group with more than `size` rows keeps about `size` of them.

    `counts` has one row per group: its value, then its row count. The expression is compared
    with `hash(<row key>) % SAMPLE_SCALE`: a fixed pseudo-random sample, the same every run;
    smaller groups keep every row.
    """
    big = [(g, n) for g, n in counts.sort(counts.columns[0]).rows() if n > size]
    if not big:
        return str(SAMPLE_SCALE), []
    cases = " ".join("when ? then ?" for _ in big)
    params = [v for g, n in big for v in (g, SAMPLE_SCALE * size // n)]
    return f"case {group} {cases} else {SAMPLE_SCALE} end", params


#: From this many rows of a sampled table in a range on (jobs, job stages), what costs per row
#: reads the table's sample (lake/sample.py) instead: it then holds 12,500 rows or more.
SAMPLE_FROM_ROWS = 200_000
#: The sample is used only where it holds at least this share of its expected rows: a lake
#: written before the sample existed (and not backfilled by `perflake compact`) has none.
SAMPLE_COVERAGE = 0.9


def sample_source(
    lake: Path, filters: Filters, table: str, rows: int | None = None, holds_enough: bool = False
) -> tuple[str, int]:
    """The table to read `table`'s rows from, and how many rows one row read stands for:
    (its sample, SAMPLE_RATE) when the rows of `table` within `filters` (`rows`, counted here
    when not given) reach SAMPLE_FROM_ROWS, or the caller says the sample `holds_enough` (it
    keeps no more rows per group than the sample holds of each: reading every row would add
    nothing), and the sample covers the range; else (`table`, 1)."""
    sample = SAMPLES.get(table)
    if sample is None:
        return table, 1
    rows = _rows(lake, filters, table) if rows is None else rows
    if rows < SAMPLE_FROM_ROWS and not holds_enough:
        return table, 1
    if _rows(lake, filters, sample.name) * SAMPLE_RATE >= SAMPLE_COVERAGE * rows:
        return sample.name, SAMPLE_RATE
    return table, 1


#: Seconds a count of `_rows` is reused by the next queries (a page's, which ask the same
#: ranges which source to read, up to five times) before it is counted again.
ROWS_REUSE_S = 1.0
_counted: Recent[tuple[Path, Filters, str], int] = Recent()


def _rows(lake: Path, filters: Filters, table: str) -> int:
    """Rows of `table` within `filters` (from the files' footers where only days filter)."""
    key = (lake, filters, table)
    if (rows := _counted.get(key, ROWS_REUSE_S)) is not None:
        return rows
    where, params = filters.where(table)
    sql = f"select count(*) as n from {quoted(table, TABLES)} where {where}"
    return _counted.put(key, int(frame(lake, sql, params, within=filters).item()), ROWS_REUSE_S)


def day_source(lake: Path, filters: Filters, table: str) -> tuple[str, int]:
    """`sample_source` of `table` over the filters' days alone: both counts come from the
    files' footers (no scan), for a query whose per-group rule (MIN_GROUP_SAMPLE) keeps a small
    workflow exact whatever the range holds."""
    return sample_source(lake, Filters(start=filters.start, end=filters.end), table)


def job_source(
    lake: Path, filters: Filters, jobs: int | None = None, holds_enough: bool = False
) -> tuple[str, int]:
    """`sample_source` of the completed jobs: `jobs` is how many are within `filters`."""
    return sample_source(lake, filters, "jobs", jobs, holds_enough)


#: A group's percentiles come from the sample only where it holds this many of the group's
#: values (p99 of 2,000 values is within about 0.2 percentile points); a smaller group's are
#: exact, so a rare workflow or stage is never left without them.
MIN_GROUP_SAMPLE = 2_000

# Per group, the quantiles of a value over `{source}` and how many values they saw; `{only}`
# keeps the groups bound as a list.
GROUP_QUANTILES = """
select {group} as grp, quantile_cont({value}, ?::double[]) as quantiles, count({value}) as n
from {source}
where {where}{only}
group by {group}
"""


def group_quantiles(
    lake: Path,
    filters: Filters,
    table: str,
    source: str,
    group: str,
    value: str,
    qs: Sequence[float],
    groups: Sequence[str],
) -> pl.DataFrame:
    """Per group of `groups` (`grp`, rows of `table` within `filters` grouped by `group`): the
    `qs` quantiles of `value` (a list, null without values) and `rate`, 1 where they are exact.

    Where `source` is a sample (`sample_source`), a group it holds MIN_GROUP_SAMPLE or more
    values of takes them from it (rate SAMPLE_RATE); the others are read from `table`, exactly,
    and only they. `group` and `value` are columns of `table`.
    """
    group_col, value_col = column(table, group), column(table, value)
    quantiles, missing = list(qs), list(groups)
    parts = []
    if source != table:
        where, params = filters.where(source)
        sql = GROUP_QUANTILES.format(
            group=group_col, value=value_col, source=source, where=where, only=""
        )
        sampled = frame(lake, sql, [quantiles, *params], within=filters)
        sampled = sampled.filter(pl.col("n") >= MIN_GROUP_SAMPLE)
        parts.append(sampled.select("grp", "quantiles", rate=pl.lit(SAMPLE_RATE, pl.Int64)))
        missing = sorted(set(missing) - set(sampled.get_column("grp").to_list()))
    if missing:
        where, params = filters.where(table)
        only = f" and list_contains(?::varchar[], {group_col})"
        sql = GROUP_QUANTILES.format(
            group=group_col, value=value_col, source=table, where=where, only=only
        )
        exact = frame(lake, sql, [quantiles, *params, missing], within=filters)
        parts.append(exact.select("grp", "quantiles", rate=pl.lit(1, pl.Int64)))
    found = pl.concat(parts) if parts else None
    wanted = pl.DataFrame({"grp": list(groups)}, schema={"grp": pl.String()})
    if found is None or found.is_empty():
        return wanted.with_columns(
            quantiles=pl.lit(None, pl.List(pl.Float64)), rate=pl.lit(1, pl.Int64)
        )
    return wanted.join(found, on="grp", how="left").with_columns(pl.col("rate").fill_null(1))
