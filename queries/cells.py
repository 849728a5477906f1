"""Attempt cells: completed and failed attempts added up per day, workflow, project, scene type,
resolution tier and outcome, with the counts, sums, minima and maxima the views are made of.

The Overview, the workflow summary, the pickers and the metric series read these cells instead
of the attempts: a day of tens of thousands of jobs is a few hundred cells, so a year of 10M jobs
is read in milliseconds, with the same figures (a sum of sums is the sum; an average is a sum
of sums over a sum of counts). A past day's cells are cached in the lake (`lake.rollup`) the
first time a query needs them, and recomputed when its files change; today's, and any day the
cache cannot be written for, are computed from its attempts by the same SQL within the query.
A worker filter is not a dimension of the cells: the cells are then computed from the attempts
the filter keeps. Percentiles are not sums: the views take them from the attempts or the job
sample as before.

Other kinds of cells (`Kind`) work the same way: the custom quality scores per day, attempt
dimensions and score (`score_cells`), the values of each parameter per day and workflow
(`level_cells`), the pipeline stages per day, workflow and stage
(`stage_cells`), the completed jobs per day, worker and GPU model (`worker_cells`) and the worker
samples per day and worker (`worker_sample_cells`). Nothing here knows a page or Streamlit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from lake import rollup
from lake.tables import STANDARD_SCORES, TABLES
from queries.base import FILTER_COLUMNS, Filters, frame

MS_PER_HOUR = 3.6e6

ATTEMPTS = """
select date, occurred_at, workflow_id, workflow_name, project_id, scene_type, resolution_tier,
    true as completed,
    total_gpu_time_ms as gpu_time_ms, frame_count, time_per_frame_ms, total_wall_time_ms,
    vram_peak_mb, likeness, face_confidence, motion_quality, boundary_ssim
from jobs
where {jobs}
union all
select date, occurred_at, workflow_id, workflow_name, project_id, scene_type, resolution_tier,
    false as completed,
    total_gpu_time_ms as gpu_time_ms, null, null, null,
    null, null, null, null, null
from job_failures
where {failures}
"""


def attempts(filters: Filters) -> tuple[str, list[Any]]:
    """SQL of one row per completed or failed attempt in `filters`, and its parameters.

    Columns: date, occurred_at, workflow_id, workflow_name, the other DIMENSIONS, completed
    (bool), gpu_time_ms, and the per-job measures, null for a failure (the counting rules of
    `queries.overview`). DuckDB reads only the columns a query uses, through the union.
    """
    jobs, jobs_params = filters.where("jobs")
    failures, failure_params = filters.where("job_failures")
    return ATTEMPTS.format(jobs=jobs, failures=failures), [*jobs_params, *failure_params]


#: The cells' dimensions besides date and outcome: every filter but the workers applies to them.
DIMENSIONS = ("workflow_id", "project_id", "scene_type", "resolution_tier")

# One row per cell. `named_at` is when the cell's latest workflow name was sent, so the latest
# name over many cells is arg_max(workflow_name, named_at). A per-job measure's sum goes with
# the count of its values (`_n`): its average is sum(x_sum) / sum(x_n), nulls left out.
CELLS = """
select date, {dimensions}, completed,
    count(*) as attempts,
    max(occurred_at) filter (where workflow_name is not null) as named_at,
    arg_max(workflow_name, occurred_at) filter (where workflow_name is not null)
        as workflow_name,
    cast(sum(gpu_time_ms) as bigint) as gpu_time_ms,
    count(gpu_time_ms) as gpu_time_n,
    cast(sum(frame_count) as bigint) as frames,
    sum(time_per_frame_ms) as tpf_sum,
    count(time_per_frame_ms) as tpf_n,
    min(time_per_frame_ms) as tpf_min,
    max(time_per_frame_ms) as tpf_max,
    cast(sum(total_wall_time_ms) as bigint) as wall_sum,
    count(total_wall_time_ms) as wall_n,
    cast(sum(vram_peak_mb) as bigint) as vram_sum,
    count(vram_peak_mb) as vram_n,
    max(vram_peak_mb) as vram_max,
    {scores}
from ({attempts})
where {days}
group by date, {dimensions}, completed
"""
CACHED = """
select *
from {table}
where {where}
"""


@dataclass(frozen=True)
class Cells:
    """The cells of a range as a relation: `sql` selects them with `params`, reading the cached
    days from `tables` (pass all three to `queries.base.frame`)."""

    sql: str
    params: list[Any]
    tables: dict[str, pa.Table]
    #: The range of the lake's rows the SQL reads, if any (`frame`'s `within`).
    within: Filters | None = None


@dataclass(frozen=True)
class Kind:
    """A kind of cells: its rollup, dimensions (the filters that apply to the cached cells, with
    the date), the SQL of its rows within some filters, and of the cells of those rows on the
    days a condition keeps. The Arrow table of the cached cells is registered as `table`."""

    rollup: rollup.Rollup
    dimensions: tuple[str, ...]
    rows: Callable[[Filters], tuple[str, list[Any]]]
    cells: Callable[[str, str], str]
    table: str

    def from_rows(self, filters: Filters) -> bool:
        """Whether `filters` restrict a column of the rows' tables (those of the rollup) that is
        not a dimension (a worker, for the attempt cells): the cells must then be computed from
        the rows it keeps."""
        columns = {c for t in self.rollup.tables for c in TABLES[t].schema.names}
        columns -= set(self.dimensions)
        return any(getattr(filters, f) and c in columns for f, c in FILTER_COLUMNS.items())


def _attempt_cells_sql(attempts_sql: str, days: str) -> str:
    scores = ",\n    ".join(f"sum({s}) as {s}_sum, count({s}) as {s}_n" for s in STANDARD_SCORES)
    return CELLS.format(
        dimensions=", ".join(DIMENSIONS), scores=scores, attempts=attempts_sql, days=days
    )


ROLLUP = rollup.Rollup(
    "attempt_cells", ("jobs", "job_failures"), _attempt_cells_sql(ATTEMPTS, "{days}")
)
ATTEMPT_CELLS = Kind(ROLLUP, DIMENSIONS, attempts, _attempt_cells_sql, "cached_cells")


def _table_kind(name: str, table: str, dimensions: tuple[str, ...], rows: str, cells: str) -> Kind:
    """The kind of cells `name` over one lake table: `rows` selects its rows ({where} gets the
    filters' condition on `table`), `cells` groups them ({rows}, {days})."""

    def select(filters: Filters) -> tuple[str, list[Any]]:
        where, params = filters.where(table)
        return rows.format(where=where), params

    return Kind(
        rollup.Rollup(name, (table,), cells.format(rows=rows, days="{days}")),
        dimensions,
        select,
        lambda sql, days: cells.format(rows=sql, days=days),
        f"cached_{name}",
    )


def attempt_cells(lake: Path, filters: Filters) -> Cells:
    """The attempt cells within `filters`. Columns: date, the DIMENSIONS, completed, attempts,
    named_at, workflow_name, then per measure its sum and count (or minimum and maximum) as in
    CELLS."""
    return cells(lake, filters, ATTEMPT_CELLS)


SCORE_ROWS = f"""
select date, {", ".join(DIMENSIONS)},
    unnest(map_keys(quality_scores)) as score, unnest(map_values(quality_scores)) as value
from jobs
where {{where}}
"""
# One row per day, attempt dimensions and custom score (the standard scores have columns of
# their own, summed in the attempt cells): the sum and count of its values.
SCORE_CELLS = f"""
select date, {", ".join(DIMENSIONS)}, score,
    sum(value) as value_sum,
    count(value) as value_n
from ({{rows}})
where {{days}} and score not in ({", ".join(f"'{s}'" for s in STANDARD_SCORES)})
group by date, {", ".join(DIMENSIONS)}, score
"""

SCORE_CELL_KIND = _table_kind("score_cells", "jobs", DIMENSIONS, SCORE_ROWS, SCORE_CELLS)


def score_cells(lake: Path, filters: Filters) -> Cells:
    """The custom score cells within `filters`: the completed jobs' scores other than the
    STANDARD_SCORES added up per day, DIMENSIONS and score name. Columns: date, the DIMENSIONS,
    score, value_sum, value_n."""
    return cells(lake, filters, SCORE_CELL_KIND)


#: Distinct values of a parameter a workflow may take in a day for them all to be counted in the
#: level cells; past it the day holds one row, `many`. `queries.correlations.MAX_LEVELS` is the
#: most a setting may take over a range, so a day past it rules the parameter out.
LEVELS_PER_DAY = 12
LEVEL_ROWS = """
select date, workflow_id, unnest(map_keys(params)) as name, unnest(map_values(params)) as value
from jobs
where {where}
"""
# One row per day, workflow, parameter and value: the completed jobs that sent it; a parameter
# with more than LEVELS_PER_DAY values that day has a single row instead (value null, many).
LEVEL_CELLS = f"""
with counted as (
    select date, workflow_id, name, value, count(*) as jobs,
        count(value) over (partition by date, workflow_id, name) > {LEVELS_PER_DAY} as many
    from ({{rows}})
    where {{days}}
    group by date, workflow_id, name, value
)
select date, workflow_id, name, case when not many then value end as value,
    cast(sum(jobs) as bigint) as jobs, many
from counted
group by date, workflow_id, name, many, case when not many then value end
"""

LEVEL_CELL_KIND = _table_kind("level_cells", "jobs", ("workflow_id",), LEVEL_ROWS, LEVEL_CELLS)


def level_cells(lake: Path, filters: Filters) -> Cells:
    """The parameter level cells within `filters` (a filter other than the workflows computes
    them from the jobs it keeps). Columns: date, workflow_id, name, value, jobs, many."""
    return cells(lake, filters, LEVEL_CELL_KIND)


def within(*found: Cells) -> Filters | None:
    """The range that bounds the lake rows of every one of `found` (`frame`'s `within` for SQL
    that reads them together)."""
    spans = [c.within for c in found if c.within is not None]
    starts = [s.start for s in spans if s.start is not None]
    ends = [s.end for s in spans if s.end is not None]
    if not spans:
        return None
    if len(starts) < len(spans) or len(ends) < len(spans):
        return Filters()  # an open range
    return Filters(start=min(starts), end=max(ends))


def cells(lake: Path, filters: Filters, kind: Kind) -> Cells:
    """The cells of `kind` within `filters`: the cached months', and the others' computed from
    their rows. A filter on a column that is not one of the kind's dimensions (a worker) has the
    cells computed from the rows it keeps; a filter on a column the rows lack does not apply."""
    if kind.from_rows(filters):
        sql, worker_params = kind.rows(filters)
        return Cells(kind.cells(sql, "true"), worker_params, {}, filters)
    found = rollup.state(lake, kind.rollup, filters.start, filters.end, datetime.now(UTC).date())
    current, uncached = dict(found.current), list(found.live)
    if found.stale:
        stored = _cache(lake, kind, found.stale) if rollup.writable(lake) else {}
        current |= stored
        uncached += [d for b in found.stale if b.month not in stored for d in b.days]
    uncached = sorted(
        d
        for d in uncached
        if (filters.start is None or d >= filters.start)
        and (filters.end is None or d <= filters.end)
    )
    parts: list[str] = []
    params: list[Any] = []
    tables = {}
    span = None
    if current:
        where, where_params = filters.where_columns(kind.dimensions)
        parts.append(CACHED.format(table=kind.table, where=where))
        params += where_params
        tables[kind.table] = rollup.load([current[m] for m in sorted(current)])
    if uncached or not parts:
        # Only the uncached days' files are read (their span, then the days themselves).
        span = replace(
            filters,
            start=min(uncached, default=filters.start),
            end=max(uncached, default=filters.end),
        )
        sql, span_params = kind.rows(span)
        parts.append(kind.cells(sql, "list_contains(?::date[], date)"))
        params += [*span_params, uncached]
    return Cells("\nunion all by name\n".join(f"({p})" for p in parts), params, tables, span)


def _cache(lake: Path, kind: Kind, blocks: list[rollup.Block]) -> dict[str, Path]:
    """Compute the cells of the blocks' days (one query) and store each block's; the files
    stored, by month."""
    days = sorted(d for b in blocks for d in b.days)
    span = Filters(start=days[0], end=days[-1])
    sql, params = kind.rows(span)
    computed = frame(
        lake, kind.cells(sql, "list_contains(?::date[], date)"), [*params, days], within=span
    )
    stored = {}
    for block in blocks:
        rows = computed.filter(pl.col("date").is_in(block.days)).to_arrow()
        if (path := rollup.store(lake, kind.rollup, block, rows)) is not None:
            stored[block.month] = path
    return stored


#: The stage cells' dimensions besides date: a project, scene type or resolution tier filter
#: does not apply to them (the stages lack those columns), nor does a worker's.
STAGE_DIMENSIONS = ("workflow_id", "stage_name")
STAGE_ROWS = """
select date, workflow_id, stage_name, duration_ms
from job_stages
where {where}
"""
# One row per day, workflow and stage name: how many stages ran and their total duration.
STAGE_CELLS = """
select date, workflow_id, stage_name,
    count(*) as stages,
    sum(duration_ms) as total_ms,
    count(duration_ms) as duration_n
from ({rows})
where {days}
group by date, workflow_id, stage_name
"""

STAGE_CELL_KIND = _table_kind(
    "stage_cells", "job_stages", STAGE_DIMENSIONS, STAGE_ROWS, STAGE_CELLS
)


def stage_cells(lake: Path, filters: Filters) -> Cells:
    """The stage cells within `filters` (no project, scene type or resolution tier filter: the
    stages lack them). Columns: date, workflow_id, stage_name, stages, total_ms, duration_n."""
    if filters.projects or filters.scene_types or filters.resolution_tiers:
        raise ValueError("stage cells: a project, scene type or tier filter does not apply")
    return cells(lake, filters, STAGE_CELL_KIND)


#: The worker cells' dimension besides date; a workflow, project, scene type or tier filter has
#: them computed from the jobs it keeps.
WORKER_DIMENSIONS = ("worker_id",)
WORKER_ROWS = """
select date, worker_id, gpu_model, occurred_at, frame_count, total_gpu_time_ms, vram_peak_mb,
    vram_total_mb
from jobs
where {where}
"""
# One row per day, worker and GPU model: its completed jobs added up. `last_at` is its latest job,
# so a worker's GPU model is arg_max(gpu_model, last_at) over its cells.
WORKER_CELLS = """
select date, worker_id, gpu_model,
    count(*) as jobs,
    max(occurred_at) as last_at,
    cast(sum(frame_count) as bigint) as frames,
    cast(sum(total_gpu_time_ms) as bigint) as gpu_time_ms,
    cast(sum(vram_peak_mb) as bigint) as vram_peak_sum,
    count(vram_peak_mb) as vram_peaks,
    max(vram_peak_mb) as max_vram_peak_mb,
    max(vram_total_mb) as vram_total_mb
from ({rows})
where {days}
group by date, worker_id, gpu_model
"""

WORKER_CELL_KIND = _table_kind("worker_cells", "jobs", WORKER_DIMENSIONS, WORKER_ROWS, WORKER_CELLS)


def worker_cells(lake: Path, filters: Filters) -> Cells:
    """The worker cells within `filters`. Columns: date, worker_id, gpu_model, jobs, last_at,
    frames, gpu_time_ms, vram_peak_sum, vram_peaks, max_vram_peak_mb, vram_total_mb."""
    return cells(lake, filters, WORKER_CELL_KIND)


SAMPLE_ROWS = """
select date, worker_id, state, interval_s, vram_total_mb
from worker_samples
where {where}
"""
# One row per day and worker: seconds generating, generating or idle (offline left out), and the
# largest GPU memory its samples reported.
SAMPLE_CELLS = """
select date, worker_id,
    sum(interval_s) filter (where state = 'generating') as generating_s,
    sum(interval_s) filter (where state in ('generating', 'idle')) as active_s,
    max(vram_total_mb) as vram_total_mb
from ({rows})
where {days}
group by date, worker_id
"""

SAMPLE_CELL_KIND = _table_kind(
    "worker_sample_cells", "worker_samples", WORKER_DIMENSIONS, SAMPLE_ROWS, SAMPLE_CELLS
)


def worker_sample_cells(lake: Path, filters: Filters) -> Cells:
    """The worker sample cells within `filters` (only a worker filter applies: the samples have
    no workflow, project, scene type or tier). Columns: date, worker_id, generating_s, active_s,
    vram_total_mb."""
    return cells(lake, filters, SAMPLE_CELL_KIND)


#: Every kind of cells, for what brings them all up to date (the benchmark).
KINDS = (
    ATTEMPT_CELLS,
    SCORE_CELL_KIND,
    LEVEL_CELL_KIND,
    STAGE_CELL_KIND,
    WORKER_CELL_KIND,
    SAMPLE_CELL_KIND,
)
