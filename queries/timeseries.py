"""Time-series queries: one metric per period, and every quality score per period.

Periods are UTC days, ISO weeks (starting Monday) or calendar months, each named by its first
day. A series has every period from its first to its last, so charts show the gaps: the range's
own start and end where the filters give them, else the first and last period with data; a
range without any data gives no rows. Counting follows `queries.overview`. No Streamlit here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lake.tables import STANDARD_SCORES
from queries.base import Filters, frame
from queries.cells import MS_PER_HOUR, Cells, attempt_cells, attempts, score_cells, within

#: Metric id -> label, for `metric_series`.
METRICS: dict[str, str] = {
    "jobs": "Jobs",
    "frames": "Frames",
    "gpu_hours": "GPU hours",
    "failures": "Failures",
    "failure_rate": "Failure rate",
    "avg_time_per_frame_ms": "Avg time per frame (ms)",
    "p95_time_per_frame_ms": "p95 time per frame (ms)",
    "avg_vram_peak_mb": "Avg peak VRAM (MB)",
    "avg_likeness": "Avg likeness",
    "avg_face_confidence": "Avg face confidence",
    "avg_motion_quality": "Avg motion quality",
    "avg_boundary_ssim": "Avg boundary SSIM",
}

GRAINS = ("day", "week", "month")

# Periods the moving average spans, the current one included: 7 days, or 3 weeks or months
# (a week's or month's value already smooths its days).
MOVING_PERIODS = {"day": 7, "week": 3, "month": 3}

# The value of each metric over a period's attempt cells (`queries.cells`); the p95, which no
# sum gives, over its attempts themselves (`P95_METRIC`).
VALUES: dict[str, str] = {
    "jobs": "coalesce(sum(attempts) filter (where completed), 0)",
    "frames": "coalesce(sum(frames), 0)",
    "gpu_hours": f"coalesce(sum(gpu_time_ms), 0) / {MS_PER_HOUR}",
    "failures": "coalesce(sum(attempts) filter (where not completed), 0)",
    "failure_rate": "coalesce(sum(attempts) filter (where not completed), 0) / sum(attempts)",
    "avg_time_per_frame_ms": "sum(tpf_sum) / nullif(sum(tpf_n), 0)",
    "p95_time_per_frame_ms": "quantile_cont(time_per_frame_ms, 0.95)",
    "avg_vram_peak_mb": "sum(vram_sum) / nullif(sum(vram_n), 0)",
} | {f"avg_{s}": f"sum({s}_sum) / nullif(sum({s}_n), 0)" for s in STANDARD_SCORES}
P95_METRIC = "p95_time_per_frame_ms"
#: Metrics that are 0 in a period without data; the others (averages, rates) are null there.
COUNTS = frozenset({"jobs", "frames", "gpu_hours", "failures"})

# Every period from the range's start (else the data's first period) to its end (else the
# data's last), from `per_period`; none when `per_period` is empty.
PERIODS = """
bounds as (
    select
        coalesce(cast(date_trunc('{grain}', cast(? as date)) as date), min(period)) as first,
        coalesce(cast(date_trunc('{grain}', cast(? as date)) as date), max(period)) as last
    from per_period
    having count(*) > 0
),
periods as (
    select cast(unnest(generate_series(first, last, interval 1 {grain})) as date) as period
    from bounds
)"""

METRIC_SERIES = """
with rows as ({rows}),
per_period as (
    select cast(date_trunc('{grain}', date) as date) as period, cast({value} as double) as value
    from rows
    group by period
),
{periods}
select periods.period, {filled} as value,
    avg({filled}) over (
        order by periods.period rows between {preceding} preceding and current row
    ) as moving_avg
from periods
left join per_period using (period)
order by periods.period
"""


def _check_grain(grain: str) -> None:
    if grain not in GRAINS:
        raise ValueError(f"grain: must be one of {', '.join(GRAINS)}, got {grain!r}")


def metric_series(lake: Path, filters: Filters, metric: str, grain: str = "day") -> pl.DataFrame:
    """One row per period (see the module docstring): the metric's value and its trailing
    moving average.

    A period without data is 0 for the counts (jobs, frames, gpu_hours, failures) and null for
    averages and rates. moving_avg is the mean of the non-null values of the last 7 days for
    grain day, of the last 3 weeks or months otherwise, the current period included; at the
    start of the series it averages the periods there are.
    """
    if metric not in VALUES:
        raise ValueError(f"metric: must be one of {', '.join(METRICS)}, got {metric!r}")
    _check_grain(grain)
    p95 = metric == P95_METRIC
    cells = Cells(*attempts(filters), {}, filters) if p95 else attempt_cells(lake, filters)
    query = METRIC_SERIES.format(
        rows=cells.sql,
        grain=grain,
        value=VALUES[metric],
        periods=PERIODS.format(grain=grain),
        filled="coalesce(per_period.value, 0)" if metric in COUNTS else "per_period.value",
        preceding=MOVING_PERIODS[grain] - 1,
    )
    params = [*cells.params, filters.start, filters.end]
    return frame(lake, query, params, cells.tables, cells.within)


# The standard scores come from their sums and counts in the attempt cells (`queries.cells`; one
# aggregate each, unpivoted after grouping); the custom ones from the score cells, which add up
# every job's score map once per day (reading a year of maps took 0.1 s from the job sample).
QUALITY_TRENDS = """
with cells as ({cells}),
score_cells as ({score_cells}),
standard_wide as (
    select cast(date_trunc('{grain}', date) as date) as period, {standard_values}
    from cells
    group by period
),
custom as (
    select cast(date_trunc('{grain}', date) as date) as period, score,
        sum(value_sum) / sum(value_n) as value, cast(sum(value_n) as bigint) as jobs
    from score_cells
    group by period, score
    having sum(value_n) > 0
),
per_period as materialized (
{standard_rows}
    union all
    select period, score, value, jobs from custom
),
{periods},
names as (
    select distinct score
    from per_period
)
select periods.period, names.score, per_period.value, coalesce(per_period.jobs, 0) as jobs,
    avg(per_period.value) over (
        partition by names.score
        order by periods.period rows between {preceding} preceding and current row
    ) as moving_avg
from periods
cross join names
left join per_period on per_period.period = periods.period and per_period.score = names.score
order by periods.period, names.score
"""
STANDARD_ROW = """    select period, '{score}' as score, "v:{score}" as value, "n:{score}" as jobs
    from standard_wide
    where "n:{score}" > 0"""


def quality_trends(lake: Path, filters: Filters, grain: str = "day") -> pl.DataFrame:
    """One row per period and quality score, standard or custom, that any completed job in
    range sent: the average score, the jobs that sent it and its moving average.

    Periods and moving averages as in `metric_series`; in a period where no job sent the score
    the value is null and jobs 0. Every job counts, over any range: the standard scores are
    added up from the attempt cells, the custom ones from the score cells (`queries.cells`).
    """
    _check_grain(grain)
    cells = attempt_cells(lake, filters)
    scores = score_cells(lake, filters)
    query = QUALITY_TRENDS.format(
        cells=cells.sql,
        score_cells=scores.sql,
        grain=grain,
        standard_values=", ".join(
            f'sum({s}_sum) / nullif(sum({s}_n), 0) as "v:{s}", '
            f'cast(coalesce(sum({s}_n), 0) as bigint) as "n:{s}"'
            for s in STANDARD_SCORES
        ),
        standard_rows="\n    union all\n".join(
            STANDARD_ROW.format(score=s) for s in STANDARD_SCORES
        ),
        periods=PERIODS.format(grain=grain),
        preceding=MOVING_PERIODS[grain] - 1,
    )
    params = [*cells.params, *scores.params, filters.start, filters.end]
    return frame(lake, query, params, cells.tables | scores.tables, within(cells, scores))
