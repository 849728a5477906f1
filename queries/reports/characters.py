"""Delivered characters, shared by the delivery, throughput and cost reports: the deliveries of
recent periods, and the GPU work behind each delivered character.

A character counts once per period: a character delivered twice in one period keeps its last
delivery. Its work is every attempt (completed or failed) of the character between its
onboarding and that delivery, whatever the date range of the report.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from queries.base import frame
from queries.reports.model import Context

DELIVERIES = """
select date, occurred_at, character_id, project_id, onboarded_at, scene_count,
    epoch(occurred_at - onboarded_at) / 86400 as turnaround_days
from deliveries
where {where}
order by occurred_at, character_id
"""


def deliveries(ctx: Context, periods: int) -> pl.DataFrame:
    """One row per character and period, for the `periods` periods ending with the report's:
    period (0 = the report's, 1 = the previous, ...), period_start, date (of delivery),
    occurred_at, character_id, project_id, onboarded_at, scene_count, turnaround_days."""
    where, params = ctx.span(periods).where("deliveries")
    rows = frame(ctx.lake, DELIVERIES.format(where=where), params)
    index = ((pl.lit(ctx.end) - pl.col("date")).dt.total_days() // ctx.days).cast(pl.Int64)
    return (
        rows.with_columns(index.alias("period"))
        .with_columns(
            (pl.lit(ctx.start) - pl.duration(days=pl.col("period") * ctx.days))
            .cast(pl.Date)
            .alias("period_start")
        )
        .unique(["period", "character_id"], keep="last", maintain_order=True)
        .select(
            "period",
            "period_start",
            "date",
            "occurred_at",
            "character_id",
            "project_id",
            "onboarded_at",
            "scene_count",
            "turnaround_days",
        )
    )


# The attempts of each character delivered in the span (its last delivery per period) between
# its onboarding and that delivery, summed per scene type, resolution tier and GPU model.
# `event_cost_usd` is what the events sent; GPU time without a cost is priced from hourly rates.
DELIVERED_WORK = """
with delivered as (
    select character_id,
        (? - date) // ? as period,
        arg_max(project_id, occurred_at) as project_id,
        arg_max(onboarded_at, occurred_at) as onboarded_at,
        max(occurred_at) as delivered_at
    from deliveries
    where {where}
    group by character_id, period
),
attempts as (
    select character_id, occurred_at, scene_type, resolution_tier, gpu_model,
        total_gpu_time_ms, total_wall_time_ms, cost_usd
    from jobs
    where date >= ? and date <= ?
        and character_id in (select character_id from delivered)
    union all
    select character_id, occurred_at, scene_type, resolution_tier, gpu_model,
        total_gpu_time_ms, total_wall_time_ms, null
    from job_failures
    where date >= ? and date <= ?
        and character_id in (select character_id from delivered)
)
select d.period, d.character_id, d.project_id, a.scene_type, a.resolution_tier, a.gpu_model,
    count(a.occurred_at) as attempts,
    cast(coalesce(sum(a.total_gpu_time_ms), 0) as double) as gpu_ms,
    cast(coalesce(sum(a.total_wall_time_ms), 0) as double) as wall_ms,
    sum(a.cost_usd) as event_cost_usd,
    cast(coalesce(sum(a.total_gpu_time_ms) filter (where a.cost_usd is null), 0) as double)
        as unpriced_gpu_ms
from delivered d
left join attempts a
    on a.character_id = d.character_id
    and a.occurred_at between d.onboarded_at and d.delivered_at
group by d.period, d.character_id, d.project_id, a.scene_type, a.resolution_tier, a.gpu_model
order by d.period, d.character_id, a.scene_type, a.resolution_tier, a.gpu_model
"""


def delivered_work(ctx: Context, periods: int, delivered: pl.DataFrame) -> pl.DataFrame:
    """One row per character delivered in the `periods` periods ending with the report's, and
    per scene type, resolution tier and GPU model of its attempts: period (0 = the report's),
    character_id, project_id, scene_type, resolution_tier, gpu_model, attempts, gpu_ms, wall_ms,
    event_cost_usd, unpriced_gpu_ms. A character without attempts has one row of nulls and zeros.

    `delivered` (rows of `deliveries` for the same periods) bounds the days scanned: from the
    earliest onboarding on, so the scan skips older files.
    """
    span = ctx.span(periods)
    where, params = span.where("deliveries")
    first = delivered["onboarded_at"].min()
    # Onboarding is a UTC timestamp; its UTC day is the first partition an attempt can be in.
    low = first.date() if isinstance(first, datetime) else span.start
    bounds = [low, ctx.end]
    return frame(
        ctx.lake,
        DELIVERED_WORK.format(where=where),
        [ctx.end, ctx.days, *params, *bounds, *bounds],
    )
