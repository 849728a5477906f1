"""GPU utilization: where GPU time went (by project, scene type and resolution tier), how much of
the fleet's powered-on time was spent generating, and each worker's utilization.

GPU hours count every attempt, failed ones included, as `queries.workflows.gpu_time_by` does.
Utilization = generating / (generating + idle) seconds of worker samples, offline time left out,
as `queries.workers.worker_summary` defines it. Worker samples carry no project: with a project
filter, generating and idle time stay those of the whole farm.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from queries.base import frame
from queries.overview import MS_PER_HOUR
from queries.reports import wording as w
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

DIMENSIONS = ("project_id", "scene_type", "resolution_tier")
#: Values named per dimension in the summary.
NAMED = 5

# GPU hours per period, and per period and project, scene type or tier, in one scan.
GPU_HOURS = """
with attempts as (
    select date, project_id, scene_type, resolution_tier, true as completed,
        total_gpu_time_ms as gpu_time_ms
    from jobs
    where {jobs}
    union all
    select date, project_id, scene_type, resolution_tier, false as completed,
        total_gpu_time_ms as gpu_time_ms
    from job_failures
    where {failures}
)
select
    case when date >= ? then 'current' else 'previous' end as period,
    case
        when grouping(project_id) = 0 then 'project_id'
        when grouping(scene_type) = 0 then 'scene_type'
        when grouping(resolution_tier) = 0 then 'resolution_tier'
    end as dimension,
    coalesce(project_id, scene_type, resolution_tier) as value,
    count(*) filter (where completed) as jobs,
    count(*) filter (where not completed) as failures,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
from attempts
group by grouping sets (
    (period), (period, project_id), (period, scene_type), (period, resolution_tier)
)
order by period, dimension nulls first, gpu_hours desc, value nulls last
"""

# Hours per state, per period and worker, and per current day, in one statement.
STATE_HOURS = """
with samples as (
    select case when date >= ? then 'current' else 'previous' end as period,
        date, occurred_at, worker_id, gpu_model, state, interval_s
    from worker_samples
    where {samples}
)
select period, worker_id, cast(null as date) as date,
    arg_max(gpu_model, occurred_at) filter (where gpu_model is not null) as gpu_model,
    coalesce(sum(interval_s) filter (where state = 'generating'), 0) / 3600 as generating_hours,
    coalesce(sum(interval_s) filter (where state = 'idle'), 0) / 3600 as idle_hours,
    coalesce(sum(interval_s) filter (where state = 'offline'), 0) / 3600 as offline_hours
from samples
group by grouping sets ((period), (period, worker_id))
union all
select period, null, date, null,
    coalesce(sum(interval_s) filter (where state = 'generating'), 0) / 3600,
    coalesce(sum(interval_s) filter (where state = 'idle'), 0) / 3600,
    coalesce(sum(interval_s) filter (where state = 'offline'), 0) / 3600
from samples
where period = 'current'
group by period, date
order by period, worker_id nulls first, date nulls first
"""

# GPU hours and jobs per worker in the period (all projects unless filtered).
WORKER_HOURS = """
select worker_id, count(*) filter (where completed) as jobs,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours
from (
    select worker_id, true as completed, total_gpu_time_ms as gpu_time_ms
    from jobs
    where {jobs}
    union all
    select worker_id, false, total_gpu_time_ms
    from job_failures
    where {failures}
)
group by worker_id
"""

UTILIZATION = pl.col("generating_hours") / pl.when(
    pl.col("generating_hours") + pl.col("idle_hours") > 0
).then(pl.col("generating_hours") + pl.col("idle_hours"))


def _gpu_hours(ctx: Context) -> pl.DataFrame:
    span = ctx.span(2)
    jobs, jobs_params = span.where("jobs")
    failures, failure_params = span.where("job_failures")
    sql = GPU_HOURS.format(jobs=jobs, failures=failures, ms_per_hour=MS_PER_HOUR)
    return frame(ctx.lake, sql, [*jobs_params, *failure_params, ctx.start])


def _state_hours(ctx: Context) -> pl.DataFrame:
    # Samples carry no project: the project filter does not apply to them.
    samples, params = ctx.span(2).where("worker_samples")
    rows = frame(ctx.lake, STATE_HOURS.format(samples=samples), [ctx.start, *params])
    return rows.with_columns(UTILIZATION.alias("utilization"))


def _worker_hours(ctx: Context) -> pl.DataFrame:
    jobs, jobs_params = ctx.filters.where("jobs")
    failures, failure_params = ctx.filters.where("job_failures")
    sql = WORKER_HOURS.format(jobs=jobs, failures=failures, ms_per_hour=MS_PER_HOUR)
    return frame(ctx.lake, sql, [*jobs_params, *failure_params])


def build(ctx: Context) -> Section:
    """The GPU utilization report of `ctx`'s period."""
    hours, states = _gpu_hours(ctx), _state_hours(ctx)
    fleet = states.filter(pl.col("worker_id").is_null() & pl.col("date").is_null())
    totals = hours.filter(pl.col("dimension").is_null())
    headline = _headline(_row(totals, "current"), _row(totals, "previous"), fleet)
    tables = {
        **{f"by_{d.removesuffix('_id')}": _by_dimension(hours, d) for d in DIMENSIONS},
        "state_hours_daily": _state_days(states),
        "workers": _workers(states, _worker_hours(ctx)),
    }
    charts = [
        ChartSpec("GPU hours by project", "by_project", "bar", "project_id", "gpu_hours"),
        ChartSpec("GPU hours by scene type", "by_scene_type", "bar", "scene_type", "gpu_hours"),
        ChartSpec(
            "GPU hours by resolution tier", "by_resolution_tier", "bar", "resolution_tier",
            "gpu_hours",
        ),
        ChartSpec(
            "Fleet hours per day by state", "state_hours_daily", "stacked_bar", "date", "hours",
            color="state",
        ),
        ChartSpec("Utilization by worker", "workers", "bar", "worker_id", "utilization"),
    ]  # fmt: skip
    if _row(totals, "current") is None and _row(fleet, "current") is None:
        summary = w.no_data(ctx, "no job ran and no worker reported")
    else:
        summary = _summary(ctx, headline, tables)
    return Section(headline, summary, tables, charts)


def _row(rows: pl.DataFrame, period: str) -> dict | None:
    found = rows.filter(pl.col("period") == period).rows(named=True)
    return found[0] if found else None


def _headline(now: dict | None, before: dict | None, fleet: pl.DataFrame) -> Headline:
    headline: Headline = {}
    for key in ("gpu_hours", "jobs", "failures"):
        compared(headline, key, now[key] if now else 0, before[key] if before else None)
    fleet_now, fleet_before = _row(fleet, "current"), _row(fleet, "previous")
    for key in ("utilization", "generating_hours", "idle_hours", "offline_hours"):
        compared(
            headline,
            key,
            fleet_now[key] if fleet_now else None,
            fleet_before[key] if fleet_before else None,
        )
    return headline


def _by_dimension(hours: pl.DataFrame, dimension: str) -> pl.DataFrame:
    """One row per value of `dimension` (null: attempts that did not send it) in the period:
    jobs, GPU hours, share of the period's GPU hours and the previous period's GPU hours."""
    rows = hours.filter(pl.col("dimension") == dimension)
    previous = rows.filter(pl.col("period") == "previous").select(
        "value", pl.col("gpu_hours").alias("previous_gpu_hours")
    )
    total = pl.col("gpu_hours").sum()
    return (
        rows.filter(pl.col("period") == "current")
        .join(previous, on="value", how="left", nulls_equal=True)
        .with_columns((pl.col("gpu_hours") / pl.when(total > 0).then(total)).alias("share"))
        .select(
            pl.col("value").alias(dimension),
            "jobs",
            "failures",
            "gpu_hours",
            "share",
            "previous_gpu_hours",
        )
    )


def _state_days(states: pl.DataFrame) -> pl.DataFrame:
    """One row per day of the period and state: hours the fleet spent in that state."""
    days = states.filter(pl.col("date").is_not_null())
    return (
        days.unpivot(
            ["generating_hours", "idle_hours", "offline_hours"],
            index="date",
            variable_name="state",
            value_name="hours",
        )
        .with_columns(pl.col("state").str.strip_suffix("_hours"))
        .sort(["date", "state"])
    )


def _workers(states: pl.DataFrame, worker_hours: pl.DataFrame) -> pl.DataFrame:
    """One row per worker with samples or attempts in the period, by worker_id."""
    per_worker = states.filter(pl.col("worker_id").is_not_null())
    current = per_worker.filter(pl.col("period") == "current").drop("period", "date")
    previous = per_worker.filter(pl.col("period") == "previous").select(
        "worker_id", pl.col("utilization").alias("previous_utilization")
    )
    return (
        current.join(worker_hours, on="worker_id", how="full", coalesce=True)
        .join(previous, on="worker_id", how="left")
        .with_columns(pl.col("jobs").fill_null(0), pl.col("gpu_hours").fill_null(0.0))
        .select(
            "worker_id",
            "gpu_model",
            "jobs",
            "gpu_hours",
            "generating_hours",
            "idle_hours",
            "offline_hours",
            "utilization",
            "previous_utilization",
        )
        .sort("worker_id")
    )


def _summary(ctx: Context, h: Headline, tables: dict[str, pl.DataFrame]) -> list[str]:
    def value(key: str) -> float | None:
        v = h[key]
        return None if v is None or isinstance(v, str) else float(v)

    jobs, failures = int(h["jobs"] or 0), int(h["failures"] or 0)
    detail = f" across {w.plural(jobs, 'completed job')} and {w.plural(failures, 'failed attempt')}"
    lines = [
        w.figure(
            ctx, "GPU time", value("gpu_hours"), value("gpu_hours_previous"), w.hours, detail=detail
        )
    ]
    for dimension, label in (
        ("project_id", "By project"),
        ("scene_type", "By scene type"),
        ("resolution_tier", "By resolution tier"),
    ):
        table = tables[f"by_{dimension.removesuffix('_id')}"].filter(pl.col("gpu_hours") > 0)
        parts = [
            f"{v if v is not None else 'not given'} {w.hours(g)} ({w.share(s)})"
            for v, g, s in table.select(dimension, "gpu_hours", "share").head(NAMED).rows()
        ]
        if table.height > NAMED:
            parts.append(w.plural(table.height - NAMED, "other"))
        if parts:
            lines.append(f"{label}: {w.joined(parts)}.")
    lines += _fleet_lines(ctx, value, tables["workers"])
    return lines + w.coverage(ctx)


def _fleet_lines(
    ctx: Context, value: Callable[[str], float | None], workers: pl.DataFrame
) -> list[str]:
    generating, idle, offline = (
        value("generating_hours"),
        value("idle_hours"),
        value("offline_hours"),
    )
    if generating is None:
        return ["No worker reported samples in the period: utilization is not measured."]
    lines = [
        w.figure(
            ctx, "GPU utilization", value("utilization"), value("utilization_previous"), w.share,
            points=True,
            detail=f" of powered-on time spent generating ({w.hours(generating)} generating, "
            f"{w.hours(idle or 0)} idle)",
        )
    ]  # fmt: skip
    if offline:
        lines.append(f"Workers were offline for {w.hours(offline)} in all.")
    measured = workers.filter(pl.col("utilization").is_not_null()).sort(
        ["utilization", "worker_id"]
    )
    if measured.height >= 2:
        low, high = measured.row(0, named=True), measured.row(-1, named=True)
        lines.append(
            f"Least busy worker: {low['worker_id']} at {w.share(low['utilization'])}; "
            f"busiest: {high['worker_id']} at {w.share(high['utilization'])}."
        )
    if ctx.project:
        lines.append(
            "Worker samples carry no project: utilization and generating, idle and offline "
            "time are the whole farm's."
        )
    return lines
