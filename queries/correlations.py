"""Parameters against quality: Pearson and Spearman correlations per workflow, the scatter behind
one of them, and the best and worst parameter configurations.

One scan fetches each job's numeric parameters and scores as columns (a bounded sample per
workflow); the correlations run in numpy (`queries.statistics`). Parameter and score names are
map keys, bound as values, never spliced into SQL. Nothing here knows a page or Streamlit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from lake.sample import SAMPLE_RATE
from lake.tables import STANDARD_SCORES
from queries import statistics as st
from queries.base import SAMPLE_SCALE, Filters, column, frame, job_source, sample_shares
from queries.cells import LEVELS_PER_DAY, attempt_cells, level_cells
from queries.workflows import workflow_jobs

#: Fewest jobs with both values for a correlation: r of two points is always +-1.
MIN_PAIRS = 3
#: Jobs per workflow a correlation is computed on at most: past it, a fixed pseudo-random sample
#: (by a hash of the event id) of about this many; r is then within about +-0.03 of all jobs'.
MAX_JOBS = 5000

CORRELATION_SCHEMA: dict[str, pl.DataType] = {
    "workflow_id": pl.String(),
    "param": pl.String(),
    "score": pl.String(),
    "pearson_r": pl.Float64(),
    "spearman_r": pl.Float64(),
    "n": pl.Int64(),
}

# The sampled jobs: every numeric parameter and score, as parallel key and value lists, and the
# hash that orders them (in Python: ordering 100,000 rows of lists in SQL cost 0.2 s).
CORRELATION_VALUES = """
select workflow_id, hash(event_id) as job_hash,
    map_keys(params_num) as param_keys, map_values(params_num) as param_values,
    map_keys(quality_scores) as score_keys, map_values(quality_scores) as score_values
from {source}
where {where}
    and hash(event_id) % {scale} < {keep}
"""


def correlations(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per workflow, numeric parameter and quality score with at least 3 jobs having
    both and neither constant: pearson_r, spearman_r (average ranks for ties) and n.

    Ordered by workflow_id, then the strongest Spearman correlation first. A workflow with more
    than MAX_JOBS jobs is sampled down to about that many (n says how many were used). The jobs
    are drawn from the lake's job sample over a large range, or where it holds MAX_JOBS of
    every workflow (`jobs_source`).
    """
    where, params = filters.where("jobs")
    jobs, source, rate = jobs_source(lake, filters)
    # A workflow's share of the sample is sized on the jobs it is expected to hold (1 in
    # `rate`), not counted: about MAX_JOBS either way.
    expected = jobs.with_columns(pl.col("jobs") // rate)
    keep, shares = sample_shares(expected, "workflow_id", MAX_JOBS)
    sql = CORRELATION_VALUES.format(where=where, keep=keep, scale=SAMPLE_SCALE, source=source)
    sampled = frame(lake, sql, [*params, *shares], within=filters)
    # Parameter and score names are those of the sampled jobs: a name no sampled job has could
    # not reach MIN_PAIRS in the sample anyway.
    x, keys = _wide(sampled, "param_keys", "param_values")
    y, scores = _wide(sampled, "score_keys", "score_values")
    if not keys or not scores:
        return pl.DataFrame(schema=CORRELATION_SCHEMA)
    # By workflow, then in an order of their own whatever order the scan returned them in (the
    # same sums every time): numpy orders the matrices in 3 ms, Polars the lists in 20.
    workflows = sampled.get_column("workflow_id")
    codes = workflows.rank("dense").to_numpy() - 1  # a workflow's place among the sorted ids
    order = np.lexsort((sampled.get_column("job_hash").to_numpy(), codes))
    ids = workflows.unique().sort().to_list()
    rows = list(_correlated(codes[order], ids, x[order], y[order], keys, scores))
    result = pl.DataFrame(rows, schema=CORRELATION_SCHEMA, orient="row")
    return result.sort(
        [pl.col("workflow_id"), pl.col("spearman_r").abs(), pl.col("param"), pl.col("score")],
        descending=[False, True, False, False],
    )


def jobs_source(lake: Path, filters: Filters) -> tuple[pl.DataFrame, str, int]:
    """The completed jobs per workflow within `filters` (workflow_id, jobs; from the attempt
    cells), the table the correlations read them from and its rate (`queries.base.job_source`).

    The job sample is read over a large range, and also where every workflow ran SAMPLE_RATE x
    MAX_JOBS jobs or more: the sample then holds the MAX_JOBS a workflow's correlations keep
    (one busy workflow over 30 days: 0.04 s from the sample, 0.38 s from every job's maps)."""
    jobs = workflow_jobs(lake, filters).filter(pl.col("jobs") > 0).select("workflow_id", "jobs")
    counts = jobs.get_column("jobs").to_list()
    enough = bool(counts) and min(counts) >= SAMPLE_RATE * MAX_JOBS
    source, rate = job_source(lake, filters, sum(counts), holds_enough=enough)
    return jobs, source, rate


def _wide(sampled: pl.DataFrame, keys: str, values: str) -> tuple[np.ndarray, list[str]]:
    """The key and value lists of `sampled` as a matrix, one row per sampled job in order and one
    column per key (sorted names, NaN where a job lacks it or its value is null); and the names.

    Each value lands at (its job, its key's place) in one numpy assignment: a Polars pivot of
    the exploded lists took 0.3 s for 100,000 jobs."""
    key_lists = sampled.get_column(keys).to_arrow()
    if isinstance(key_lists, pa.ChunkedArray):
        key_lists = key_lists.combine_chunks()
    flat_keys = pc.list_flatten(key_lists)
    if len(flat_keys) == 0:
        return np.empty((sampled.height, 0)), []
    jobs = pc.list_parent_indices(key_lists).to_numpy()
    flat_values = pc.list_flatten(sampled.get_column(values).to_arrow()).cast(pa.float64())
    encoded = pc.dictionary_encode(flat_keys)
    found = encoded.dictionary.to_pylist()
    names = sorted(found)
    place = np.argsort(np.argsort(found))  # a found name's index -> its place among the names
    matrix = np.full((sampled.height, len(names)), np.nan)
    matrix[jobs, place[encoded.indices.to_numpy()]] = pc.fill_null(flat_values, np.nan).to_numpy()
    return matrix, names


def _correlated(
    codes: np.ndarray,
    ids: list[str],
    x: np.ndarray,
    y: np.ndarray,
    keys: list[str],
    scores: list[str],
) -> Iterator[tuple[str, str, str, float, float, int]]:
    """Rows of CORRELATION_SCHEMA: each workflow's parameter and score pairs where r is defined
    (`codes`: the workflow of each row of x and y, sorted, as its place in `ids`)."""
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    for start, stop in zip(starts, [*starts[1:], len(codes)], strict=True):
        pairs = st.correlations(x[start:stop], y[start:stop], MIN_PAIRS)
        for i, j, pearson_r, spearman_r, n in pairs:
            yield ids[codes[start]], keys[i], scores[j], pearson_r, spearman_r, n


SCATTER = """
select job_id, params_num[?] as param_value, quality_scores[?] as score_value
from {source}
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

    Past `limit` jobs, a fixed pseudo-random sample (by a hash of the event id) of that many,
    drawn from the lake's job sample where `correlations` of this workflow alone reads it.
    """
    if limit < 1:
        raise ValueError(f"limit: must be >= 1, got {limit}")
    where, params = filters.where("jobs")
    # The same source as `correlations` of this workflow alone (as the Quality page asks), so
    # the points are the jobs its row was computed on (before its own thinning).
    _, source, _ = jobs_source(lake, replace(filters, workflows=(workflow,)))
    sample = SCATTER.format(where=where, source=source)
    return frame(
        lake,
        SCATTER_ORDERED.format(sample=sample),
        [param, score, *params, workflow, param, score, limit],
        within=filters,
    )


#: What a configuration can be ranked by -> True where higher is better.
TOP_BY: dict[str, bool] = {"time_per_frame_ms": False} | {s: True for s in STANDARD_SCORES}
#: A parameter with more distinct values than this in a workflow, or than half its jobs, varies
#: per job (a seed, a continuous strength) and is left out of the configuration. The level cells
#: count each day's values up to this many.
MAX_LEVELS = LEVELS_PER_DAY

# A configuration is a job's parameters (as text, sorted by name) that take at most MAX_LEVELS
# values in its workflow. Which parameters those are is read off the level cells
# (`queries.cells.level_cells`: every completed job's parameters, per day and workflow). Every
# job is then grouped on those parameters' values, one column each (null where the parameter is
# not one of its workflow's levels), and only the groups are turned into text: 2x faster than
# building the text per job. Ranks are per workflow; a configuration in its workflow's top n is
# not listed again among the bottom.
COMPLETED_JOBS = """
with cells as ({cells})
select cast(coalesce(sum(attempts), 0) as bigint) as jobs
from cells
where completed
"""
CONFIGURATION_LEVELS = """
with cells as ({cells})
select name, list(workflow_id order by workflow_id) as workflows
from (
    select workflow_id, name
    from cells
    group by workflow_id, name
    having not bool_or(many) and count(distinct value) <= least(?, sum(jobs) / 2)
)
group by name
order by name
"""
TOP_CONFIGURATIONS = """
with stats as (
    select workflow_id, {levels}, count(*) as jobs, avg(value) as value
    from (
        select workflow_id, {value} as value, {extract}
        from {source}
        where {where}
            and {value} is not null
    )
    group by all
    -- A configuration with no level has no text. Asked of an aggregate, so that DuckDB does
    -- not push it below the grouping, onto every job (160 ms for a year of the job sample).
    having count(*) >= ? and bool_or(coalesce({levels}) is not null)
),
named as (
    select workflow_id, concat_ws(', ', {pairs}) as params, jobs, value
    from stats
),
ranked as (
    select workflow_id, params, jobs, value,
        row_number() over (partition by workflow_id order by value {best}, params) as best_rank,
        row_number() over (partition by workflow_id order by value {worst}, params) as worst_rank
    from named
)
select workflow_id, params, jobs, value,
    case when best_rank <= ? then 'top' else 'bottom' end as rank_group,
    case when best_rank <= ? then best_rank else worst_rank end as rank
from ranked
where best_rank <= ? or worst_rank <= ?
order by workflow_id, rank_group desc, rank
"""
_NO_CONFIGURATIONS = {
    "workflow_id": pl.String,
    "params": pl.String,
    "jobs": pl.Int64,
    "value": pl.Float64,
    "rank_group": pl.String,
    "rank": pl.Int64,
    "sample_rate": pl.Int64,
}


def top_configurations(
    lake: Path, filters: Filters, min_jobs: int = 5, by: str = "likeness", n: int = 10
) -> pl.DataFrame:
    """One row per parameter configuration among the n best and n worst of its workflow by the
    average of `by`, over configurations with at least `min_jobs` jobs having a value: workflow_id,
    params (e.g. "cfg_scale=7.0, steps=30"), jobs, value, rank_group ('top'|'bottom'), rank
    (1 = best of the top, worst of the bottom), sample_rate. A configuration appears once.

    Over a large range the jobs are those of the lake's job sample (`queries.base.job_source`):
    sample_rate is then 16 (a counted job stands for 16), else 1 (every job counted).
    """
    if by not in TOP_BY:
        raise ValueError(f"by: must be one of {', '.join(TOP_BY)}, got {by!r}")
    if min_jobs < 1:
        raise ValueError(f"min_jobs: must be >= 1, got {min_jobs}")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    where, params = filters.where("jobs")
    value = column("jobs", by)
    found = attempt_cells(lake, filters)
    sql = COMPLETED_JOBS.format(cells=found.sql)
    jobs = frame(lake, sql, found.params, found.tables, found.within).item()
    source, rate = job_source(lake, filters, int(jobs))
    found = level_cells(lake, filters)
    sql = CONFIGURATION_LEVELS.format(cells=found.sql)
    levels = frame(lake, sql, [*found.params, MAX_LEVELS], found.tables, found.within)
    if levels.is_empty():
        return pl.DataFrame(schema=_NO_CONFIGURATIONS)
    # Level k: its value where it is a level of the job's workflow; names and workflows come
    # from the data, so they travel as bound parameters.
    names = levels["name"].to_list()
    extract = ", ".join(
        f"case when list_contains(?::varchar[], workflow_id) then params[?] end as l{k}"
        for k in range(len(names))
    )
    level_params = [v for name, wfs in levels.iter_rows() for v in (wfs, name)]
    pairs = ", ".join(f"? || '=' || l{k}" for k in range(len(names)))
    best, worst = ("desc", "asc") if TOP_BY[by] else ("asc", "desc")
    sql = TOP_CONFIGURATIONS.format(
        where=where,
        value=value,
        extract=extract,
        levels=", ".join(f"l{k}" for k in range(len(names))),
        pairs=pairs,
        best=best,
        worst=worst,
        source=source,
    )
    ranked = frame(
        lake, sql, [*level_params, *params, min_jobs, *names, n, n, n, n], within=filters
    )
    return ranked.with_columns(sample_rate=pl.lit(rate, pl.Int64))
