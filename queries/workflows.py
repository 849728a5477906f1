"""Workflow queries: per-workflow statistics, distributions, where GPU time goes, stage timings.

Counts jobs, failures and GPU hours by the rules of `queries.overview` (failed attempts' GPU time
is in GPU hours; per-job measures come from completed jobs). Knows nothing of Streamlit.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from queries.base import Filters, column, frame, job_source, sample_source
from queries.overview import MS_PER_HOUR, attempts

WORKFLOW_SUMMARY = """
with attempts as ({attempts})
select
    workflow_id,
    arg_max(workflow_name, occurred_at) filter (where workflow_name is not null)
        as workflow_name,
    count(*) filter (where completed) as jobs,
    count(*) filter (where not completed) as failures,
    count(*) filter (where not completed) / count(*) as failure_rate,
    avg(time_per_frame_ms) as avg_time_per_frame_ms,
    min(time_per_frame_ms) as min_time_per_frame_ms,
    max(time_per_frame_ms) as max_time_per_frame_ms,
    {quantiles} as tpf_quantiles,
    avg(gpu_time_ms) filter (where completed) as avg_gpu_time_ms,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as total_gpu_hours,
    avg(total_wall_time_ms) as avg_wall_time_ms,
    avg(vram_peak_mb) as avg_vram_peak_mb,
    max(vram_peak_mb) as max_vram_peak_mb,
    avg(likeness) as avg_likeness,
    avg(face_confidence) as avg_face_confidence,
    avg(motion_quality) as avg_motion_quality,
    avg(boundary_ssim) as avg_boundary_ssim
from attempts
group by workflow_id
"""
# One sort gives the three quantiles; the list is unpacked outside the aggregate.
WORKFLOW_SUMMARY_COLUMNS = """
select workflow_id, workflow_name, jobs, failures, failure_rate,
    avg_time_per_frame_ms, min_time_per_frame_ms, max_time_per_frame_ms,
    tpf_quantiles[1] as p50_time_per_frame_ms,
    tpf_quantiles[2] as p95_time_per_frame_ms,
    tpf_quantiles[3] as p99_time_per_frame_ms,
    avg_gpu_time_ms, total_gpu_hours, avg_wall_time_ms, avg_vram_peak_mb, max_vram_peak_mb,
    avg_likeness, avg_face_confidence, avg_motion_quality, avg_boundary_ssim,
    cast({rate} as bigint) as percentile_sample_rate
from ({summary})
order by workflow_id
"""


# Over a large range, the percentiles of time per frame from the job sample.
SAMPLED_QUANTILES = """
select workflow_id, quantile_cont(time_per_frame_ms, [0.5, 0.95, 0.99]) as tpf_quantiles
from {source}
where {where}
group by workflow_id
"""
TPF_QUANTILES = "quantile_cont(time_per_frame_ms, [0.5, 0.95, 0.99])"


def workflow_summary(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per workflow with a completed or failed attempt in range, by workflow_id.

    The name is the latest one sent. failure_rate = failures / (jobs + failures); GPU hours
    include failed attempts; the time, VRAM and score statistics are over completed jobs (null
    for a workflow that only failed), nulls left out.

    percentile_sample_rate: 1 where p50/p95/p99 are exact; over a large range they are
    estimated on the lake's job sample (`queries.base.job_source`) and it is 16. Every other
    column always counts every attempt.
    """
    sql, params = attempts(filters)
    where, jobs_params = filters.where("jobs")
    jobs = frame(lake, f"select count(*) as jobs from jobs where {where}", jobs_params).item()
    source, rate = job_source(lake, filters, jobs)
    quantiles = TPF_QUANTILES if rate == 1 else "cast(null as double[])"
    summary = WORKFLOW_SUMMARY.format(attempts=sql, ms_per_hour=MS_PER_HOUR, quantiles=quantiles)
    if rate > 1:
        source_where, source_params = filters.where(source)
        sampled = SAMPLED_QUANTILES.format(source=source, where=source_where)
        summary = (
            f"select s.* exclude (tpf_quantiles), q.tpf_quantiles from ({summary}) s "
            f"left join ({sampled}) q using (workflow_id)"
        )
        params = [*params, *source_params]
    query = WORKFLOW_SUMMARY_COLUMNS.format(summary=summary, rate=rate)
    return frame(lake, query, params)


WORKFLOW_JOBS = """
select workflow_id,
    count(*) filter (where completed) as jobs,
    count(*) filter (where not completed) as failures
from (
    select workflow_id, true as completed from jobs where {jobs}
    union all
    select workflow_id, false as completed from job_failures where {failures}
)
group by workflow_id
order by jobs desc, failures desc, workflow_id
"""


def workflow_jobs(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per workflow with a completed or failed attempt in range: workflow_id, jobs,
    failures; busiest first (most jobs, then most failures, then by id). Two one-column scans,
    for pickers that need no statistics."""
    jobs, jobs_params = filters.where("jobs")
    failures, failure_params = filters.where("job_failures")
    sql = WORKFLOW_JOBS.format(jobs=jobs, failures=failures)
    return frame(lake, sql, [*jobs_params, *failure_params])


HISTOGRAM_METRICS = ("time_per_frame_ms", "likeness")

HISTOGRAM = """
with measured as materialized (
    select workflow_id, {metric} as x
    from {source}
    where {where} and {metric} is not null
),
bounds as (
    select min(x) as lo, max(x) as hi
    from measured
),
binned as (
    select workflow_id,
        case when hi > lo then least(floor((x - lo) * ? / (hi - lo)), ? - 1) else 0 end as bin,
        lo, hi
    from measured, bounds
)
select workflow_id,
    lo + bin * (hi - lo) / ? as bin_start,
    case when bin = ? - 1 then hi else lo + (bin + 1) * (hi - lo) / ? end as bin_end,
    count(*) as jobs,
    cast({rate} as bigint) as sample_rate
from binned
group by workflow_id, bin, lo, hi
order by workflow_id, bin_start
"""


def histogram(lake: Path, filters: Filters, metric: str, bins: int = 30) -> pl.DataFrame:
    """One row per workflow and non-empty bin: the completed jobs whose `metric` falls in it.

    All workflows share `bins` equal bins from the smallest to the largest value in range; a
    bin holds its start, the last bin its end too. When every value is the same there is one
    bin, from that value to itself.

    sample_rate: 1 where every job counts; over a large range the bins and counts are those of
    the lake's job sample (`queries.base.job_source`) and it is 16: a counted job stands for 16.
    """
    if metric not in HISTOGRAM_METRICS:
        raise ValueError(f"metric: must be one of {', '.join(HISTOGRAM_METRICS)}, got {metric!r}")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: must be an integer >= 1, got {bins!r}")
    where, params = filters.where("jobs")
    jobs = frame(lake, f"select count(*) as jobs from jobs where {where}", params).item()
    source, rate = job_source(lake, filters, jobs)
    where, params = filters.where(source)
    sql = HISTOGRAM.format(metric=column("jobs", metric), where=where, source=source, rate=rate)
    return frame(lake, sql, [*params, bins, bins, bins, bins, bins])


GPU_TIME_DIMENSIONS = ("project_id", "character_id", "scene_type", "resolution_tier")

# Every dimension in one scan: one grouping set per dimension; grouping_id tells the set apart
# (a bit per column, set when the column is not grouped, the first column the highest bit).
GPU_TIME_BY = """
with attempts as (
    select {columns}, true as completed, total_gpu_time_ms as gpu_time_ms
    from jobs
    where {jobs}
    union all
    select {columns}, false as completed, total_gpu_time_ms as gpu_time_ms
    from job_failures
    where {failures}
),
per_value as (
    select grouping_id({columns}) as set_id, coalesce({columns}) as value,
        count(*) filter (where completed) as jobs,
        coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
    from attempts
    group by grouping sets ({sets})
)
select {dimension} as dimension, value, jobs, gpu_hours,
    gpu_hours / nullif(sum(gpu_hours) over (partition by set_id), 0) as share
from per_value
order by set_id, gpu_hours desc, value nulls last
"""


def gpu_time_by_dimensions(lake: Path, filters: Filters) -> pl.DataFrame:
    """`gpu_time_by` of every dimension of GPU_TIME_DIMENSIONS, from one scan: dimension, then
    its rows in order (dimensions in GPU_TIME_DIMENSIONS order)."""
    names = [column("jobs", d) for d in GPU_TIME_DIMENSIONS]
    for d in GPU_TIME_DIMENSIONS:
        column("job_failures", d)
    bits = len(names)
    cases = " ".join(
        f"when {(1 << bits) - 1 - (1 << (bits - 1 - i))} then '{d}'"
        for i, d in enumerate(GPU_TIME_DIMENSIONS)
    )
    jobs, jobs_params = filters.where("jobs")
    failures, failure_params = filters.where("job_failures")
    sql = GPU_TIME_BY.format(
        columns=", ".join(names),
        sets=", ".join(f"({n})" for n in names),
        dimension=f"case set_id {cases} end",
        jobs=jobs,
        failures=failures,
        ms_per_hour=MS_PER_HOUR,
    )
    return frame(lake, sql, [*jobs_params, *failure_params])


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

STAGE_BREAKDOWN = """
with stages as (
    select stage_name, duration_ms
    from job_stages
    where {stages}
),
per_stage as (
    select stage_name,
        count(*) as stages,
        sum(duration_ms) as total_ms,
        avg(duration_ms) as avg_ms,
        {quantiles} as quantiles
    from stages
    group by stage_name
){sampled}
select stage_name, stages, total_ms, total_ms / nullif(sum(total_ms) over (), 0) as share,
    avg_ms, {picked}[1] as p50_ms, {picked}[2] as p95_ms,
    cast({rate} as bigint) as percentile_sample_rate
from per_stage{join}
order by total_ms desc, stage_name
"""
STAGE_QUANTILES = "quantile_cont(duration_ms, [0.5, 0.95])"
# Over a large range, the stage percentiles from the sample's stages.
SAMPLED_STAGE_QUANTILES = """,
sampled as (
    select stage_name, {quantiles} as quantiles
    from {source}
    where {stages}
    group by stage_name
)"""
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

    percentile_sample_rate: 1 where p50 and p95 are exact; over a large range they are
    estimated on the stages of the lake's job sample (`queries.base.sample_source`) and it is
    16. Counts, totals, shares and averages always count every stage.
    """
    stages, params = filters.where("job_stages")
    rows = frame(lake, f"select count(*) as n from job_stages where {stages}", params).item()
    source, rate = sample_source(lake, filters, "job_stages", rows)
    source_stages, source_params = filters.where(source)
    if any(getattr(filters, name) for name in _ATTEMPT_ONLY_FILTERS):
        jobs, jobs_params = filters.where("jobs")
        failures, failure_params = filters.where("job_failures")
        attempts = STAGE_ATTEMPTS.format(jobs=jobs, failures=failures)
        stages += attempts
        source_stages += attempts
        params += [*jobs_params, *failure_params]
        source_params += [*jobs_params, *failure_params]
    if rate == 1:
        sql = STAGE_BREAKDOWN.format(
            stages=stages,
            quantiles=STAGE_QUANTILES,
            sampled="",
            join="",
            picked="per_stage.quantiles",
            rate=rate,
        )
        return frame(lake, sql, params)
    sampled = SAMPLED_STAGE_QUANTILES.format(
        source=source, stages=source_stages, quantiles=STAGE_QUANTILES
    )
    sql = STAGE_BREAKDOWN.format(
        stages=stages,
        quantiles="cast(null as double[])",
        sampled=sampled,
        join=" left join sampled using (stage_name)",
        picked="sampled.quantiles",
        rate=rate,
    )
    return frame(lake, sql, [*params, *source_params])


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
