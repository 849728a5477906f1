"""Cost per character: GPU time, wall time and money spent per character delivered in the period,
by scene type, against the characters delivered in the previous period.

A character's work is its attempts between onboarding and delivery (see `characters`), failed
ones included: the farm paid for them. Money is an attempt's `cost_usd` where the event sent one,
else its GPU hours at the hourly rate of its GPU model (`ReportOptions.gpu_hourly_usd`).
Averages are over the characters with recorded work; a delivered character without any is
listed but left out of them.
"""

from __future__ import annotations

import polars as pl

from queries.overview import MS_PER_HOUR
from queries.reports import wording as w
from queries.reports.characters import delivered_work, deliveries
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

#: Scene types named in the summary, most expensive first.
NAMED_SCENE_TYPES = 3

SCENE_COLUMNS = [
    "scene_type",
    "characters",
    "avg_gpu_hours",
    "avg_wall_hours",
    "avg_cost_usd",
    "total_cost_usd",
    "cost_share",
]


def build(ctx: Context) -> Section:
    """The cost-per-character report of `ctx`'s period."""
    delivered = deliveries(ctx, 2)
    work = _priced(ctx, delivered_work(ctx, 2, delivered))
    first = ctx.data_range[0]
    covered = first is not None and ctx.previous_end >= first
    per_character = _per_character(work)
    now = per_character.filter(pl.col("period") == 0)
    before = per_character.filter(pl.col("period") == 1)
    headline = _headline(now, before if covered else None)
    current = work.filter((pl.col("period") == 0) & (pl.col("attempts") > 0))
    tables = {
        "by_scene_type": _by_scene_type(current),
        "by_gpu_model": _by_gpu_model(current),
        "characters": now.select(
            "character_id",
            "project_id",
            "attempts",
            "gpu_hours",
            "wall_hours",
            "cost_usd",
        ).sort(["cost_usd", "character_id"], descending=[True, False]),
    }
    charts = [
        ChartSpec(
            "Average cost per character by scene type (USD)", "by_scene_type", "bar",
            "scene_type", "avg_cost_usd",
        ),
        ChartSpec("Cost by GPU model (USD)", "by_gpu_model", "bar", "gpu_model", "cost_usd"),
    ]  # fmt: skip
    if now.is_empty():
        summary = w.no_data(ctx, "no character was delivered")
    else:
        summary = _summary(ctx, headline, tables) + _onboarding_lines(ctx, delivered)
    return Section(headline, summary, tables, charts)


def _onboarding_lines(ctx: Context, delivered: pl.DataFrame) -> list[str]:
    """A warning for characters onboarded before the lake's first day: part of their work is
    missing, so their cost is understated."""
    first = ctx.data_range[0]
    if first is None:
        return []
    early = delivered.filter(pl.col("onboarded_at").dt.date() < first)
    lines = []
    for period, when in ((0, "this period"), (1, w.previous(ctx))):
        n = early.filter(pl.col("period") == period).height
        if n:
            lines.append(
                f"{w.plural(n, 'character')} delivered in {when} "
                f"{'was' if n == 1 else 'were'} onboarded before the lake's data begins "
                f"({w.day(first)}): part of their work is missing, so their cost is understated."
            )
    return lines


def _priced(ctx: Context, work: pl.DataFrame) -> pl.DataFrame:
    """`work` with the hourly rate of each row's GPU model and its cost in USD."""
    models = work["gpu_model"].unique().to_list()
    rates = pl.DataFrame(
        {"gpu_model": models, "hourly_rate_usd": [ctx.options.rate_of(m) for m in models]},
        schema={"gpu_model": pl.String, "hourly_rate_usd": pl.Float64},
    )
    rate_cost = pl.col("unpriced_gpu_ms") / MS_PER_HOUR * pl.col("hourly_rate_usd")
    return work.join(rates, on="gpu_model", how="left", nulls_equal=True).with_columns(
        rate_cost.alias("rate_cost_usd"),
        (pl.col("event_cost_usd").fill_null(0) + rate_cost).alias("cost_usd"),
    )


def _per_character(work: pl.DataFrame) -> pl.DataFrame:
    """One row per period and delivered character: attempts, GPU and wall hours, cost."""
    return work.group_by("period", "character_id", "project_id").agg(
        pl.col("attempts").sum().cast(pl.Int64),
        (pl.col("gpu_ms").sum() / MS_PER_HOUR).alias("gpu_hours"),
        (pl.col("wall_ms").sum() / MS_PER_HOUR).alias("wall_hours"),
        pl.col("cost_usd").sum(),
        pl.col("event_cost_usd").sum(),
    )


def _headline(now: pl.DataFrame, before: pl.DataFrame | None) -> Headline:
    headline: Headline = {}
    current = _figures(now)
    previous = _figures(before) if before is not None else None
    for key, value in current.items():
        compared(headline, key, value, previous[key] if previous else None)
    total, events = current["total_cost_usd"], float(now["event_cost_usd"].sum())
    headline["event_cost_share"] = events / total if total else None
    return headline


def _figures(per_character: pl.DataFrame) -> dict[str, float | int | None]:
    worked = per_character.filter(pl.col("attempts") > 0)
    n = worked.height

    def mean(column: str) -> float | None:
        return float(worked[column].sum()) / n if n else None

    return {
        "characters": per_character.height,
        "characters_with_work": n,
        "avg_cost_usd_per_character": mean("cost_usd"),
        "avg_gpu_hours_per_character": mean("gpu_hours"),
        "avg_wall_hours_per_character": mean("wall_hours"),
        "total_cost_usd": float(worked["cost_usd"].sum()),
        "total_gpu_hours": float(worked["gpu_hours"].sum()),
    }


def _by_scene_type(current: pl.DataFrame) -> pl.DataFrame:
    """One row per scene type: the characters with work of that type and their average GPU
    hours, wall hours and cost on it; most expensive per character first."""
    per_character = current.group_by("scene_type", "character_id").agg(
        (pl.col("gpu_ms").sum() / MS_PER_HOUR).alias("gpu_hours"),
        (pl.col("wall_ms").sum() / MS_PER_HOUR).alias("wall_hours"),
        pl.col("cost_usd").sum(),
    )
    total = pl.col("total_cost_usd").sum()
    return (
        per_character.group_by("scene_type")
        .agg(
            pl.len().cast(pl.Int64).alias("characters"),
            pl.col("gpu_hours").mean().alias("avg_gpu_hours"),
            pl.col("wall_hours").mean().alias("avg_wall_hours"),
            pl.col("cost_usd").mean().alias("avg_cost_usd"),
            pl.col("cost_usd").sum().alias("total_cost_usd"),
        )
        .with_columns(
            (pl.col("total_cost_usd") / pl.when(total > 0).then(total)).alias("cost_share")
        )
        .sort(
            [pl.col("scene_type").is_null().alias("unknown"), "avg_cost_usd", "scene_type"],
            descending=[False, True, False],
        )
        .select(SCENE_COLUMNS)
    )


def _by_gpu_model(current: pl.DataFrame) -> pl.DataFrame:
    """One row per GPU model: attempts, GPU hours, the rate used, cost from rates and from
    events; most cost first."""
    return (
        current.group_by("gpu_model")
        .agg(
            pl.col("attempts").sum().cast(pl.Int64),
            (pl.col("gpu_ms").sum() / MS_PER_HOUR).alias("gpu_hours"),
            pl.col("hourly_rate_usd").first(),
            pl.col("rate_cost_usd").sum(),
            pl.col("event_cost_usd").sum(),
            pl.col("cost_usd").sum(),
        )
        .sort(["cost_usd", "gpu_model"], descending=[True, False], nulls_last=True)
    )


def _summary(ctx: Context, h: Headline, tables: dict[str, pl.DataFrame]) -> list[str]:
    def value(key: str) -> float | None:
        v = h[key]
        return None if v is None or isinstance(v, str) else float(v)

    delivered, worked = int(h["characters"] or 0), int(h["characters_with_work"] or 0)
    if not worked:
        return [
            f"{w.plural(delivered, 'character')} delivered in the period, none with GPU work "
            "recorded between onboarding and delivery: no cost to report.",
            *w.coverage(ctx),
        ]
    lines = [
        w.figure(
            ctx, "Cost per delivered character", value("avg_cost_usd_per_character"),
            value("avg_cost_usd_per_character_previous"), w.usd, detail=" on average",
        ),
        w.figure(
            ctx, "GPU time per character", value("avg_gpu_hours_per_character"),
            value("avg_gpu_hours_per_character_previous"), w.hours, detail=" on average",
        ),
        w.figure(
            ctx, "Wall time per character", value("avg_wall_hours_per_character"),
            value("avg_wall_hours_per_character_previous"), w.hours, detail=" on average",
        ),
    ]  # fmt: skip
    if worked < delivered:
        missing = delivered - worked
        lines.append(
            f"{w.plural(delivered, 'character')} delivered; {missing:,} without recorded GPU work "
            f"{'is' if missing == 1 else 'are'} left out of these averages."
        )
    lines.append(_total_line(h))
    return lines + _detail_lines(tables) + w.coverage(ctx)


def _detail_lines(tables: dict[str, pl.DataFrame]) -> list[str]:
    """The most expensive scene types, and the rates that priced GPU time."""
    lines = []
    scenes = tables["by_scene_type"].filter(pl.col("scene_type").is_not_null())
    named = [
        f"{s} ({w.usd(c)} per character)"
        for s, c in scenes.select("scene_type", "avg_cost_usd").head(NAMED_SCENE_TYPES).rows()
    ]
    if named:
        lines.append(f"Most expensive scene types: {w.joined(named)}.")
    priced = tables["by_gpu_model"].filter(pl.col("rate_cost_usd") > 0)
    rates = [
        f"{m or 'unknown GPU'} at {w.usd(r)} per GPU-hour"
        for m, r in priced.select("gpu_model", "hourly_rate_usd").rows()
    ]
    if rates:
        lines.append(f"Rates applied where events sent no cost: {w.joined(rates)}.")
    return lines


def _total_line(h: Headline) -> str:
    total, hours, share = h["total_cost_usd"], h["total_gpu_hours"], h["event_cost_share"]
    assert isinstance(total, float) and isinstance(hours, float)
    line = f"In all, {w.usd(total)} for {w.hours(hours)} of GPU time"
    if isinstance(share, float) and share > 0:
        return line + f", {w.share(share)} of it as the producers reported (cost_usd)."
    return line + ", all priced at the GPU rates."
