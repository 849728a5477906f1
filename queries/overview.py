"""Overview queries: the farm's totals, volume per day and the best and worst workflows.

Counting rules shared by `workflows` and `timeseries`: a job is a completed attempt (a row of
`jobs`), a failure a row of `job_failures`. GPU hours count every attempt's GPU time, failed ones
included (the farm spent it); per-job measures (frames, time per frame, VRAM, quality scores)
come from completed jobs only. Knows nothing of Streamlit.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from queries import base
from queries.base import Filters, frame, job_source
from queries.cells import MS_PER_HOUR, Cells, attempt_cells, attempts

#: Metric id -> label, for `ranked_workflows`.
METRICS: dict[str, str] = {
    "time_per_frame_ms": "Avg time per frame (ms)",
    "p95_time_per_frame_ms": "p95 time per frame (ms)",
    "gpu_hours": "GPU hours",
    "jobs": "Jobs",
    "failure_rate": "Failure rate",
    "likeness": "Avg likeness",
    "vram_peak_mb": "Avg peak VRAM (MB)",
}

#: Metrics where a smaller value ranks better (GPU hours are a cost); the others rank higher first.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"time_per_frame_ms", "p95_time_per_frame_ms", "gpu_hours", "failure_rate", "vram_peak_mb"}
)

OVERVIEW_TOTALS = """
with cells as ({cells})
select
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours,
    cast(coalesce(sum(attempts) filter (where completed), 0) as bigint) as jobs,
    cast(coalesce(sum(attempts) filter (where not completed), 0) as bigint) as failures,
    cast(coalesce(sum(frames), 0) as bigint) as frames,
    sum(tpf_sum) / nullif(sum(tpf_n), 0) as avg_time_per_frame_ms,
    max(vram_max) as peak_vram_mb,
    sum(attempts) filter (where completed) / nullif(sum(attempts), 0) as success_rate
from cells
"""
# The p95 of the time per frame over `{source}`: the jobs, or the job sample over a large range.
P95 = """
select quantile_cont(time_per_frame_ms, 0.95) as p95, count(time_per_frame_ms) as n
from {source}
where {where}
"""


def overview_totals(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row: GPU hours (failed attempts' included), jobs, failures, frames, average and p95
    time per frame, the highest peak VRAM of a job, success rate = jobs / (jobs + failures),
    and percentile_sample_rate.

    With nothing in range: zero counts and GPU hours, null averages and success rate. The sums
    come from the attempt cells (`queries.cells`); the p95 is exact (percentile_sample_rate 1)
    unless the range is large enough for the job sample to hold base.MIN_GROUP_SAMPLE of its
    values (then 16, `queries.base.job_source`).
    """
    cells = attempt_cells(lake, filters)
    sql = OVERVIEW_TOTALS.format(cells=cells.sql, ms_per_hour=MS_PER_HOUR)
    totals = frame(lake, sql, cells.params, cells.tables, cells.within)
    p95, rate = _p95(lake, filters, totals.item(0, "jobs"))
    return totals.select(
        "gpu_hours",
        "jobs",
        "failures",
        "frames",
        "avg_time_per_frame_ms",
        pl.lit(p95, pl.Float64).alias("p95_time_per_frame_ms"),
        "peak_vram_mb",
        "success_rate",
        pl.lit(rate, pl.Int64).alias("percentile_sample_rate"),
    )


def _p95(lake: Path, filters: Filters, jobs: int) -> tuple[float | None, int]:
    """The p95 time per frame within `filters` (`jobs` completed jobs) and the sample rate it
    was read at."""
    source, rate = job_source(lake, filters, jobs)
    if rate > 1:
        where, params = filters.where(source)
        found = frame(lake, P95.format(source=source, where=where), params, within=filters)
        if found.item(0, "n") >= base.MIN_GROUP_SAMPLE:
            return found.item(0, "p95"), rate
    where, params = filters.where("jobs")
    p95 = frame(lake, P95.format(source="jobs", where=where), params, within=filters)
    return p95.item(0, "p95"), 1


HAS_ATTEMPTS = """
select exists (select 1 from jobs where {jobs}) or exists (select 1 from job_failures where {failures})
    as found
"""


def has_attempts(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row, `found`: whether any job completed or failed within `filters`.

    Every page asks this before its queries (its empty state); DuckDB stops at the first row,
    where `overview_totals` would read the whole range.
    """
    jobs, jobs_params = filters.where("jobs")
    failures, failure_params = filters.where("job_failures")
    sql = HAS_ATTEMPTS.format(jobs=jobs, failures=failures)
    return frame(lake, sql, [*jobs_params, *failure_params], within=filters)


DAILY_VOLUME = """
with cells as ({cells})
select
    date,
    cast(coalesce(sum(attempts) filter (where completed), 0) as bigint) as jobs,
    cast(coalesce(sum(frames), 0) as bigint) as frames,
    cast(coalesce(sum(attempts) filter (where not completed), 0) as bigint) as failures,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
from cells
group by date
order by date
"""


def daily_volume(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per UTC day with any job or failure: jobs, frames, failures, GPU hours (failed
    attempts' included). Days without either have no row. From the attempt cells."""
    cells = attempt_cells(lake, filters)
    sql = DAILY_VOLUME.format(cells=cells.sql, ms_per_hour=MS_PER_HOUR)
    return frame(lake, sql, cells.params, cells.tables, cells.within)


# The value of each ranking metric per workflow, over the attempt cells (`queries.cells`); the
# p95, which no sum gives, over the attempts themselves (RANK_P95).
RANK_VALUES: dict[str, str] = {
    "time_per_frame_ms": "sum(tpf_sum) / nullif(sum(tpf_n), 0)",
    "gpu_hours": f"coalesce(sum(gpu_time_ms), 0) / {MS_PER_HOUR}",
    "jobs": "coalesce(sum(attempts) filter (where completed), 0)",
    "failure_rate": "coalesce(sum(attempts) filter (where not completed), 0) / sum(attempts)",
    "likeness": "sum(likeness_sum) / nullif(sum(likeness_n), 0)",
    "vram_peak_mb": "sum(vram_sum) / nullif(sum(vram_n), 0)",
}
RANK_JOBS = "cast(coalesce(sum(attempts) filter (where completed), 0) as bigint)"
RANK_P95 = "quantile_cont(time_per_frame_ms, 0.95)"
RANK_P95_JOBS = "count(*) filter (where completed)"

RANKED_WORKFLOWS = """
with rows as ({rows}),
per_workflow as (
    select workflow_id, cast({value} as double) as value, {jobs} as jobs
    from rows
    group by workflow_id
),
ranked as (
    select workflow_id, value, jobs,
        row_number() over (order by value {best}, workflow_id) as best_rank,
        row_number() over (order by value {worst}, workflow_id) as worst_rank
    from per_workflow
    where value is not null
)
select 'top' as rank_group, best_rank as rank, workflow_id, value, jobs
from ranked
where best_rank <= ?
union all
select 'bottom' as rank_group, worst_rank as rank, workflow_id, value, jobs
from ranked
where worst_rank <= ?
order by rank_group = 'bottom', rank
"""


def ranked_workflows(lake: Path, filters: Filters, metric: str, n: int = 5) -> pl.DataFrame:
    """One row per place in the ranking: the `n` best workflows by `metric` (rank_group 'top',
    rank 1 = best) then the `n` worst ('bottom', rank 1 = worst), with the value and jobs.

    Equal values rank by workflow_id in both groups. A workflow without a value (no job with a
    likeness, say) is not ranked; with fewer than 2n workflows one can be in both groups.
    """
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {', '.join(METRICS)}, got {metric!r}")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    best, worst = ("asc", "desc") if metric in LOWER_IS_BETTER else ("desc", "asc")
    if metric == "p95_time_per_frame_ms":
        sql, params = attempts(filters)
        cells = Cells(sql, params, {}, filters)
        value, jobs = RANK_P95, RANK_P95_JOBS
    else:
        cells = attempt_cells(lake, filters)
        value, jobs = RANK_VALUES[metric], RANK_JOBS
    query = RANKED_WORKFLOWS.format(rows=cells.sql, value=value, jobs=jobs, best=best, worst=worst)
    return frame(lake, query, [*cells.params, n, n], cells.tables, cells.within)
