"""Quality: the auto-QA pass rate over time, attempts per job, failure types and the failure
rate, and how quality moved when a workflow changed version.

Attempts per job: the highest attempt number of each job among its attempts ending in the period
(a job retried twice counts 3), averaged over jobs. Failure rate = failed / all attempts, as in
`queries.overview`. Version changes are weighed in `queries.reports.versions`.
"""

from __future__ import annotations

import polars as pl

from queries.base import frame
from queries.reports import versions
from queries.reports import wording as w
from queries.reports.model import ChartSpec, Context, Headline, Section, compared

#: Failure types named in the summary.
NAMED_TYPES = 3

# Per period, and per period and day: counts, QA results and the mean likeness; then per period
# the mean of each job's highest attempt. One statement, both periods.
QUALITY = """
with attempts as (
    select date, job_id, attempt, true as completed, qa_passed, likeness
    from jobs
    where {jobs}
    union all
    select date, job_id, attempt, false, null, null
    from job_failures
    where {failures}
),
labelled as (
    select case when date >= ? then 'current' else 'previous' end as period, *
    from attempts
)
select period, date,
    count(*) filter (where completed) as jobs,
    count(*) filter (where not completed) as failures,
    count(qa_passed) as qa_checked,
    count(*) filter (where qa_passed) as qa_passed,
    avg(likeness) as avg_likeness,
    cast(null as double) as avg_attempts_per_job
from labelled
group by grouping sets ((period), (period, date))
union all
select period, null, null, null, null, null, null, avg(attempts)
from (
    select period, job_id, max(attempt) as attempts
    from labelled
    group by period, job_id
)
group by period
order by period, date nulls first
"""

FAILURE_TYPES = """
select case when date >= ? then 'current' else 'previous' end as period, error_type,
    count(*) as failures
from job_failures
where {where}
group by period, error_type
order by period, failures desc, error_type
"""

RATES = [
    (pl.col("failures") / (pl.col("jobs") + pl.col("failures"))).alias("failure_rate"),
    (pl.col("qa_passed") / pl.when(pl.col("qa_checked") > 0).then(pl.col("qa_checked"))).alias(
        "qa_pass_rate"
    ),
]


def _quality(ctx: Context) -> pl.DataFrame:
    span = ctx.span(2)
    jobs, jobs_params = span.where("jobs")
    failures, failure_params = span.where("job_failures")
    sql = QUALITY.format(jobs=jobs, failures=failures)
    return frame(ctx.lake, sql, [*jobs_params, *failure_params, ctx.start])


def _failure_types(ctx: Context) -> pl.DataFrame:
    where, params = ctx.span(2).where("job_failures")
    rows = frame(ctx.lake, FAILURE_TYPES.format(where=where), [ctx.start, *params])
    now = rows.filter(pl.col("period") == "current").drop("period")
    before = rows.filter(pl.col("period") == "previous").select(
        "error_type", pl.col("failures").alias("previous_failures")
    )
    total = pl.col("failures").sum()
    change = (
        (pl.col("failures") - pl.col("previous_failures"))
        / pl.when(pl.col("previous_failures") > 0).then(pl.col("previous_failures"))
        * 100
    )
    return (
        now.join(before, on="error_type", how="full", coalesce=True)
        .with_columns(pl.col("failures").fill_null(0))
        .with_columns(
            (pl.col("failures") / pl.when(total > 0).then(total)).alias("share"),
            change.alias("change_pct"),
        )
        .sort(["failures", "error_type"], descending=[True, False])
        .select("error_type", "failures", "share", "previous_failures", "change_pct")
    )


def build(ctx: Context) -> Section:
    """The quality report of `ctx`'s period."""
    rows = _quality(ctx).with_columns(RATES)
    totals = rows.filter(pl.col("date").is_null() & pl.col("jobs").is_not_null())
    attempts = rows.filter(pl.col("jobs").is_null())
    now, before = _merged(totals, attempts, "current"), _merged(totals, attempts, "previous")
    failure_types = _failure_types(ctx)
    if before is None:
        failure_types = failure_types.with_columns(
            pl.lit(None, pl.Int64).alias("previous_failures"),
            pl.lit(None, pl.Float64).alias("change_pct"),
        )
    changes = versions.version_changes(ctx)
    headline = _headline(now, before, changes)
    tables = {
        "daily": rows.filter(pl.col("date").is_not_null() & (pl.col("period") == "current")).select(
            "date", "jobs", "failures", "failure_rate", "qa_checked", "qa_pass_rate", "avg_likeness"
        ),
        "failure_types": failure_types,
        "version_changes": changes,
    }
    charts = [
        ChartSpec("Auto-QA pass rate per day", "daily", "line", "date", "qa_pass_rate"),
        ChartSpec("Failure rate per day", "daily", "line", "date", "failure_rate"),
        ChartSpec("Failures by type", "failure_types", "bar", "error_type", "failures"),
    ]
    if now is None:
        summary = w.no_data(ctx, "no job completed or failed")
    else:
        summary = _summary(ctx, headline, failure_types, before is not None)
        summary += versions.sentences(changes) + w.coverage(ctx)
    return Section(headline, summary, tables, charts)


def _merged(totals: pl.DataFrame, attempts: pl.DataFrame, period: str) -> dict | None:
    found = totals.filter(pl.col("period") == period).rows(named=True)
    if not found:
        return None
    per_job = attempts.filter(pl.col("period") == period)["avg_attempts_per_job"]
    return found[0] | {"avg_attempts_per_job": per_job[0] if per_job.len() else None}


def _headline(now: dict | None, before: dict | None, changes: pl.DataFrame) -> Headline:
    headline: Headline = {}
    for key in ("jobs", "failures", "qa_checked"):
        compared(headline, key, now[key] if now else 0, before[key] if before else None)
    for key in ("failure_rate", "qa_pass_rate", "avg_attempts_per_job", "avg_likeness"):
        compared(headline, key, now[key] if now else None, before[key] if before else None)
    headline["workflows_with_version_change"] = changes["workflow_id"].n_unique()
    return headline


def _summary(ctx: Context, h: Headline, failure_types: pl.DataFrame, covered: bool) -> list[str]:
    def value(key: str) -> float | None:
        v = h[key]
        return None if v is None or isinstance(v, str) else float(v)

    jobs, failures = int(h["jobs"] or 0), int(h["failures"] or 0)
    checked = int(h["qa_checked"] or 0)
    lines = []
    if checked:
        lines.append(
            w.figure(
                ctx, "Auto-QA pass rate", value("qa_pass_rate"), value("qa_pass_rate_previous"),
                w.share, points=True, detail=f" of {w.plural(checked, 'checked job')}",
            )
        )  # fmt: skip
    else:
        lines.append("Auto-QA: no job in the period reported a QA result.")
    lines += [
        w.figure(
            ctx, "Attempts per job", value("avg_attempts_per_job"),
            value("avg_attempts_per_job_previous"), lambda v: f"{v:.2f}", detail=" on average",
        ),
        w.figure(
            ctx, "Failure rate", value("failure_rate"), value("failure_rate_previous"), w.share,
            points=True, detail=f" of attempts ({failures:,} of {jobs + failures:,})",
        ),
    ]  # fmt: skip
    lines += _failure_lines(ctx, failure_types, covered)
    if h["avg_likeness"] is not None:
        lines.append(
            w.figure(
                ctx, "Average likeness score", value("avg_likeness"),
                value("avg_likeness_previous"), w.score,
            )
        )  # fmt: skip
    return lines


def _failure_lines(ctx: Context, failure_types: pl.DataFrame, covered: bool) -> list[str]:
    current = failure_types.filter(pl.col("failures") > 0)
    if current.is_empty():
        return []
    named = [
        f"{t} {n:,} ({w.share(s)})"
        for t, n, s in current.select("error_type", "failures", "share").head(NAMED_TYPES).rows()
    ]
    lines = [f"Most common failures: {w.joined(named)}."]
    if covered:
        rise = failure_types.with_columns(
            (pl.col("failures") - pl.col("previous_failures").fill_null(0)).alias("rise")
        ).sort(["rise", "error_type"], descending=[True, False])
        top = rise.row(0, named=True)
        if top["rise"] > 0:
            lines.append(
                f"The biggest rise: {top['error_type']}, {top['failures']:,} against "
                f"{top['previous_failures'] or 0:,} in {w.previous(ctx)}."
            )
    return lines
