"""Side-by-side comparisons: workflows against each other, one workflow before and since a date,
one workflow's versions, each metric with its difference, interval and verdict, and the trade-off
sentences that put the claimed differences into words.

One SQL scan fetches the per-job values of the compared groups; the statistics run in numpy
(`queries.statistics`). Nothing here knows a page or Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lake.sample import SAMPLE_RATE
from queries import statistics as st
from queries.base import (
    SAMPLE_COVERAGE,
    SAMPLE_SCALE,
    Filters,
    column,
    frame,
    job_source,
    sample_shares,
)

#: Metric id -> label, in the order the rows come.
COMPARE_METRICS: dict[str, str] = {
    "avg_time_per_frame_ms": "time per frame",
    "p95_time_per_frame_ms": "p95 time per frame",
    "avg_gpu_time_ms": "GPU time per job",
    "avg_vram_peak_mb": "VRAM peak",
    "failure_rate": "failure rate",
    "avg_likeness": "likeness",
    "avg_face_confidence": "face_confidence",
    "avg_motion_quality": "motion_quality",
    "avg_boundary_ssim": "boundary_ssim",
}
LOWER_IS_BETTER = frozenset(
    {
        "avg_time_per_frame_ms",
        "p95_time_per_frame_ms",
        "avg_gpu_time_ms",
        "avg_vram_peak_mb",
        "failure_rate",
    }
)
#: Metrics that are the mean of a jobs column -> that column (nulls left out of the mean).
MEAN_COLUMNS: dict[str, str] = {
    "avg_time_per_frame_ms": "time_per_frame_ms",
    "avg_gpu_time_ms": "total_gpu_time_ms",
    "avg_vram_peak_mb": "vram_peak_mb",
    "avg_likeness": "likeness",
    "avg_face_confidence": "face_confidence",
    "avg_motion_quality": "motion_quality",
    "avg_boundary_ssim": "boundary_ssim",
}

COMPARISON_SCHEMA: dict[str, pl.DataType] = {
    "metric": pl.String(),
    "workflow_a": pl.String(),
    "workflow_b": pl.String(),
    "a": pl.Float64(),
    "b": pl.Float64(),
    "pct_diff": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "p_value": pl.Float64(),
    "n_a": pl.Int64(),
    "n_b": pl.Int64(),
    "verdict": pl.String(),
}

#: What "the same work" means: jobs are compared within these strata, weighted to a common mix.
MATCH_ON = ("resolution_tier", "gpu_model")

# Per group and stratum, every completed and failed attempt counted (the failure rate is failed /
# (completed + failed) attempts; the completed counts size each group's sample).
COMPARED_COUNTS = """
select grp, {match}, count(*) filter (where failed) as failures,
    count(*) filter (where not failed) as completed
from (
    select {group} as grp, {match}, false as failed
    from jobs
    where {jobs_where}
    union all
    select {group} as grp, {match}, true as failed
    from job_failures
    where {failures_where}
)
group by all
"""
# Completed jobs one row each: all of them, or in a big group a fixed pseudo-random sample by a
# hash of the event id. In no order: the statistics do not depend on it (`queries.statistics`).
COMPARED_JOBS = """
select {group} as grp, {match}, time_per_frame_ms, total_gpu_time_ms, vram_peak_mb, likeness,
    face_confidence, motion_quality, boundary_ssim
from {source}
where {jobs_where}
    and hash(event_id) % {scale} < {keep}
"""
# Completed jobs per compared group in the job sample.
SAMPLED_PER_GROUP = """
select {group} as grp, count(*) as sampled
from {source}
where {jobs_where}
group by all
"""
#: Completed jobs per compared group at most: past it, a fixed pseudo-random sample (by a hash of
#: the event id) of about this many. The sample's mean is then within about 1.2% of the whole
#: group's 95 times in 100, for values that vary by as much as their mean (time per frame
#: varies by a third of it: 0.4%); the comparison's cost stays bounded whatever the range
#: (two busy workflows over 30 days: 0.22 s, against 0.29 s with 50,000).
MAX_JOBS = 25_000

WORKFLOW_GROUP = "workflow_id"
PERIOD_GROUP = "case when date < ? then 'before' else 'since' end"
VERSION_GROUP = "workflow_version"


def compare_workflows(
    lake: Path, filters: Filters, workflows: Sequence[str], match_on: Sequence[str] = MATCH_ON
) -> pl.DataFrame:
    """One row per (workflow pair, metric): the second workflow given against the first, or with
    more than two, every workflow after the first against the first.

    With two, `a` is the first given and `b` the second; with more, `b` is always the first.
    pct_diff = (a - b) / b * 100. The filters' own workflow list is replaced by `workflows`.
    """
    ids = list(workflows)
    if len(ids) < 2:
        raise ValueError(f"workflows: need at least 2 to compare, got {len(ids)}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"workflows: each may be given once, got {', '.join(ids)}")
    values = _values(lake, replace(filters, workflows=tuple(ids)), WORKFLOW_GROUP, [], match_on)
    pairs = [(ids[0], ids[1])] if len(ids) == 2 else [(other, ids[0]) for other in ids[1:]]
    return _comparison(values, pairs, {i: i for i in ids})


def compare_periods(
    lake: Path, filters: Filters, workflow: str, split: date, match_on: Sequence[str] = MATCH_ON
) -> pl.DataFrame:
    """One row per metric: `workflow` since the UTC day `split` (a) against before it (b).

    Labels read "<workflow> since <split>" and "<workflow> before <split>".
    """
    values = _values(lake, replace(filters, workflows=(workflow,)), PERIOD_GROUP, [split], match_on)
    labels = {"since": f"{workflow} since {split}", "before": f"{workflow} before {split}"}
    return _comparison(values, [("since", "before")], labels)


def compare_versions(
    lake: Path,
    filters: Filters,
    workflow: str,
    version_a: str,
    version_b: str,
    match_on: Sequence[str] = MATCH_ON,
) -> pl.DataFrame:
    """One row per metric: `workflow` at workflow_version `version_a` (a) against `version_b` (b).

    Labels read "<workflow> <version>".
    """
    if version_a == version_b:
        raise ValueError(f"version_b: must differ from version_a, got {version_b!r} twice")
    values = _values(
        lake,
        replace(filters, workflows=(workflow,)),
        VERSION_GROUP,
        [],
        match_on,
        ("workflow_version in (?, ?)", [version_a, version_b]),
    )
    labels = {v: f"{workflow} {v}" for v in (version_a, version_b)}
    return _comparison(values, [(version_a, version_b)], labels)


def _values(
    lake: Path,
    filters: Filters,
    group: str,
    group_params: list[Any],
    match_on: Sequence[str],
    extra: tuple[str, list[Any]] = ("true", []),
) -> pl.DataFrame:
    """The compared jobs (one row each; a sample of about MAX_JOBS in a bigger group), then per
    group and stratum a row of failed and completed attempt counts (never sampled); `stratum`
    joins the match_on values (a null is a value of its own, '')."""
    # Failures are matched on the same columns, so both tables must declare them.
    names = [column("jobs", c) for c in match_on]
    for c in match_on:
        column("job_failures", c)
    match = ", ".join(names) if names else "'' as no_match"
    jobs_where, jobs_params = filters.where("jobs")
    failures_where, failures_params = filters.where("job_failures")
    condition, extra_params = extra
    jobs_where = f"{jobs_where} and {condition}"
    counts_sql = COMPARED_COUNTS.format(
        group=group,
        match=match,
        jobs_where=jobs_where,
        failures_where=f"{failures_where} and {condition}",
    )
    counts = frame(
        lake,
        counts_sql,
        [
            *group_params,
            *jobs_params,
            *extra_params,
            *group_params,
            *failures_params,
            *extra_params,
        ],
        within=filters,
    )
    per_group = counts.group_by("grp").agg(pl.col("completed").sum())
    # Groups so big that even the job sample holds MAX_JOBS of each draw from it: the same kind
    # of fixed pseudo-random sample, without reading every job of the range.
    # Each group's sampled jobs are counted under the same conditions: a group the sample does
    # not cover (days ingested before it) keeps every group on the jobs.
    source = "jobs"
    smallest = min(per_group.get_column("completed").to_list(), default=0)
    if smallest >= SAMPLE_RATE * MAX_JOBS:
        source, rate = job_source(lake, filters, int(per_group["completed"].sum()))
    if source != "jobs":
        sql = SAMPLED_PER_GROUP.format(group=group, source=source, jobs_where=jobs_where)
        held = frame(lake, sql, [*group_params, *jobs_params, *extra_params], within=filters)
        covered = per_group.join(held, on="grp", how="left").with_columns(
            pl.col("sampled").fill_null(0)
        )
        if (covered["sampled"] * rate >= SAMPLE_COVERAGE * covered["completed"]).all():
            per_group = covered.select("grp", completed=pl.col("sampled"))
        else:
            source = "jobs"
    keep, shares = sample_shares(per_group, group, MAX_JOBS)
    jobs_sql = COMPARED_JOBS.format(
        group=group, match=match, jobs_where=jobs_where, keep=keep, scale=SAMPLE_SCALE,
        source=source,
    )  # fmt: skip
    jobs = frame(
        lake,
        jobs_sql,
        [*group_params, *jobs_params, *extra_params, *(group_params if shares else []), *shares],
        within=filters,
    )
    stratum = (
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in match_on], separator="\x1f")
        if match_on
        else pl.lit("")
    )
    metrics = list(MEAN_COLUMNS.values())
    jobs = jobs.select(
        "grp", stratum.alias("stratum"), pl.lit(True).alias("is_job"), *metrics,
        pl.lit(0, pl.Int64).alias("failures"), pl.lit(0, pl.Int64).alias("completed"),
    )  # fmt: skip
    counts = counts.select(
        "grp", stratum.alias("stratum"), pl.lit(False).alias("is_job"),
        *(pl.lit(None, pl.Float64).alias(m) for m in metrics),
        pl.col("failures").cast(pl.Int64), pl.col("completed").cast(pl.Int64),
    )  # fmt: skip
    jobs = jobs.with_columns(pl.col(m).cast(pl.Float64) for m in metrics)
    return pl.concat([jobs, counts.sort("grp", "stratum")])


def _comparison(
    values: pl.DataFrame, pairs: list[tuple[str, str]], labels: dict[str, str]
) -> pl.DataFrame:
    """The rows of `pairs` (group a, group b), each metric tested at the family's level."""
    rng = np.random.default_rng(st.SEED)
    # Each stratum's place among the sorted distinct strata (as numpy's unique would number it).
    values = values.with_columns(code=pl.col("stratum").rank("dense").cast(pl.Int64) - 1)
    alpha = st.test_alpha(len(pairs) * len(COMPARE_METRICS))
    rows = []
    for a, b in pairs:
        group_a = values.filter(pl.col("grp") == a)
        group_b = values.filter(pl.col("grp") == b)
        for metric, diff in group_differences(group_a, group_b, alpha, rng).items():
            rows.append(
                {"metric": metric, "workflow_a": labels[a], "workflow_b": labels[b]}
                | {k: getattr(diff, k) for k in list(COMPARISON_SCHEMA)[3:]}
            )
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA, orient="row")


def group_differences(
    a: pl.DataFrame, b: pl.DataFrame, alpha: float, rng: np.random.Generator
) -> dict[str, st.Difference]:
    """Every metric of group a against group b, in COMPARE_METRICS order, each tested at `alpha`.

    `a` and `b` hold rows shaped as COMPARED_VALUES returns them plus `code`, the stratum as an
    integer 0..S-1 shared by both: one row per completed job (is_job) and per stratum a row of
    failed and completed attempt counts. Only strata where both groups have jobs count (matched
    work).
    """
    jobs_a, jobs_b = (g.filter(pl.col("is_job")) for g in (a, b))
    matrix_a, matrix_b = _matrix(jobs_a), _matrix(jobs_b)
    strata_a, strata_b = (j.get_column("code").to_numpy() for j in (jobs_a, jobs_b))
    mix = st.common_mix(strata_a, ~np.isnan(matrix_a), strata_b, ~np.isnan(matrix_b))
    *means_a, p95_a = st.stratified_estimates(matrix_a, strata_a, mix, rng, q=0.95)
    *means_b, p95_b = st.stratified_estimates(matrix_b, strata_b, mix, rng, q=0.95)
    out = {
        m: st.compare_estimates(ea, eb, alpha, st.MIN_JOBS)
        for m, ea, eb in zip(MEAN_COLUMNS, means_a, means_b, strict=True)
    }
    out["p95_time_per_frame_ms"] = st.compare_estimates(p95_a, p95_b, alpha, st.MIN_JOBS_P95)
    size = len(mix)
    failures_a, attempts_a = _attempts(a, size)
    failures_b, attempts_b = _attempts(b, size)
    out["failure_rate"] = st.compare_rates(
        failures_a, attempts_a, failures_b, attempts_b, alpha, st.MIN_JOBS
    )
    return {m: out[m] for m in COMPARE_METRICS}


def _matrix(jobs: pl.DataFrame) -> np.ndarray:
    """Jobs x MEAN_COLUMNS as float64, nulls as NaN (time per frame first)."""
    columns = [pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in MEAN_COLUMNS.values()]
    return jobs.select(columns).to_numpy().reshape(len(jobs), len(MEAN_COLUMNS))


def _attempts(group: pl.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Failed and all attempts per stratum code (0..size-1) of one group."""
    codes = group.get_column("code").to_numpy()
    failures = group.get_column("failures").cast(pl.Float64).to_numpy()
    completed = group.get_column("completed").cast(pl.Float64).to_numpy()
    failed = np.bincount(codes, weights=failures, minlength=size)
    return failed, failed + np.bincount(codes, weights=completed, minlength=size)


#: How a claimed difference reads: metric -> (a higher, a lower); "{}" takes "20% " or nothing.
PHRASES: dict[str, tuple[str, str]] = {
    "avg_time_per_frame_ms": ("is {}slower", "is {}faster"),
    "p95_time_per_frame_ms": (
        "has a {}slower p95 time per frame",
        "has a {}faster p95 time per frame",
    ),
    "avg_gpu_time_ms": ("uses {}more GPU time per job", "uses {}less GPU time per job"),
    "avg_vram_peak_mb": ("uses {}more VRAM", "uses {}less VRAM"),
    "failure_rate": ("fails {}more often", "fails {}less often"),
}


def tradeoff_sentences(comparison: pl.DataFrame) -> list[str]:
    """One sentence per (workflow_a, workflow_b) pair of a comparison, in its order.

    A difference is put into words only where the verdict claims one ("wf-a is 20% slower but
    produces 15% higher likeness scores than wf-b"): costs on one side of "but", gains on the
    other, the side with the earlier metric of COMPARE_METRICS first; the metrics without one
    are named after "no clear difference in" or "not enough data for".
    """
    pairs = comparison.select("workflow_a", "workflow_b").unique(maintain_order=True)
    sentences = []
    for a, b in pairs.iter_rows():
        rows = comparison.filter((pl.col("workflow_a") == a) & (pl.col("workflow_b") == b))
        sentences.append(_sentence(a, b, rows.select("metric", "pct_diff", "verdict").rows()))
    return sentences


def _sentence(a: str, b: str, rows: list[tuple[str, float | None, str]]) -> str:
    # Per side (costs, gains): phrases, then score differences that share one "produces ... scores".
    sides: tuple[tuple[list[str], list[str]], ...] = (([], []), ([], []))
    unclear: list[str] = []
    missing: list[str] = []
    order = {metric: i for i, metric in enumerate(COMPARE_METRICS)}
    firsts = [len(order), len(order)]  # position of each side's first claimed metric
    for metric, pct, verdict in rows:
        label = COMPARE_METRICS.get(metric, metric)
        if verdict in (st.HIGHER, st.LOWER):
            higher = verdict == st.HIGHER
            side = 0 if higher == (metric in LOWER_IS_BETTER) else 1
            firsts[side] = min(firsts[side], order.get(metric, len(order)))
            phrases, scores = sides[side]
            size = "" if pct is None else f"{_percent(abs(pct))} "
            if metric in PHRASES:
                phrases.append(PHRASES[metric][0 if higher else 1].format(size))
            else:
                scores.append(f"{size}{'higher' if higher else 'lower'} {label}")
        elif verdict == st.NO_CLEAR:
            unclear.append(label)
        else:
            missing.append(label)
    costs, gains = (
        phrases + ([f"produces {_joined(scores, 'and')} scores"] if scores else [])
        for phrases, scores in sides
    )
    if costs and gains:
        # The side holding the first metric (speed before quality) leads.
        first, then = (costs, gains) if firsts[0] < firsts[1] else (gains, costs)
        text = f"{a} {_joined(first, 'and')} but {_joined(then, 'and')} than {b}"
    elif costs or gains:
        text = f"{a} {_joined(costs or gains, 'and')} than {b}"
    elif unclear:
        where = _joined(unclear, "or") if missing else "any metric"
        text, unclear = f"No clear difference between {a} and {b} in {where}", []
    else:
        return f"Not enough data to compare {a} and {b}."
    if unclear:
        text += f"; no clear difference in {_joined(unclear, 'or')}"
    if missing:
        text += f"; not enough data for {_joined(missing, 'and')}"
    return text + "."


def _percent(size: float) -> str:
    """20% from 19.6, 7.2% from 7.24: two significant digits below 10, whole numbers above."""
    return f"{size:.0f}%" if size >= 9.95 else f"{size:.2g}%"


def _joined(items: list[str], last: str) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"
