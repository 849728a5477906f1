"""Workflow queries: per-workflow statistics, distributions, where GPU time goes, stage timings.

Counts jobs, failures and GPU hours by the rules of `queries.overview` (failed attempts' GPU time
is in GPU hours; per-job measures come from completed jobs). Knows nothing of Streamlit.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lake.recent import Recent
from queries import base
from queries.base import (
    Filters,
    column,
    day_source,
    frame,
    group_quantiles,
    job_source,
    sample_source,
)
from queries.cells import DIMENSIONS as CELL_DIMENSIONS
from queries.cells import MS_PER_HOUR, attempt_cells, stage_cells

WORKFLOW_SUMMARY = """
with cells as ({cells})
select
    workflow_id,
    arg_max(workflow_name, named_at) filter (where workflow_name is not null) as workflow_name,
    cast(coalesce(sum(attempts) filter (where completed), 0) as bigint) as jobs,
    cast(coalesce(sum(attempts) filter (where not completed), 0) as bigint) as failures,
    coalesce(sum(attempts) filter (where not completed), 0) / sum(attempts) as failure_rate,
    sum(tpf_sum) / nullif(sum(tpf_n), 0) as avg_time_per_frame_ms,
    min(tpf_min) as min_time_per_frame_ms,
    max(tpf_max) as max_time_per_frame_ms,
    sum(gpu_time_ms) filter (where completed)
        / nullif(sum(gpu_time_n) filter (where completed), 0) as avg_gpu_time_ms,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as total_gpu_hours,
    sum(wall_sum) / nullif(sum(wall_n), 0) as avg_wall_time_ms,
    sum(vram_sum) / nullif(sum(vram_n), 0) as avg_vram_peak_mb,
    max(vram_max) as max_vram_peak_mb,
    sum(likeness_sum) / nullif(sum(likeness_n), 0) as avg_likeness,
    sum(face_confidence_sum) / nullif(sum(face_confidence_n), 0) as avg_face_confidence,
    sum(motion_quality_sum) / nullif(sum(motion_quality_n), 0) as avg_motion_quality,
    sum(boundary_ssim_sum) / nullif(sum(boundary_ssim_n), 0) as avg_boundary_ssim
from cells
group by workflow_id
order by workflow_id
"""
WORKFLOW_SUMMARY_COLUMNS = [
    "workflow_id",
    "workflow_name",
    "jobs",
    "failures",
    "failure_rate",
    "avg_time_per_frame_ms",
    "min_time_per_frame_ms",
    "max_time_per_frame_ms",
    "p50_time_per_frame_ms",
    "p95_time_per_frame_ms",
    "p99_time_per_frame_ms",
    "avg_gpu_time_ms",
    "total_gpu_hours",
    "avg_wall_time_ms",
    "avg_vram_peak_mb",
    "max_vram_peak_mb",
    "avg_likeness",
    "avg_face_confidence",
    "avg_motion_quality",
    "avg_boundary_ssim",
    "percentile_sample_rate",
]
PERCENTILES = ["p50_time_per_frame_ms", "p95_time_per_frame_ms", "p99_time_per_frame_ms"]


def workflow_summary(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per workflow with a completed or failed attempt in range, by workflow_id.

    The name is the latest one sent. failure_rate = failures / (jobs + failures); GPU hours
    include failed attempts; the time, VRAM and score statistics are over completed jobs (null
    for a workflow that only failed), nulls left out. All but the percentiles are added up from
    the attempt cells (`queries.cells`).

    percentile_sample_rate: 1 where p50/p95/p99 are exact; over a large range a workflow the job
    sample holds enough of has them estimated on it (`queries.base.group_quantiles`), and it is
    16. Every other column always counts every attempt.
    """
    cells = attempt_cells(lake, filters)
    sql = WORKFLOW_SUMMARY.format(cells=cells.sql, ms_per_hour=MS_PER_HOUR)
    rows = frame(lake, sql, cells.params, cells.tables, cells.within)
    source, _ = job_source(lake, filters, int(rows.get_column("jobs").sum()))
    with_jobs = rows.filter(pl.col("jobs") > 0).get_column("workflow_id").to_list()
    found = group_quantiles(
        lake,
        filters,
        "jobs",
        source,
        "workflow_id",
        "time_per_frame_ms",
        (0.5, 0.95, 0.99),
        with_jobs,
    )
    placeholders = [pl.lit(None, pl.Float64).alias(c) for c in PERCENTILES]
    rows = rows.with_columns(*placeholders, percentile_sample_rate=pl.lit(1, pl.Int64))
    return _with_quantiles(rows, found, "workflow_id", PERCENTILES).select(WORKFLOW_SUMMARY_COLUMNS)


def _with_quantiles(
    rows: pl.DataFrame, found: pl.DataFrame, key: str, columns: list[str]
) -> pl.DataFrame:
    """`rows` with `columns` (one per quantile, in order) and percentile_sample_rate taken from
    `found`, the `group_quantiles` of the groups in column `key`."""
    picked = rows.join(
        found.rename({"grp": key}), on=key, how="left", maintain_order="left"
    ).with_columns(
        *(pl.col("quantiles").list.get(i).alias(name) for i, name in enumerate(columns)),
        percentile_sample_rate=pl.col("rate").fill_null(1),
    )
    return picked.select(rows.columns)


WORKFLOW_JOBS = """
with cells as ({cells})
select workflow_id,
    cast(coalesce(sum(attempts) filter (where completed), 0) as bigint) as jobs,
    cast(coalesce(sum(attempts) filter (where not completed), 0) as bigint) as failures
from cells
group by workflow_id
order by jobs desc, failures desc, workflow_id
"""


def workflow_jobs(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per workflow with a completed or failed attempt in range: workflow_id, jobs,
    failures; busiest first (most jobs, then most failures, then by id). From the attempt
    cells, for pickers that need no statistics."""
    cells = attempt_cells(lake, filters)
    sql = WORKFLOW_JOBS.format(cells=cells.sql)
    return frame(lake, sql, cells.params, cells.tables, cells.within)


HISTOGRAM_METRICS = ("time_per_frame_ms", "likeness")

HISTOGRAM = """
with measured as materialized (
{measured}
),
bounds as (
    select min(x) as lo, max(x) as hi
    from measured
),
binned as (
    select workflow_id, rate,
        case when hi > lo then least(floor((x - lo) * ? / (hi - lo)), ? - 1) else 0 end as bin,
        lo, hi
    from measured, bounds
)
select workflow_id,
    lo + bin * (hi - lo) / ? as bin_start,
    case when bin = ? - 1 then hi else lo + (bin + 1) * (hi - lo) / ? end as bin_end,
    count(*) as jobs,
    cast(rate as bigint) as sample_rate
from binned
group by workflow_id, rate, bin, lo, hi
order by workflow_id, bin_start
"""
# The values binned: every job's, or over a large range those of the job sample for the
# workflows it holds enough of (bound as a list) and every job's of the others.
MEASURED = """    select workflow_id, {metric} as x, 1 as rate
    from jobs
    where {where} and {metric} is not null{others}"""
MEASURED_SAMPLE = """    select workflow_id, {metric} as x, {rate} as rate
    from {source}
    where {where} and {metric} is not null and list_contains(?::varchar[], workflow_id)"""
# Per workflow, the values of each histogram metric the sample holds (one scan for both: a page
# draws the two histograms of the same range).
SAMPLED_VALUES = """
select workflow_id, {counts}
from {source}
where {where}
group by workflow_id
"""
_held: Recent[tuple[Path, Filters, str], pl.DataFrame] = Recent()


def _sampled_values(lake: Path, filters: Filters, source: str) -> pl.DataFrame:
    """SAMPLED_VALUES of `source` within `filters`, kept for a second (`base.ROWS_REUSE_S`)."""
    key = (lake, filters, source)
    if (held := _held.get(key, base.ROWS_REUSE_S)) is not None:
        return held
    counts = ", ".join(f'count({column("jobs", m)}) as "{m}"' for m in HISTOGRAM_METRICS)
    where, params = filters.where(source)
    sql = SAMPLED_VALUES.format(counts=counts, source=source, where=where)
    return _held.put(key, frame(lake, sql, params, within=filters), base.ROWS_REUSE_S)


def histogram(lake: Path, filters: Filters, metric: str, bins: int = 30) -> pl.DataFrame:
    """One row per workflow and non-empty bin: the completed jobs whose `metric` falls in it.

    All workflows share `bins` equal bins from the smallest to the largest value in range; a
    bin holds its start, the last bin its end too. When every value is the same there is one
    bin, from that value to itself. A page showing a few workflows passes them as the filters'
    workflows: over a large range that spares reading every job.

    sample_rate: 1 where every job counts; over a large range a workflow the job sample holds
    MIN_GROUP_SAMPLE values of or more is counted on it (`queries.base.job_source`), and it is
    16: a counted job stands for 16.
    """
    if metric not in HISTOGRAM_METRICS:
        raise ValueError(f"metric: must be one of {', '.join(HISTOGRAM_METRICS)}, got {metric!r}")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: must be an integer >= 1, got {bins!r}")
    value = column("jobs", metric)
    where, params = filters.where("jobs")
    source, rate = day_source(lake, filters, "jobs")
    parts, measured_params = [MEASURED.format(metric=value, where=where, others="")], list(params)
    if rate > 1:
        source_where, source_params = filters.where(source)
        held = _sampled_values(lake, filters, source)
        big = held.filter(pl.col(metric) >= base.MIN_GROUP_SAMPLE)["workflow_id"].to_list()
        # The jobs are read for the other workflows only when there may be any: with a list of
        # workflows (the page's shown ones) that the sample holds enough of, not at all.
        others = not filters.workflows or not set(filters.workflows) <= set(big)
        if big:
            parts = [
                MEASURED_SAMPLE.format(metric=value, rate=rate, source=source, where=source_where)
            ]
            measured_params = [*source_params, big]
            if others:
                others_only = " and not list_contains(?::varchar[], workflow_id)"
                parts.append(MEASURED.format(metric=value, where=where, others=others_only))
                measured_params += [*params, big]
    sql = HISTOGRAM.format(measured="\n    union all\n".join(parts))
    return frame(lake, sql, [*measured_params, *[bins] * 5], within=filters)


GPU_TIME_DIMENSIONS = ("project_id", "character_id", "scene_type", "resolution_tier")

# Project, scene type and tier are dimensions of the attempt cells (`queries.cells`): added up
# from them. The characters, too many for a cell, are grouped from the attempts (one column).
GPU_TIME_BY = """
with cells as ({cells}),
attempts as (
    select character_id, true as completed, total_gpu_time_ms as gpu_time_ms
    from jobs
    where {jobs}
    union all
    select character_id, false as completed, total_gpu_time_ms as gpu_time_ms
    from job_failures
    where {failures}
),
per_value as (
    {from_cells}
    union all
    select 'character_id' as dimension, character_id as value,
        count(*) filter (where completed) as jobs,
        coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
    from attempts
    group by character_id
)
select dimension, value, jobs, gpu_hours,
    gpu_hours / nullif(sum(gpu_hours) over (partition by dimension), 0) as share
from per_value
order by list_position(?::varchar[], dimension), gpu_hours desc, value nulls last
"""
GPU_TIME_FROM_CELLS = """
    select '{dimension}' as dimension, {dimension} as value,
        cast(coalesce(sum(attempts) filter (where completed), 0) as bigint) as jobs,
        coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
    from cells
    group by {dimension}
"""


def gpu_time_by_dimensions(lake: Path, filters: Filters) -> pl.DataFrame:
    """`gpu_time_by` of every dimension of GPU_TIME_DIMENSIONS: dimension, then its rows in order
    (dimensions in GPU_TIME_DIMENSIONS order)."""
    found = attempt_cells(lake, filters)
    from_cells = "\n    union all\n".join(
        GPU_TIME_FROM_CELLS.format(dimension=d, ms_per_hour=MS_PER_HOUR)
        for d in GPU_TIME_DIMENSIONS
        if d in CELL_DIMENSIONS
    )
    jobs, jobs_params = filters.where("jobs")
    failures, failure_params = filters.where("job_failures")
    sql = GPU_TIME_BY.format(
        cells=found.sql,
        from_cells=from_cells,
        jobs=jobs,
        failures=failures,
        ms_per_hour=MS_PER_HOUR,
    )
    params = [*found.params, *jobs_params, *failure_params, list(GPU_TIME_DIMENSIONS)]
    return frame(lake, sql, params, found.tables, filters)


def gpu_time_by(lake: Path, filters: Filters, dimension: str) -> pl.DataFrame:
    """One row per value of `dimension` (null for attempts that did not send it): jobs, GPU
    hours (failed attempts' included) and their share of all GPU hours in range (null when
    there are none), most GPU hours first, ties by value."""
    if dimension not in GPU_TIME_DIMENSIONS:
        raise ValueError(
            f"dimension: must be one of {', '.join(GPU_TIME_DIMENSIONS)}, got {dimension!r}"
        )
    every = gpu_time_by_dimensions(lake, filters)
    return every.filter(pl.col("dimension") == dimension).drop("dimension")


# Filters `job_stages` cannot apply itself: it has no such columns.
_ATTEMPT_ONLY_FILTERS = ("projects", "scene_types", "resolution_tiers")

# One row per stage name from `per_stage` (stage_name, stages, total_ms, avg_ms, quantiles),
# the stages themselves (STAGE_FROM_ROWS) or their cells (STAGE_FROM_CELLS).
STAGE_BREAKDOWN = """
with per_stage as ({per_stage})
select stage_name, stages, total_ms, total_ms / nullif(sum(total_ms) over (), 0) as share,
    avg_ms, quantiles[1] as p50_ms, quantiles[2] as p95_ms,
    cast(1 as bigint) as percentile_sample_rate
from per_stage
order by total_ms desc, stage_name
"""
STAGE_FROM_ROWS = """
    select stage_name,
        count(*) as stages,
        sum(duration_ms) as total_ms,
        avg(duration_ms) as avg_ms,
        quantile_cont(duration_ms, [0.5, 0.95]) as quantiles
    from job_stages
    where {stages}
    group by stage_name
"""
# The same from the stage cells (`queries.cells.stage_cells`), percentiles left null.
STAGE_FROM_CELLS = """
    select stage_name,
        cast(sum(stages) as bigint) as stages,
        sum(total_ms) as total_ms,
        sum(total_ms) / sum(duration_n) as avg_ms,
        cast(null as double[]) as quantiles
    from ({cells})
    group by stage_name
"""
# Keeps the stages of the attempts that pass the filters job_stages lacks.
STAGE_ATTEMPTS = """
 and event_id in (
    select event_id from jobs where {jobs}
    union all
    select event_id from job_failures where {failures}
)"""


def stage_breakdown(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per stage name, over the stages of completed and failed attempts in range: how
    many ran, their total time and its share of all stage time, average, p50 and p95, most
    total time first (ties by name).

    Project, scene type and resolution tier live on the attempts: with such a filter the
    stages are matched to the attempts by event_id (only then: the join costs a scan).

    percentile_sample_rate: 1 where p50 and p95 are exact; over a large range a stage the stage
    sample holds enough of has them estimated on it (`queries.base.group_quantiles`), and it is
    16. Counts, totals, shares and averages always count every stage: over such a range they are
    added up from the stage cells (`queries.cells.stage_cells`). With a filter the stages lack
    (project, scene type, tier) every percentile is exact.
    """
    stages, params = filters.where("job_stages")
    source = "job_stages"
    if any(getattr(filters, name) for name in _ATTEMPT_ONLY_FILTERS):
        jobs, jobs_params = filters.where("jobs")
        failures, failure_params = filters.where("job_failures")
        stages += STAGE_ATTEMPTS.format(jobs=jobs, failures=failures)
        params += [*jobs_params, *failure_params]
    else:
        source, _ = sample_source(lake, filters, "job_stages")
    if source == "job_stages":
        per_stage = STAGE_FROM_ROWS.format(stages=stages)
        return frame(lake, STAGE_BREAKDOWN.format(per_stage=per_stage), params, within=filters)
    # A range this large has its counts and totals added up from the stage cells.
    found_cells = stage_cells(lake, filters)
    per_stage = STAGE_FROM_CELLS.format(cells=found_cells.sql)
    exact = frame(
        lake,
        STAGE_BREAKDOWN.format(per_stage=per_stage),
        found_cells.params,
        found_cells.tables,
        found_cells.within,
    )
    names = exact.get_column("stage_name").to_list()
    found = group_quantiles(
        lake, filters, "job_stages", source, "stage_name", "duration_ms", (0.5, 0.95), names
    )
    return _with_quantiles(exact, found, "stage_name", ["p50_ms", "p95_ms"])


#: Filter field -> the column its choices come from (the sidebar's project, workflow, worker,
#: scene type and resolution tier lists).
CHOICE_COLUMNS = ("project_id", "workflow_id", "worker_id", "scene_type", "resolution_tier")

FILTER_CHOICES = """
with attempts as (
    select {columns} from jobs
    union all
    select {columns} from job_failures
)
select {columns}
from attempts
group by grouping sets ({sets})
"""


def filter_choices(lake: Path) -> pl.DataFrame:
    """One row per value of each filter dimension over the whole lake (completed and failed
    attempts): dimension (a column of CHOICE_COLUMNS), value; sorted, nulls left out.

    One scan of five dictionary-encoded columns, whatever the number of dimensions.
    """
    columns = ", ".join(column("jobs", c) for c in CHOICE_COLUMNS)
    sets = ", ".join(f"({column('job_failures', c)})" for c in CHOICE_COLUMNS)
    grouped = frame(lake, FILTER_CHOICES.format(columns=columns, sets=sets))
    parts = [
        grouped.select(pl.lit(c).alias("dimension"), pl.col(c).alias("value")).drop_nulls("value")
        for c in CHOICE_COLUMNS
    ]
    return pl.concat(parts).unique().sort(["dimension", "value"])
