"""Parameters against quality: Pearson and Spearman correlations per workflow, the scatter behind
one of them, and the best and worst parameter configurations.

The correlations are computed in DuckDB (only one row per workflow, parameter and score comes
back); parameter and score names are map keys, bound as values, never spliced into SQL. Nothing
here knows a page or Streamlit.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lake.tables import STANDARD_SCORES
from queries.base import Filters, column, frame

#: Fewest jobs with both values for a correlation: r of two points is always +-1.
MIN_PAIRS = 3

#: Jobs per workflow a correlation is computed on at most: past it, a fixed pseudo-random sample
#: (by a hash of the event id) of about this many; r is then within about +-0.03 of all jobs'.
MAX_JOBS = 5000

# Every job's numeric parameters crossed with its quality scores (custom ones included), both
# present. A correlation is left out below MIN_PAIRS jobs and where either side never varies
# (r is undefined there, not 0). Spearman is Pearson on average ranks: a value shared by c jobs
# after `below` smaller ones ranks below + (c + 1) / 2, computed per distinct value, not per job.
WORKFLOW_SIZES = """
select workflow_id, count(*) as jobs
from jobs
where {where}
group by workflow_id
having count(*) > ?
order by workflow_id
"""
CORRELATIONS = """
with params as (
    select workflow_id, unnest(map_entries(params_num)) as p, quality_scores
    from jobs
    where {where}
        and hash(event_id) % 1000000 < {keep}
),
scores as (
    select workflow_id, p.key as param, p.value as x, unnest(map_entries(quality_scores)) as s
    from params
),
pairs as (
    select workflow_id, param, x, s.key as score, s.value as y
    from scores
    where x is not null and s.value is not null and not isnan(x) and not isnan(s.value)
),
x_counts as (
    select workflow_id, param, score, x, count(*) as c
    from pairs
    group by workflow_id, param, score, x
),
x_ranks as (
    select workflow_id, param, score, x,
        sum(c) over (partition by workflow_id, param, score order by x) - (c - 1) / 2 as rx
    from x_counts
),
y_counts as (
    select workflow_id, param, score, y, count(*) as c
    from pairs
    group by workflow_id, param, score, y
),
y_ranks as (
    select workflow_id, param, score, y,
        sum(c) over (partition by workflow_id, param, score order by y) - (c - 1) / 2 as ry
    from y_counts
)
select workflow_id, param, score, corr(x, y) as pearson_r, corr(rx, ry) as spearman_r,
    count(*) as n
from pairs
join x_ranks using (workflow_id, param, score, x)
join y_ranks using (workflow_id, param, score, y)
group by workflow_id, param, score
having count(*) >= ? and min(x) < max(x) and min(y) < max(y)
order by workflow_id, abs(spearman_r) desc, param, score
"""


def correlations(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per workflow, numeric parameter and quality score with at least 3 jobs having
    both and neither constant: pearson_r, spearman_r (average ranks for ties) and n.

    Ordered by workflow_id, then the strongest Spearman correlation first.
    """
    where, params = filters.where("jobs")
    big = frame(lake, WORKFLOW_SIZES.format(where=where), [*params, MAX_JOBS])
    # Per big workflow, the share of hash values kept (in millionths); the rest keep every job.
    cases = " ".join("when ? then ?" for _ in range(len(big)))
    keep = f"case workflow_id {cases} else 1000000 end" if len(big) else "1000000"
    shares = [
        value
        for workflow, jobs in big.iter_rows()
        for value in (workflow, 1_000_000 * MAX_JOBS // jobs)
    ]
    sql = CORRELATIONS.format(where=where, keep=keep)
    return frame(lake, sql, [*params, *shares, MIN_PAIRS])


SCATTER = """
select job_id, params_num[?] as param_value, quality_scores[?] as score_value
from jobs
where {where}
    and workflow_id = ?
    and params_num[?] is not null
    and quality_scores[?] is not null
order by hash(event_id), event_id
limit ?
"""
SCATTER_ORDERED = """
select job_id, param_value, score_value
from ({sample})
order by param_value, score_value, job_id
"""


def scatter(
    lake: Path, filters: Filters, workflow: str, param: str, score: str, limit: int = 5000
) -> pl.DataFrame:
    """One row per job of `workflow` with both the numeric parameter and the score: job_id,
    param_value, score_value; ordered by param_value, score_value, job_id.

    Past `limit` jobs, a fixed pseudo-random sample (by a hash of the event id) of that many.
    """
    if limit < 1:
        raise ValueError(f"limit: must be >= 1, got {limit}")
    where, params = filters.where("jobs")
    sample = SCATTER.format(where=where)
    return frame(
        lake,
        SCATTER_ORDERED.format(sample=sample),
        [param, score, *params, workflow, param, score, limit],
    )


#: What a configuration can be ranked by -> True where higher is better.
TOP_BY: dict[str, bool] = {"time_per_frame_ms": False} | {s: True for s in STANDARD_SCORES}
#: A parameter with more distinct values than this in a workflow, or than half its jobs, varies
#: per job (a seed, a continuous strength) and is left out of the configuration.
MAX_LEVELS = 12

# A configuration is a job's parameters (as text, sorted by name) that take at most MAX_LEVELS
# values in its workflow. Ranks are per workflow; a configuration in its workflow's top n is
# not listed again among the bottom.
TOP_CONFIGURATIONS = """
with entries as (
    select workflow_id, event_id, {value} as value, unnest(map_entries(params)) as e
    from jobs
    where {where}
        and {value} is not null
),
levels as (
    select workflow_id, e.key as name
    from entries
    group by workflow_id, e.key
    having count(distinct e.value) <= least(?, count(*) / 2)
),
configurations as (
    select entries.workflow_id, entries.event_id, any_value(entries.value) as value,
        string_agg(entries.e.key || '=' || entries.e.value, ', ' order by entries.e.key) as params
    from entries
    semi join levels
        on entries.workflow_id = levels.workflow_id and entries.e.key = levels.name
    group by entries.workflow_id, entries.event_id
),
stats as (
    select workflow_id, params, count(*) as jobs, avg(value) as value
    from configurations
    group by workflow_id, params
    having count(*) >= ?
),
ranked as (
    select workflow_id, params, jobs, value,
        row_number() over (partition by workflow_id order by value {best}, params) as best_rank,
        row_number() over (partition by workflow_id order by value {worst}, params) as worst_rank
    from stats
)
select workflow_id, params, jobs, value,
    case when best_rank <= ? then 'top' else 'bottom' end as rank_group,
    case when best_rank <= ? then best_rank else worst_rank end as rank
from ranked
where best_rank <= ? or worst_rank <= ?
order by workflow_id, rank_group desc, rank
"""


def top_configurations(
    lake: Path, filters: Filters, min_jobs: int = 5, by: str = "likeness", n: int = 10
) -> pl.DataFrame:
    """One row per parameter configuration among the n best and n worst of its workflow by the
    average of `by`, over configurations with at least `min_jobs` jobs having a value: workflow_id,
    params (e.g. "cfg_scale=7.0, steps=30"), jobs, value, rank_group ('top'|'bottom'), rank
    (1 = best of the top, worst of the bottom). A configuration appears once.
    """
    if by not in TOP_BY:
        raise ValueError(f"by: must be one of {', '.join(TOP_BY)}, got {by!r}")
    if min_jobs < 1:
        raise ValueError(f"min_jobs: must be >= 1, got {min_jobs}")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    where, params = filters.where("jobs")
    best, worst = ("desc", "asc") if TOP_BY[by] else ("asc", "desc")
    sql = TOP_CONFIGURATIONS.format(where=where, value=column("jobs", by), best=best, worst=worst)
    return frame(lake, sql, [*params, MAX_LEVELS, min_jobs, n, n, n, n])
