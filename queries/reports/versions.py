"""Quality before and after a workflow version change: per workflow, the last two versions seen
in the period (ordered by their first job), compared on the quality scores, the failure rate and
the auto-QA pass rate.

Like `queries.compare.compare_versions` (same matched-work strata, same tests and verdict rules
from `queries.statistics`, Bonferroni-corrected over every test of the report) but with the
normal-approximation standard error of each stratum's mean instead of a bootstrap: a report
compares every changed workflow at once and must stay fast (compare_versions takes ~1 s per
workflow on the demo lake). One scan gives every workflow, version and stratum.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from queries import statistics as st
from queries.base import column, frame
from queries.compare import MATCH_ON
from queries.reports import wording as w
from queries.reports.model import Context

#: Compared score metric -> the jobs column averaged.
SCORES: dict[str, str] = {
    "avg_likeness": "likeness",
    "avg_face_confidence": "face_confidence",
    "avg_motion_quality": "motion_quality",
    "avg_boundary_ssim": "boundary_ssim",
}
#: Compared rate metric -> (events, trials) columns of the strata.
RATES: dict[str, tuple[str, str]] = {
    "failure_rate": ("failures", "attempts"),
    "qa_pass_rate": ("qa_passed", "qa_checked"),
}
LABELS = {
    "avg_likeness": "likeness",
    "avg_face_confidence": "face confidence",
    "avg_motion_quality": "motion quality",
    "avg_boundary_ssim": "boundary SSIM",
    "failure_rate": "failure rate",
    "qa_pass_rate": "QA pass rate",
}
VERDICTS = {
    st.HIGHER: "higher after",
    st.LOWER: "lower after",
    st.NO_CLEAR: st.NO_CLEAR,
    st.NOT_ENOUGH: st.NOT_ENOUGH,
}

SCHEMA = {
    "workflow_id": pl.String(),
    "version_before": pl.String(),
    "version_after": pl.String(),
    "after_since": pl.Date(),
    "metric": pl.String(),
    "before": pl.Float64(),
    "after": pl.Float64(),
    "pct_diff": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "p_value": pl.Float64(),
    "n_before": pl.Int64(),
    "n_after": pl.Int64(),
    "verdict": pl.String(),
}

_SCORE_COLUMNS = ",\n    ".join(
    f"count({c}) as n_{c}, avg({c}) as mean_{c}, coalesce(var_samp({c}), 0) as var_{c}"
    for c in SCORES.values()
)
VERSION_STRATA = f"""
with attempts as (
    select workflow_id, workflow_version, {{stratum}} as stratum, occurred_at, true as completed,
        qa_passed, likeness, face_confidence, motion_quality, boundary_ssim
    from jobs
    where {{jobs}} and workflow_version is not null
    union all
    select workflow_id, workflow_version, {{stratum}}, occurred_at, false, null, null, null, null,
        null
    from job_failures
    where {{failures}} and workflow_version is not null
)
select workflow_id, workflow_version, stratum,
    min(occurred_at) as first_seen,
    count(*) as attempts,
    count(*) filter (where not completed) as failures,
    count(qa_passed) as qa_checked,
    count(*) filter (where qa_passed) as qa_passed,
    {_SCORE_COLUMNS}
from attempts
group by workflow_id, workflow_version, stratum
order by workflow_id, workflow_version, stratum
"""


def _strata(ctx: Context) -> pl.DataFrame:
    parts = [f"coalesce({column('jobs', c)}, '')" for c in MATCH_ON]
    stratum = f"concat_ws(chr(31), {', '.join(parts)})"
    jobs, jobs_params = ctx.filters.where("jobs")
    failures, failure_params = ctx.filters.where("job_failures")
    sql = VERSION_STRATA.format(stratum=stratum, jobs=jobs, failures=failures)
    return frame(ctx.lake, sql, [*jobs_params, *failure_params])


def version_changes(ctx: Context) -> pl.DataFrame:
    """One row per workflow with two or more versions in the period and per compared metric: the
    second-last version (before) against the last (after), by workflow_id then metric."""
    strata = _strata(ctx)
    seen = (
        strata.group_by("workflow_id", "workflow_version")
        .agg(pl.col("first_seen").min())
        .sort(["workflow_id", "first_seen", "workflow_version"])
    )
    pairs = [
        (wf, group["workflow_version"][-2], group["workflow_version"][-1], group["first_seen"][-1])
        for (wf,), group in seen.group_by("workflow_id", maintain_order=True)
        if group.height >= 2
    ]
    alpha = st.test_alpha(max(1, len(pairs) * (len(SCORES) + len(RATES))))
    rows = []
    for workflow, before, after, since in pairs:
        mine = strata.filter(pl.col("workflow_id") == workflow)
        a = mine.filter(pl.col("workflow_version") == after)
        b = mine.filter(pl.col("workflow_version") == before)
        for metric, diff in _differences(a, b, alpha).items():
            rows.append(
                (workflow, before, after, since.date(), metric, diff.b, diff.a, diff.pct_diff,
                 diff.ci_low, diff.ci_high, diff.p_value, diff.n_b, diff.n_a,
                 VERDICTS[diff.verdict])
            )  # fmt: skip
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def _aligned(a: pl.DataFrame, b: pl.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Column `name` of both groups on the union of their strata (0 where a group has none)."""
    strata = sorted(set(a["stratum"].to_list()) | set(b["stratum"].to_list()))
    out = []
    for group in (a, b):
        values = dict(zip(group["stratum"].to_list(), group[name].to_list(), strict=True))
        out.append(np.array([float(values.get(s) or 0) for s in strata]))
    return out[0], out[1]


def _differences(a: pl.DataFrame, b: pl.DataFrame, alpha: float) -> dict[str, st.Difference]:
    """Every compared metric of a (after) against b (before), tested at `alpha`."""
    out = {}
    for metric, c in SCORES.items():
        n_a, n_b = _aligned(a, b, f"n_{c}")
        mean_a, mean_b = _aligned(a, b, f"mean_{c}")
        var_a, var_b = _aligned(a, b, f"var_{c}")
        matched = (n_a > 0) & (n_b > 0)
        mix = np.where(matched, n_a + n_b, 0.0)
        mix = mix / mix.sum() if mix.sum() else mix
        out[metric] = st.compare_estimates(
            _estimate(mix, n_a, mean_a, var_a, matched),
            _estimate(mix, n_b, mean_b, var_b, matched),
            alpha,
            st.MIN_JOBS,
        )
    for metric, (events, trials) in RATES.items():
        e_a, e_b = _aligned(a, b, events)
        t_a, t_b = _aligned(a, b, trials)
        out[metric] = st.compare_rates(e_a, t_a, e_b, t_b, alpha, st.MIN_JOBS)
    return out


def _estimate(
    mix: np.ndarray, n: np.ndarray, mean: np.ndarray, var: np.ndarray, matched: np.ndarray
) -> st.Estimate:
    """The mix-weighted mean of the matched strata and its standard error sqrt(sum w^2 s^2 / n)."""
    if not matched.any():
        return st.Estimate(None, None, 0)
    # Twelve significant digits: equal scores summed in another order must stay equal, or a
    # rounding error with a near-zero standard error would read as a real difference.
    value = float(f"{float(mix[matched] @ mean[matched]):.12g}")
    se = math.sqrt(float((mix[matched] ** 2) @ (var[matched] / n[matched])))
    return st.Estimate(value, se, int(n[matched].sum()))


def sentences(changes: pl.DataFrame) -> list[str]:
    """One sentence per workflow whose quality moved clearly with its last version change, then
    one naming the workflows where it did not."""
    if changes.is_empty():
        return ["No workflow changed version in the period."]
    lines, unclear = [], []
    for (workflow,), rows in changes.group_by("workflow_id", maintain_order=True):
        first = rows.row(0, named=True)
        claims = [_claim(r) for r in rows.rows(named=True) if r["verdict"] in _CLAIMS]
        if claims:
            lines.append(
                f"{workflow} {first['version_after']} (since {w.day(first['after_since'])}) "
                f"against {first['version_before']}: {w.joined(claims)}."
            )
        else:
            unclear.append(workflow)
    if unclear:
        lines.append(
            "No clear quality difference between the last two versions of "
            f"{w.joined(unclear)} (or too few jobs to tell)."
        )
    return lines


_CLAIMS = ("higher after", "lower after")


def _claim(row: dict) -> str:
    label, before, after = LABELS[row["metric"]], row["before"], row["after"]
    direction = "up" if row["verdict"] == "higher after" else "down"
    if row["metric"] in RATES:
        return f"{label} {direction} from {w.share(before)} to {w.share(after)}"
    return f"{label} {direction} {w.percent(abs(row['pct_diff']))} ({w.score(before)} to {w.score(after)})"
