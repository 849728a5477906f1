"""Throughput: the turnaround from onboarding to delivery of the characters delivered in the
period, its trend, and its breakdown by project, scene type and resolution tier.

Turnaround = delivery time - onboarding time, in days. A character has many scenes of several
types, so for the breakdown it counts once, under its *main* scene type and resolution tier: the
ones that took most of its GPU time (attempts between onboarding and delivery; ties by name). A
character delivered without any recorded attempt has none (null).
"""

from __future__ import annotations

import polars as pl

from queries.reports import wording as w
from queries.reports.characters import delivered_work, deliveries
from queries.reports.delivery import TREND_PERIODS
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

TURNAROUND = [
    pl.len().cast(pl.Int64).alias("characters"),
    pl.col("turnaround_days").mean().alias("avg_turnaround_days"),
    pl.col("turnaround_days").median().alias("median_turnaround_days"),
]


def build(ctx: Context) -> Section:
    """The throughput report of `ctx`'s period."""
    rows = deliveries(ctx, TREND_PERIODS)
    now, before = rows.filter(pl.col("period") == 0), rows.filter(pl.col("period") == 1)
    first = ctx.data_range[0]
    covered = first is not None and ctx.previous_end >= first
    headline: Headline = {}
    compared(headline, "characters", now.height, before.height if covered else None)
    for key in ("avg_turnaround_days", "median_turnaround_days"):
        value = now.select(TURNAROUND).row(0, named=True)[key]
        previous = before.select(TURNAROUND).row(0, named=True)[key] if covered else None
        compared(headline, key, value, previous)
    main = _main_work(delivered_work(ctx, 1, now))
    attributed = now.join(main, on="character_id", how="left")
    tables = {
        "by_project": _by_project(now, before),
        "by_scene_type": _breakdown(attributed, "scene_type"),
        "by_resolution_tier": _breakdown(attributed, "resolution_tier"),
        "trend": _trend(ctx, rows),
    }
    charts = [
        ChartSpec(
            "Average turnaround per period (days)", "trend", "line", "period_start",
            "avg_turnaround_days",
        ),
        ChartSpec(
            "Average turnaround by project (days)", "by_project", "bar", "project_id",
            "avg_turnaround_days",
        ),
        ChartSpec(
            "Average turnaround by main scene type (days)", "by_scene_type", "bar", "scene_type",
            "avg_turnaround_days",
        ),
        ChartSpec(
            "Average turnaround by main resolution tier (days)", "by_resolution_tier", "bar",
            "resolution_tier", "avg_turnaround_days",
        ),
    ]  # fmt: skip
    if now.is_empty():
        summary = w.no_data(ctx, "no character was delivered")
    else:
        summary = _summary(ctx, headline, tables)
    return Section(headline, summary, tables, charts)


def _main_work(work: pl.DataFrame) -> pl.DataFrame:
    """One row per character: the scene type and the resolution tier with most of its GPU time."""
    mains = []
    for dimension in ("scene_type", "resolution_tier"):
        per_value = work.group_by("character_id", dimension).agg(pl.col("gpu_ms").sum())
        mains.append(
            per_value.sort(
                ["character_id", "gpu_ms", dimension],
                descending=[False, True, False],
                nulls_last=True,
            )
            .unique("character_id", keep="first", maintain_order=True)
            # A character without attempts has a null dimension and no GPU time: no main value.
            .select("character_id", pl.when(pl.col("gpu_ms") > 0).then(pl.col(dimension)))
        )
    return mains[0].join(mains[1], on="character_id")


def _breakdown(attributed: pl.DataFrame, dimension: str) -> pl.DataFrame:
    """One row per main value of `dimension`: characters and their turnaround, longest first
    (the characters without one last)."""
    return (
        attributed.group_by(dimension)
        .agg(TURNAROUND)
        .sort(
            [pl.col(dimension).is_null().alias("unknown"), "avg_turnaround_days", dimension],
            descending=[False, True, False],
        )
    )


def _by_project(now: pl.DataFrame, before: pl.DataFrame) -> pl.DataFrame:
    """One row per project delivering in the period, with its previous average beside it."""
    previous = before.group_by("project_id").agg(
        pl.col("turnaround_days").mean().alias("previous_avg_turnaround_days")
    )
    change = (
        (pl.col("avg_turnaround_days") - pl.col("previous_avg_turnaround_days"))
        / pl.col("previous_avg_turnaround_days")
        * 100
    )
    return (
        now.group_by("project_id")
        .agg(TURNAROUND)
        .join(previous, on="project_id", how="left")
        .with_columns(change.alias("change_pct"))
        .sort("project_id")
    )


def _trend(ctx: Context, rows: pl.DataFrame) -> pl.DataFrame:
    """One row per period of the trend, oldest first (null figures before the lake's data)."""
    first = ctx.data_range[0]
    starts = pl.DataFrame(
        {"period_start": ctx.period_starts(TREND_PERIODS)}, schema={"period_start": pl.Date}
    )
    end = (pl.col("period_start") + pl.duration(days=ctx.days - 1)).cast(pl.Date)
    known = end >= pl.lit(first) if first is not None else pl.lit(False)
    return (
        starts.join(rows.group_by("period_start").agg(TURNAROUND), on="period_start", how="left")
        .with_columns(
            end.alias("period_end"),
            pl.when(known).then(pl.col("characters").fill_null(0)).alias("characters"),
        )
        .select(
            "period_start",
            "period_end",
            "characters",
            "avg_turnaround_days",
            "median_turnaround_days",
        )
    )


def _summary(ctx: Context, h: Headline, tables: dict[str, pl.DataFrame]) -> list[str]:
    characters = int(h["characters"] or 0)
    median = h["median_turnaround_days"]
    detail = f" over {w.plural(characters, 'delivered character')}"
    if isinstance(median, float):
        detail += f" (median {w.days(median)})"
    lines = [
        w.figure(
            ctx, "Average turnaround from onboarding to delivery",
            _float(h["avg_turnaround_days"]), _float(h["avg_turnaround_days_previous"]), w.days,
            detail=detail,
        )
    ]  # fmt: skip
    trend = tables["trend"].filter(pl.col("avg_turnaround_days").is_not_null())
    if trend.height >= 2:
        values = [f"{v:,.1f}" for v in trend["avg_turnaround_days"].to_list()]
        lines.append(
            f"Average turnaround of the {ctx.days}-day periods with deliveries since "
            f"{w.day(trend['period_start'][0])}, oldest first: {w.joined(values)} days."
        )
    lines += _extremes(tables["by_project"], "project_id", "By project")
    lines += _extremes(
        tables["by_scene_type"], "scene_type",
        "By main scene type (the one that took most of a character's GPU time)",
    )  # fmt: skip
    lines += _extremes(tables["by_resolution_tier"], "resolution_tier", "By main resolution tier")
    return lines + w.coverage(ctx)


def _extremes(table: pl.DataFrame, column: str, lead: str) -> list[str]:
    """'<lead>, a was the quickest: 12.0 days on average (3 characters); b the slowest: ...'"""
    known = table.filter(pl.col(column).is_not_null() & pl.col("avg_turnaround_days").is_not_null())
    if known.height < 2:
        return []
    ordered = known.sort(["avg_turnaround_days", column])
    quick, slow = ordered.row(0, named=True), ordered.row(-1, named=True)
    return [
        f"{lead}, {quick[column]} was the quickest: {w.days(quick['avg_turnaround_days'])} on "
        f"average ({w.plural(quick['characters'], 'character')}); {slow[column]} the slowest: "
        f"{w.days(slow['avg_turnaround_days'])} ({w.plural(slow['characters'], 'character')})."
    ]


def _float(value: float | int | str | None) -> float | None:
    return None if value is None or isinstance(value, str) else float(value)
