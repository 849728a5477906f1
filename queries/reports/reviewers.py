"""Reviewer productivity: review turnaround, approvals against rejections and annotation density,
aggregated over all reviewers.

Turnaround = decision time - submission to the review queue; density = annotations / segments.
Rows per reviewer exist only when `ReportOptions.per_reviewer` is on: the report is about the
review process, not about watching people.
"""

from __future__ import annotations

import polars as pl

from queries.base import frame
from queries.reports import wording as w
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

# Per period, per period and project, per day, and (when asked for) per period and reviewer.
REVIEWS = """
with reviews as (
    select case when date >= ? then 'current' else 'previous' end as period,
        date, project_id, reviewer_id, decision, segment_count, annotation_count,
        epoch(occurred_at - submitted_at) / 3600 as turnaround_hours
    from reviews
    where {where}
)
select period,
    case
        when grouping(project_id) = 0 then 'project'
        when grouping(date) = 0 then 'day'{reviewer_grain}
        else 'total'
    end as grain,
    project_id, date, {reviewer_column} as reviewer_id,
    count(*) as reviews,
    cast(sum(segment_count) as bigint) as segments,
    cast(sum(annotation_count) as bigint) as annotations,
    count(*) filter (where decision = 'approved') as approved,
    count(*) filter (where decision = 'rejected') as rejected,
    count(distinct reviewer_id) as reviewers,
    avg(turnaround_hours) as avg_turnaround_hours,
    median(turnaround_hours) as median_turnaround_hours
from reviews
group by grouping sets ((period), (period, project_id), (period, date){reviewer_set})
order by period, grain, project_id, date, reviewer_id
"""
# The per-reviewer grouping, only when the setting asks for it.
PER_REVIEWER = {
    "reviewer_grain": "\n        when grouping(reviewer_id) = 0 then 'reviewer'",
    "reviewer_column": "reviewer_id",
    "reviewer_set": ", (period, reviewer_id)",
}
AGGREGATED = {
    "reviewer_grain": "",
    "reviewer_column": "cast(null as varchar)",
    "reviewer_set": "",
}

RATIOS = [
    (pl.col("approved") / pl.col("reviews")).alias("approval_rate"),
    (pl.col("annotations") / pl.col("segments")).alias("annotation_density"),
]
COLUMNS = [
    "reviews",
    "segments",
    "approved",
    "rejected",
    "approval_rate",
    "avg_turnaround_hours",
    "median_turnaround_hours",
    "annotation_density",
]


def _rows(ctx: Context) -> pl.DataFrame:
    where, params = ctx.span(2).where("reviews")
    parts = PER_REVIEWER if ctx.options.per_reviewer else AGGREGATED
    sql = REVIEWS.format(where=where, **parts)
    return frame(ctx.lake, sql, [ctx.start, *params]).with_columns(RATIOS)


def build(ctx: Context) -> Section:
    """The reviewer productivity report of `ctx`'s period."""
    rows = _rows(ctx)
    current = pl.col("period") == "current"
    totals = rows.filter(pl.col("grain") == "total")
    now = totals.filter(current).rows(named=True)
    before = totals.filter(~current).rows(named=True)
    headline: Headline = {}
    for key in ("reviews", "segments", "reviewers", *COLUMNS[2:]):
        compared(headline, key, now[0][key] if now else None, before[0][key] if before else None)
    if not now:
        headline.update(reviews=0, segments=0, reviewers=0, approved=0, rejected=0)
    tables = {
        "daily": rows.filter(current & (pl.col("grain") == "day")).select("date", *COLUMNS),
        "by_project": _by_project(rows),
    }
    if ctx.options.per_reviewer:
        tables["reviewers"] = rows.filter(current & (pl.col("grain") == "reviewer")).select(
            "reviewer_id", *COLUMNS
        )
    charts = [
        ChartSpec("Review turnaround per day (hours)", "daily", "line", "date", "avg_turnaround_hours"),
        ChartSpec("Approval rate per day", "daily", "line", "date", "approval_rate"),
        ChartSpec("Review turnaround by project (hours)", "by_project", "bar", "project_id", "avg_turnaround_hours"),
    ]  # fmt: skip
    if ctx.options.per_reviewer:
        charts.append(
            ChartSpec("Reviews by reviewer", "reviewers", "bar", "reviewer_id", "reviews")
        )
    if not now:
        summary = w.no_data(ctx, "no review was completed")
    else:
        summary = _summary(ctx, headline, tables["by_project"]) + w.coverage(ctx)
    return Section(headline, summary, tables, charts)


def _by_project(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per project reviewed in the period, with its previous turnaround beside it."""
    projects = rows.filter(pl.col("grain") == "project")
    previous = projects.filter(pl.col("period") == "previous").select(
        "project_id", pl.col("avg_turnaround_hours").alias("previous_avg_turnaround_hours")
    )
    return (
        projects.filter(pl.col("period") == "current")
        .join(previous, on="project_id", how="left")
        .select("project_id", *COLUMNS, "previous_avg_turnaround_hours")
        .sort("project_id")
    )


def _summary(ctx: Context, h: Headline, by_project: pl.DataFrame) -> list[str]:
    def value(key: str) -> float | None:
        v = h[key]
        return None if v is None or isinstance(v, str) else float(v)

    reviews, segments = int(h["reviews"] or 0), int(h["segments"] or 0)
    reviewers = int(h["reviewers"] or 0)
    median = value("median_turnaround_hours")
    lines = [
        w.figure(
            ctx, "Reviews completed", reviews, value("reviews_previous"), w.count,
            detail=f" ({w.plural(segments, 'segment')}, {w.plural(reviewers, 'reviewer')})",
        ),
        w.figure(
            ctx, "Review turnaround", value("avg_turnaround_hours"),
            value("avg_turnaround_hours_previous"), w.hours,
            detail=" on average from submission to decision"
            + (f" (median {w.hours(median)})" if median is not None else ""),
        ),
        w.figure(
            ctx, "Approval rate", value("approval_rate"), value("approval_rate_previous"), w.share,
            points=True,
            detail=f" ({int(h['approved'] or 0):,} approved, {int(h['rejected'] or 0):,} rejected)",
        ),
        w.figure(
            ctx, "Annotation density", value("annotation_density"),
            value("annotation_density_previous"), lambda v: f"{v:.2f} notes per segment",
        ),
    ]  # fmt: skip
    if by_project.height >= 2:
        ordered = by_project.sort(["avg_turnaround_hours", "project_id"])
        quick, slow = ordered.row(0, named=True), ordered.row(-1, named=True)
        lines.append(
            f"By project, reviews of {quick['project_id']} were the quickest "
            f"({w.hours(quick['avg_turnaround_hours'])} on average) and those of "
            f"{slow['project_id']} the slowest ({w.hours(slow['avg_turnaround_hours'])})."
        )
    if ctx.options.per_reviewer:
        lines.append("Per-reviewer rows are included because the per-reviewer setting is on.")
    else:
        lines.append("Figures are aggregated over all reviewers.")
    return lines
