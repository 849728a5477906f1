"""Overview queries: the farm's totals, volume per day and the best and worst workflows.

Counting rules shared by `workflows` and `timeseries`: a job is a completed attempt (a row of
`jobs`), a failure a row of `job_failures`. GPU hours count every attempt's GPU time, failed ones
included (the farm spent it); per-job measures (frames, time per frame, VRAM, quality scores)
come from completed jobs only. Knows nothing of Streamlit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from queries.base import Filters, frame

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

MS_PER_HOUR = 3.6e6

ATTEMPTS = """
select date, occurred_at, workflow_id, workflow_name, true as completed,
    total_gpu_time_ms as gpu_time_ms, frame_count, time_per_frame_ms, total_wall_time_ms,
    vram_peak_mb, likeness, face_confidence, motion_quality, boundary_ssim
from jobs
where {jobs}
union all
select date, occurred_at, workflow_id, workflow_name, false as completed,
    total_gpu_time_ms as gpu_time_ms, null, null, null,
    null, null, null, null, null
from job_failures
where {failures}
"""


def attempts(filters: Filters) -> tuple[str, list[Any]]:
    """SQL of one row per completed or failed attempt in `filters`, and its parameters.

    Columns: date, occurred_at, workflow_id, workflow_name, completed (bool), gpu_time_ms, and
    the per-job measures, null for a failure (see the module docstring). DuckDB reads only the
    columns a query uses, through the union.
    """
    jobs, jobs_params = filters.where("jobs")
    failures, failure_params = filters.where("job_failures")
    return ATTEMPTS.format(jobs=jobs, failures=failures), [*jobs_params, *failure_params]


OVERVIEW_TOTALS = """
with attempts as ({attempts})
select
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours,
    count(*) filter (where completed) as jobs,
    count(*) filter (where not completed) as failures,
    cast(coalesce(sum(frame_count), 0) as bigint) as frames,
    avg(time_per_frame_ms) as avg_time_per_frame_ms,
    quantile_cont(time_per_frame_ms, 0.95) as p95_time_per_frame_ms,
    max(vram_peak_mb) as peak_vram_mb,
    count(*) filter (where completed) / nullif(count(*), 0) as success_rate
from attempts
"""


def overview_totals(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row: GPU hours (failed attempts' included), jobs, failures, frames, average and p95
    time per frame, the highest peak VRAM of a job, and success rate = jobs / (jobs + failures).

    With nothing in range: zero counts and GPU hours, null averages and success rate.
    """
    sql, params = attempts(filters)
    return frame(lake, OVERVIEW_TOTALS.format(attempts=sql, ms_per_hour=MS_PER_HOUR), params)


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
    return frame(lake, sql, [*jobs_params, *failure_params])


DAILY_VOLUME = """
with attempts as ({attempts})
select
    date,
    count(*) filter (where completed) as jobs,
    cast(coalesce(sum(frame_count), 0) as bigint) as frames,
    count(*) filter (where not completed) as failures,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
from attempts
group by date
order by date
"""


def daily_volume(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per UTC day with any job or failure: jobs, frames, failures, GPU hours (failed
    attempts' included). Days without either have no row."""
    sql, params = attempts(filters)
    return frame(lake, DAILY_VOLUME.format(attempts=sql, ms_per_hour=MS_PER_HOUR), params)


# The value of each ranking metric, per workflow, over `attempts`.
RANK_VALUES: dict[str, str] = {
    "time_per_frame_ms": "avg(time_per_frame_ms)",
    "p95_time_per_frame_ms": "quantile_cont(time_per_frame_ms, 0.95)",
    "gpu_hours": f"coalesce(sum(gpu_time_ms), 0) / {MS_PER_HOUR}",
    "jobs": "count(*) filter (where completed)",
    "failure_rate": "count(*) filter (where not completed) / count(*)",
    "likeness": "avg(likeness)",
    "vram_peak_mb": "avg(vram_peak_mb)",
}

RANKED_WORKFLOWS = """
with attempts as ({attempts}),
per_workflow as (
    select workflow_id, cast({value} as double) as value,
        count(*) filter (where completed) as jobs
    from attempts
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
    if metric not in RANK_VALUES:
        raise ValueError(f"metric: must be one of {', '.join(METRICS)}, got {metric!r}")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    best, worst = ("asc", "desc") if metric in LOWER_IS_BETTER else ("desc", "asc")
    sql, params = attempts(filters)
    query = RANKED_WORKFLOWS.format(attempts=sql, value=RANK_VALUES[metric], best=best, worst=worst)
    return frame(lake, query, [*params, n, n])
