"""Delivery summary: characters delivered in the period, by project, against the previous period
and the trend over the last TREND_PERIODS periods of the same length.

A period before the lake's first day of data has no count (null), not zero.
"""

from __future__ import annotations

import polars as pl

from queries.reports import wording as w
from queries.reports.characters import deliveries
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

#: Periods of the trend, the report's own included.
TREND_PERIODS = 6
#: Projects named in a summary sentence; the rest are counted.
NAMED_PROJECTS = 5


def build(ctx: Context) -> Section:
    """The delivery summary of `ctx`'s period."""
    rows = deliveries(ctx, TREND_PERIODS)
    now, before = rows.filter(pl.col("period") == 0), rows.filter(pl.col("period") == 1)
    trend = _trend(ctx, rows)
    known = trend.filter(pl.col("characters").is_not_null())
    covered = known.filter(pl.col("period_start") == ctx.previous_start).height > 0
    headline: Headline = {}
    compared(headline, "characters", now.height, before.height if covered else None)
    compared(
        headline, "projects", now["project_id"].n_unique(),
        before["project_id"].n_unique() if covered else None,
    )  # fmt: skip
    compared(headline, "scenes", _scenes(now), _scenes(before) if covered else None)
    earlier = known.filter(pl.col("complete") & (pl.col("period_start") < ctx.start))
    counts = [int(n) for n in earlier["characters"].to_list()]
    headline["trend_periods"] = len(counts)
    headline["trend_average_characters"] = sum(counts) / len(counts) if counts else None
    by_project = _by_project(now, before, covered)
    tables = {
        "by_project": by_project,
        "trend": trend,
        "trend_by_project": _trend_by_project(rows),
        "deliveries": now.select(
            pl.col("date").alias("delivered_on"),
            "project_id",
            "character_id",
            "scene_count",
            "turnaround_days",
        ).sort(["delivered_on", "project_id", "character_id"]),
    }
    charts = [
        ChartSpec(
            "Characters delivered per period", "trend_by_project", "stacked_bar", "period_start",
            "characters", color="project_id",
        ),
        ChartSpec("Characters delivered by project", "by_project", "bar", "project_id", "characters"),
    ]  # fmt: skip
    if now.is_empty():
        summary = w.no_data(ctx, "no character was delivered")
    else:
        summary = _summary(ctx, headline, by_project, trend)
    return Section(headline, summary, tables, charts)


def _scenes(rows: pl.DataFrame) -> int | None:
    """Scenes delivered; None when no delivery sent a scene count."""
    counts = rows["scene_count"].drop_nulls()
    return int(counts.sum()) if counts.len() else None


def _trend(ctx: Context, rows: pl.DataFrame) -> pl.DataFrame:
    """One row per period, oldest first: characters, projects and scenes delivered (null for a
    period that ends before the lake's first day of data), and whether the lake's data covers
    the whole period (`complete`)."""
    first = ctx.data_range[0]
    starts = pl.DataFrame(
        {"period_start": ctx.period_starts(TREND_PERIODS)}, schema={"period_start": pl.Date}
    )
    per_period = rows.group_by("period_start").agg(
        pl.len().cast(pl.Int64).alias("characters"),
        pl.col("project_id").n_unique().cast(pl.Int64).alias("projects"),
        pl.col("scene_count").sum().alias("scenes"),
    )
    end = pl.col("period_start") + pl.duration(days=ctx.days - 1)
    before_data = end < pl.lit(first) if first is not None else pl.lit(True)
    complete = pl.col("period_start") >= pl.lit(first) if first is not None else pl.lit(False)
    return (
        starts.join(per_period, on="period_start", how="left")
        .with_columns(
            end.cast(pl.Date).alias("period_end"),
            *[
                pl.when(before_data).then(None).otherwise(pl.col(c).fill_null(0)).alias(c)
                for c in ("characters", "projects", "scenes")
            ],
            complete.alias("complete"),
        )
        .select("period_start", "period_end", "characters", "projects", "scenes", "complete")
    )


def _trend_by_project(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per period and project with a delivery: characters delivered."""
    return (
        rows.group_by("period_start", "project_id")
        .agg(pl.len().cast(pl.Int64).alias("characters"))
        .sort(["period_start", "project_id"])
    )


def _by_project(now: pl.DataFrame, before: pl.DataFrame, covered: bool) -> pl.DataFrame:
    """One row per project with a delivery in either period, most characters first."""
    current = now.group_by("project_id").agg(
        pl.len().cast(pl.Int64).alias("characters"), pl.col("scene_count").sum().alias("scenes")
    )
    previous = before.group_by("project_id").agg(
        pl.len().cast(pl.Int64).alias("previous_characters")
    )
    both = current.join(previous, on="project_id", how="full", coalesce=True).with_columns(
        pl.col("characters").fill_null(0),
        pl.col("scenes").fill_null(0),
        pl.col("previous_characters").fill_null(0) if covered else pl.col("previous_characters"),
    )
    change = (
        (pl.col("characters") - pl.col("previous_characters"))
        / pl.when(pl.col("previous_characters") > 0).then(pl.col("previous_characters"))
        * 100
    )
    return (
        both.with_columns(change.alias("change_pct"))
        .sort(["characters", "project_id"], descending=[True, False])
        .select("project_id", "characters", "scenes", "previous_characters", "change_pct")
    )


def _summary(ctx: Context, h: Headline, by_project: pl.DataFrame, trend: pl.DataFrame) -> list[str]:
    characters, projects = int(h["characters"] or 0), int(h["projects"] or 0)
    lines = [
        f"In the period {w.period(ctx.start, ctx.end)}, {w.plural(characters, 'character')} "
        f"{'was' if characters == 1 else 'were'} delivered across "
        f"{w.plural(projects, 'project')}"
        f"{w.versus(ctx, characters, _number(h['characters_previous']), w.count)}."
    ]
    delivering = by_project.filter(pl.col("characters") > 0)
    named = [f"{p} {n:,}" for p, n in delivering.select("project_id", "characters").rows()]
    if len(named) > NAMED_PROJECTS:
        others = len(named) - NAMED_PROJECTS
        named = [*named[:NAMED_PROJECTS], w.plural(others, "other project")]
    lines.append(f"By project: {w.joined(named)}.")
    idle = by_project.filter((pl.col("characters") == 0) & (pl.col("previous_characters") > 0))
    if idle.height:
        lines.append(
            f"No delivery this period from {w.joined(idle['project_id'].to_list())}, "
            f"which delivered in {w.previous(ctx)}."
        )
    if h["scenes"] is not None:
        lines.append(
            w.figure(
                ctx, "Scenes delivered", _number(h["scenes"]), _number(h["scenes_previous"]),
                w.count,
            )
        )  # fmt: skip
    lines += _trend_lines(ctx, h, trend)
    return lines + w.coverage(ctx)


def _trend_lines(ctx: Context, h: Headline, trend: pl.DataFrame) -> list[str]:
    known = trend.filter(pl.col("characters").is_not_null())
    if known.height < 2:
        return []
    counts = [f"{n:,}" for n in known["characters"].to_list()]
    first = known["period_start"][0]
    partial = "" if known["complete"][0] else " (the first only partly covered by the lake's data)"
    lines = [
        f"Characters delivered per {ctx.days}-day period since {w.day(first)}, oldest first: "
        f"{w.joined(counts)}{partial}."
    ]
    average, now = h["trend_average_characters"], h["characters"]
    # One full period before is the previous period, compared already.
    if isinstance(average, float) and isinstance(now, int) and int(h["trend_periods"] or 0) > 1:
        place = "above" if now > average else "below" if now < average else "at"
        lines.append(
            f"This period is {place} the average of the {w.plural(int(h['trend_periods'] or 0), 'full period')} "
            f"before it ({average:,.1f} characters)."
        )
    return lines


def _number(value: float | int | str | None) -> float | None:
    return None if value is None or isinstance(value, str) else float(value)
