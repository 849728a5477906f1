"""Performance summary: GPU hours, time per frame, VRAM and failures of the period against the
previous one, the workflows that sped up or slowed down most, and the alerts raised.

Counts by the rules of `queries.overview` (its `attempts` rows: failed attempts' GPU time is in
GPU hours, per-job measures come from completed jobs), in one scan over both periods.
"""

from __future__ import annotations

import polars as pl

from queries.base import frame
from queries.overview import MS_PER_HOUR, attempts
from queries.reports import wording as w
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

#: Workflows ranked by their change in time per frame need this many completed jobs in each
#: period: fewer make a noisy average.
RANK_MIN_JOBS = 5
#: Workflows shown at each end of that ranking.
RANKED = 3

# Totals per period (workflow_id null), per period and workflow, and per day of the current
# period (date set), in one statement: every query pays for a fresh connection. The days are a
# second aggregate, not a third grouping set, which would sort each day's times for a p95.
PERFORMANCE = """
with attempts as ({attempts}),
labelled as (
    select case when date >= ? then 'current' else 'previous' end as period, *
    from attempts
)
select
    period,
    workflow_id,
    cast(null as date) as date,
    arg_max(workflow_name, occurred_at) filter (where workflow_name is not null) as workflow_name,
    count(*) filter (where completed) as jobs,
    count(*) filter (where not completed) as failures,
    cast(coalesce(sum(frame_count), 0) as bigint) as frames,
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour} as gpu_hours,
    avg(time_per_frame_ms) as avg_time_per_frame_ms,
    quantile_cont(time_per_frame_ms, 0.95) as p95_time_per_frame_ms,
    avg(vram_peak_mb) as avg_vram_peak_mb,
    max(vram_peak_mb) as max_vram_peak_mb
from labelled
group by grouping sets ((period), (period, workflow_id))
union all
select
    period, null, date, null,
    count(*) filter (where completed),
    count(*) filter (where not completed),
    cast(coalesce(sum(frame_count), 0) as bigint),
    coalesce(sum(gpu_time_ms), 0) / {ms_per_hour},
    null, null, null, null
from labelled
where period = 'current'
group by period, date
order by period, workflow_id nulls first, date nulls first
"""

# Alerts per period, metric, level, workflow and worker (as queries.alerts.active_alerts groups
# them), both periods in one statement.
ALERT_GROUPS = """
select
    case when date >= ? then 'current' else 'previous' end as period,
    metric, level, workflow_id, worker_id, count(*) as alerts, max(occurred_at) as last_at
from alerts
where {where}
group by period, metric, level, workflow_id, worker_id
order by period, level = 'critical' desc, last_at desc, metric, workflow_id, worker_id
"""

WORKFLOW_COLUMNS = [
    "workflow_id",
    "workflow_name",
    "jobs",
    "failures",
    "failure_rate",
    "gpu_hours",
    "gpu_share",
    "avg_time_per_frame_ms",
    "previous_avg_time_per_frame_ms",
    "time_per_frame_change_pct",
    "p95_time_per_frame_ms",
    "avg_vram_peak_mb",
    "max_vram_peak_mb",
]
RANK_COLUMNS = [
    "rank_group",
    "rank",
    "workflow_id",
    "workflow_name",
    "jobs",
    "previous_jobs",
    "avg_time_per_frame_ms",
    "previous_avg_time_per_frame_ms",
    "change_pct",
]


def _rows(ctx: Context) -> pl.DataFrame:
    """One row per period, per period and workflow, per current day (nulls mark the set)."""
    sql, params = attempts(ctx.span(2))
    return frame(
        ctx.lake,
        PERFORMANCE.format(attempts=sql, ms_per_hour=MS_PER_HOUR),
        [*params, ctx.start],
    )


def _alert_groups(ctx: Context) -> pl.DataFrame:
    where, params = ctx.span(2).where("alerts")
    return frame(ctx.lake, ALERT_GROUPS.format(where=where), [ctx.start, *params])


def build(ctx: Context) -> Section:
    """The performance summary of `ctx`'s period."""
    rows = _rows(ctx)
    totals = rows.filter(pl.col("workflow_id").is_null() & pl.col("date").is_null())
    now, before = (_total(totals, p) for p in ("current", "previous"))
    per_workflow = rows.filter(pl.col("workflow_id").is_not_null()).drop("date")
    workflows = _workflows(per_workflow)
    ranked = _ranked(workflows)
    daily = rows.filter(pl.col("date").is_not_null()).select(
        "date", "jobs", "frames", "failures", "gpu_hours"
    )
    alert_rows = _alert_groups(ctx)
    groups = alert_rows.filter(pl.col("period") == "current").drop("period")
    alerts_before = alert_rows.filter(pl.col("period") == "previous") if before else None
    alert_table = groups.with_columns(
        pl.col("last_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("last_at")
    )
    headline = _headline(now, before, groups, alerts_before)
    summary = _summary(ctx, headline, workflows, ranked, groups) if now else None
    charts = [
        ChartSpec("GPU hours per day", "daily", "line", "date", "gpu_hours"),
        ChartSpec("GPU hours by workflow", "workflows", "bar", "workflow_id", "gpu_hours"),
        ChartSpec(
            "Change in time per frame (%)", "top_bottom_workflows", "bar", "workflow_id",
            "change_pct", color="rank_group",
        ),
    ]  # fmt: skip
    return Section(
        headline,
        summary or w.no_data(ctx, "no job completed or failed"),
        {
            "workflows": workflows.filter(pl.col("period") == "current").select(WORKFLOW_COLUMNS),
            "top_bottom_workflows": ranked,
            "daily": daily,
            "alerts": alert_table,
        },
        charts,
    )


def _total(totals: pl.DataFrame, period: str) -> dict | None:
    rows = totals.filter(pl.col("period") == period).rows(named=True)
    return rows[0] if rows else None


def _workflows(per_workflow: pl.DataFrame) -> pl.DataFrame:
    """Per workflow and period, with the previous period's time per frame beside the current."""
    previous = per_workflow.filter(pl.col("period") == "previous").select(
        "workflow_id",
        pl.col("jobs").alias("previous_jobs"),
        pl.col("avg_time_per_frame_ms").alias("previous_avg_time_per_frame_ms"),
    )
    current_hours = pl.col("gpu_hours").filter(pl.col("period") == "current").sum()
    return (
        per_workflow.join(previous, on="workflow_id", how="left")
        .with_columns(
            (pl.col("failures") / (pl.col("jobs") + pl.col("failures"))).alias("failure_rate"),
            (pl.col("gpu_hours") / pl.when(current_hours > 0).then(current_hours)).alias(
                "gpu_share"
            ),
            (
                (pl.col("avg_time_per_frame_ms") - pl.col("previous_avg_time_per_frame_ms"))
                / pl.col("previous_avg_time_per_frame_ms")
                * 100
            ).alias("time_per_frame_change_pct"),
        )
        .sort(["gpu_hours", "workflow_id"], descending=[True, False])
    )


def _ranked(workflows: pl.DataFrame) -> pl.DataFrame:
    """The RANKED workflows whose time per frame fell most (top) and rose most (bottom) against
    the previous period, among those with RANK_MIN_JOBS jobs in both; ties by workflow_id."""
    eligible = workflows.filter(
        (pl.col("period") == "current")
        & (pl.col("jobs") >= RANK_MIN_JOBS)
        & (pl.col("previous_jobs") >= RANK_MIN_JOBS)
        & pl.col("time_per_frame_change_pct").is_not_null()
    ).select(
        "workflow_id",
        "workflow_name",
        "jobs",
        "previous_jobs",
        "avg_time_per_frame_ms",
        "previous_avg_time_per_frame_ms",
        pl.col("time_per_frame_change_pct").alias("change_pct"),
    )
    top = eligible.sort(["change_pct", "workflow_id"]).head(min(RANKED, (eligible.height + 1) // 2))
    rest = eligible.join(top, on="workflow_id", how="anti")
    bottom = rest.sort(["change_pct", "workflow_id"], descending=[True, False]).head(RANKED)
    return pl.concat(
        [
            g.with_columns(
                pl.lit(name).alias("rank_group"),
                pl.int_range(1, g.height + 1, dtype=pl.Int64).alias("rank"),
            )
            for name, g in (("top", top), ("bottom", bottom))
        ]
    ).select(RANK_COLUMNS)


def _headline(
    now: dict | None,
    before: dict | None,
    groups: pl.DataFrame,
    groups_before: pl.DataFrame | None,
) -> Headline:
    headline: Headline = {}
    for key in ("gpu_hours", "jobs", "failures"):
        compared(headline, key, now[key] if now else 0, before[key] if before else None)
    compared(headline, "failure_rate", _failure_rate(now), _failure_rate(before))
    for key, source in (
        ("avg_time_per_frame_ms", "avg_time_per_frame_ms"),
        ("p95_time_per_frame_ms", "p95_time_per_frame_ms"),
        ("avg_vram_peak_mb", "avg_vram_peak_mb"),
        ("peak_vram_mb", "max_vram_peak_mb"),
    ):
        compared(headline, key, now[source] if now else None, before[source] if before else None)
    critical = pl.col("level") == "critical"
    compared(
        headline,
        "alerts",
        int(groups["alerts"].sum()),
        None if groups_before is None else int(groups_before["alerts"].sum()),
    )
    compared(
        headline,
        "critical_alerts",
        int(groups.filter(critical)["alerts"].sum()),
        None if groups_before is None else int(groups_before.filter(critical)["alerts"].sum()),
    )
    return headline


def _failure_rate(total: dict | None) -> float | None:
    if not total or not total["jobs"] + total["failures"]:
        return None
    return float(total["failures"] / (total["jobs"] + total["failures"]))


def _summary(
    ctx: Context,
    h: Headline,
    workflows: pl.DataFrame,
    ranked: pl.DataFrame,
    groups: pl.DataFrame,
) -> list[str]:
    def before(key: str) -> float | None:
        value = h[f"{key}_previous"]
        return None if value is None else float(value)

    def now(key: str) -> float | None:
        value = h[key]
        return None if value is None else float(value)

    jobs, failures = int(h["jobs"] or 0), int(h["failures"] or 0)
    attempted = (
        f" across {w.plural(jobs, 'completed job')} and {w.plural(failures, 'failed attempt')}"
    )
    lines = [
        w.figure(ctx, "GPU time", now("gpu_hours"), before("gpu_hours"), w.hours, detail=attempted),
        w.figure(
            ctx, "Average time per frame", now("avg_time_per_frame_ms"),
            before("avg_time_per_frame_ms"), w.ms,
        ),
        w.figure(
            ctx, "Failure rate", now("failure_rate"), before("failure_rate"), w.share,
            points=True, detail=f" of attempts ({failures:,} of {jobs + failures:,})",
        ),
        w.figure(
            ctx, "Average VRAM peak per job", now("avg_vram_peak_mb"), before("avg_vram_peak_mb"),
            w.mb,
        ),
    ]  # fmt: skip
    if h["peak_vram_mb"] is not None:
        lines.append(f"The highest VRAM peak of a job was {w.mb(float(h['peak_vram_mb']))}.")
    lines += _ranking_lines(ctx, ranked) + _consumer_lines(workflows)
    lines.append(_alert_line(ctx, h, groups))
    return lines + w.coverage(ctx)


def _ranking_lines(ctx: Context, ranked: pl.DataFrame) -> list[str]:
    lines = []
    for group, word, sign in (("bottom", "Biggest slowdown", 1), ("top", "Biggest speed-up", -1)):
        rows = ranked.filter((pl.col("rank_group") == group) & (pl.col("rank") == 1))
        for r in rows.filter(pl.col("change_pct") * sign > 0).rows(named=True):
            lines.append(
                f"{word}: {r['workflow_id']}, {w.ms(r['avg_time_per_frame_ms'])} per frame, "
                f"{'up' if sign > 0 else 'down'} {w.percent(abs(r['change_pct']))} on "
                f"{w.previous(ctx)} ({w.ms(r['previous_avg_time_per_frame_ms'])})."
            )
    return lines


def _consumer_lines(workflows: pl.DataFrame) -> list[str]:
    current = workflows.filter((pl.col("period") == "current") & (pl.col("gpu_hours") > 0))
    if current.is_empty():
        return []
    top = current.row(0, named=True)
    return [
        f"Most GPU time went to {top['workflow_id']}: {w.hours(top['gpu_hours'])}, "
        f"{w.share(top['gpu_share'])} of the total."
    ]


def _alert_line(ctx: Context, h: Headline, groups: pl.DataFrame) -> str:
    alerts, critical = int(h["alerts"] or 0), int(h["critical_alerts"] or 0)
    previous = h["alerts_previous"]
    line = w.figure(
        ctx, "Alerts", alerts, None if previous is None else float(previous), w.count,
        detail=f" ({critical:,} critical)",
    )  # fmt: skip
    if groups.height:
        # active_alerts puts critical first: a stable sort keeps it first among equal counts.
        top = groups.sort("alerts", descending=True, maintain_order=True).row(0, named=True)
        line += (
            f" The most frequent: {top['metric']} ({top['level']}) on {top['workflow_id']} / "
            f"{top['worker_id']}, {w.plural(top['alerts'], 'alert')}."
        )
    return line
