"""The statistics behind comparisons and correlations: matched-work weights, bootstrap standard
errors, the tests that decide a verdict, and Pearson and Spearman correlations.

Pure numpy on arrays of per-job values; no SQL, no lake, no polars. Jobs carry a stratum code
(the kind of work: resolution tier and GPU model, say); two groups are compared on the strata
both ran, each stratum weighted by its share of the two groups' jobs together (direct
standardisation), so that a workflow is not called slower for having been sent heavier work.
A verdict claims a difference only when its test rejects "no difference" at a Bonferroni-corrected
level, so that across every metric and pair of one comparison the chance of claiming any
difference that is not there stays at or below `FAMILY_ALPHA`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: Chance of claiming at least one difference that is not there, across one comparison.
FAMILY_ALPHA = 0.05
#: Bootstrap resamples of a quantile per group at most; a standard error needs far fewer than a
#: tail percentile.
RESAMPLES = 1000
#: ... and at least; between the two, resamples x jobs stays within DRAWS_BUDGET.
MIN_RESAMPLES = 200
DRAWS_BUDGET = 1_000_000
#: A bigger group's quantile is bootstrapped on a random subsample of this many jobs, the
#: standard error scaled back by sqrt(subsample / jobs); the estimate itself uses every job.
MAX_RESAMPLED = 5_000
#: Jobs per side below which a mean or rate is 'not enough data': the normal approximation
#: behind a Bonferroni-corrected z is not trusted on fewer.
MIN_JOBS = 30
#: Jobs per side below which a p95 is 'not enough data': at least 5 jobs above the 95th percentile.
MIN_JOBS_P95 = 100
#: Expected events (failures, under "no difference") per side below which a rate is 'not enough
#: data' unless both rates are equal: the normal approximation of a count needs about 5.
MIN_EVENTS = 5
#: Fixed seed: the same data gives the same intervals every time.
SEED = 20250601
#: Resamples per chunk of the count matrix, to bound memory (chunk x jobs float64).
_CHUNK = 200

HIGHER = "a higher"
LOWER = "a lower"
NO_CLEAR = "no clear difference"
NOT_ENOUGH = "not enough data"
VERDICTS = (HIGHER, LOWER, NO_CLEAR, NOT_ENOUGH)


@dataclass(frozen=True)
class Estimate:
    """A statistic of one group of jobs, its bootstrap standard error and the jobs it rests on."""

    value: float | None
    se: float | None
    n: int


@dataclass(frozen=True)
class Difference:
    """a against b: pct_diff = (a - b) / b * 100, its confidence interval (in %) and the verdict."""

    a: float | None
    b: float | None
    pct_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_a: int
    n_b: int
    verdict: str


def test_alpha(tests: int) -> float:
    """The level of each of `tests` tests that keeps the family's error at FAMILY_ALPHA (Bonferroni)."""
    if tests < 1:
        raise ValueError(f"tests: must be >= 1, got {tests}")
    return FAMILY_ALPHA / tests


def common_mix(
    strata_a: np.ndarray, present_a: np.ndarray, strata_b: np.ndarray, present_b: np.ndarray
) -> np.ndarray:
    """Weight of each stratum (rows, codes 0..S-1) per column (present: jobs x columns): its share
    of both groups' present values, over the strata where both groups have one; 0 elsewhere."""
    strata = max(int(np.max(strata_a, initial=-1)), int(np.max(strata_b, initial=-1))) + 1
    count_a = _stratum_counts(strata_a, present_a, strata)
    count_b = _stratum_counts(strata_b, present_b, strata)
    both = np.where((count_a > 0) & (count_b > 0), count_a + count_b, 0.0)
    total = both.sum(axis=0)
    return np.divide(both, total, out=np.zeros_like(both), where=total > 0)


def _columns(values: np.ndarray, dtype: type) -> np.ndarray:
    """`values` as a 2-D array (jobs x columns): a 1-D array is one column."""
    values = np.asarray(values, dtype=dtype)
    return values[:, None] if values.ndim == 1 else values


def _stratum_counts(strata: np.ndarray, present: np.ndarray, size: int) -> np.ndarray:
    present = _columns(present, bool)
    return np.column_stack([np.bincount(strata[col], minlength=size) for col in present.T]).astype(
        np.float64
    )


def _job_weights(strata: np.ndarray, present: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Per job and column: its stratum's weight shared among the group's present values there."""
    present = _columns(present, bool)
    counts = _stratum_counts(strata, present, len(mix))
    share = np.divide(mix, counts, out=np.zeros_like(mix), where=counts > 0)
    return np.where(present, share[strata], 0.0)


def _counts(
    strata: np.ndarray, rng: np.random.Generator, resamples: int, to: np.ndarray
) -> Iterator[np.ndarray]:
    """Stratified bootstrap resamples of jobs sorted by stratum, as counts (chunk x jobs): row r
    holds how often each job is drawn, every stratum keeping its size; job i's count lands in
    column to[i]."""
    n = len(strata)
    starts = np.searchsorted(strata, strata, side="left")
    sizes = np.searchsorted(strata, strata, side="right") - starts
    for first in range(0, resamples, _CHUNK):
        rows = min(_CHUNK, resamples - first)
        draws = to[(rng.random((rows, n)) * sizes).astype(np.int64) + starts]
        draws += (np.arange(rows) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def _canonical(values: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by stratum, then by a hash of their values' bits: an order that depends only on
    the rows (equal rows are interchangeable), so whatever order the jobs came in, the sums add
    up the same way and the bootstrap draws the same values. Two sort keys instead of one per
    column: 7 ms for 50,000 jobs against 37 ms."""
    key = np.zeros(len(strata), dtype=np.uint64)
    for col in np.ascontiguousarray(values).view(np.uint64).T:
        key = (key ^ col) * np.uint64(0x9E3779B97F4A7C15)  # wraps around, as meant
    order = np.lexsort((key, strata))
    return values[order], strata[order]


def _prepared(
    values: np.ndarray, strata: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Values and strata, sorted by stratum, subsampled past MAX_RESAMPLED (keeping that order),
    the resamples to draw and the factor that scales a subsample's standard error to the whole
    group."""
    n = len(strata)
    scale = 1.0
    if n > MAX_RESAMPLED:
        keep = np.sort(rng.choice(n, size=MAX_RESAMPLED, replace=False))
        values, strata, scale = values[keep], strata[keep], math.sqrt(MAX_RESAMPLED / n)
    resamples = max(MIN_RESAMPLES, min(RESAMPLES, DRAWS_BUDGET // max(len(strata), 1)))
    return values, strata, resamples, scale


def stratified_estimates(
    values: np.ndarray,
    strata: np.ndarray,
    mix: np.ndarray,
    rng: np.random.Generator,
    q: float = 0.95,
    quantile_of: int = 0,
) -> list[Estimate]:
    """One estimate per column of `values` (jobs x columns, NaN = null): the mix-weighted mean of
    its present values; then one more: the mix-weighted q-quantile of column `quantile_of` (the
    smallest value with at least a share q of the weight at or below it).

    A mean's standard error is that of a stratified bootstrap (each stratum's jobs resampled
    within it), in its closed form: the linearised variance of the weighted mean. The quantile's
    comes from such a bootstrap itself."""
    values = _columns(values, np.float64)
    strata = np.asarray(strata, dtype=np.int64)
    if len(strata) == 0:
        return [Estimate(None, None, 0)] * (values.shape[1] + 1)
    values, strata = _canonical(values, strata)
    present = ~np.isnan(values)
    weights = _job_weights(strata, present, mix)
    used = [*(weights > 0).sum(axis=0), (weights[:, quantile_of] > 0).sum()]
    means = (weights * np.nan_to_num(values)).sum(axis=0)
    spreads = [*_mean_spread(values, strata, weights)]
    points = [*means]
    if used[-1]:
        order = np.argsort(values[:, quantile_of], kind="stable")
        tail_weights = weights[order, quantile_of][None, :]
        points.append(_weighted_quantile(values[order, quantile_of], tail_weights, q)[0])
        spreads.append(
            _quantile_spread(values[:, quantile_of], strata, mix[:, quantile_of], rng, q)
        )
    else:
        points.append(math.nan)
        spreads.append(math.nan)
    return [
        Estimate(float(p), float(s) if np.isfinite(s) else None, int(k))
        if k
        else Estimate(None, None, 0)
        for p, s, k in zip(points, spreads, used, strict=True)
    ]


def _mean_spread(values: np.ndarray, strata: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per column, the standard error of the weighted mean sum_s mix_s * mean_s under a
    stratified bootstrap, to first order: with a_i = w_i (x_i - mean_s) (0 for a null; mean_s
    its stratum's mean of present values), the sum over strata of n_s times the variance of a
    within the stratum's n_s jobs (the nulls drawn too). Deviating from the overall mean instead
    would add each stratum's distance to it, times how much its count of present values varies
    between resamples: an error six times too large where one stratum's values are half null."""
    # Per-stratum sums as products with the strata's indicator matrix: every column at once.
    members = np.zeros((len(strata), int(strata.max()) + 1))
    members[np.arange(len(strata)), strata] = 1.0
    filled = np.nan_to_num(values)
    weight = members.T @ weights
    stratum_mean = np.divide(
        members.T @ (weights * filled), weight, out=np.zeros_like(weight), where=weight > 0
    )
    a = np.where(weights > 0, weights * (filled - stratum_mean[strata]), 0.0)
    jobs = members.sum(axis=0)[:, None]
    sums, squares = members.T @ a, members.T @ (a * a)
    per_stratum = squares - np.divide(sums**2, jobs, out=np.zeros_like(sums), where=jobs > 0)
    return np.sqrt(np.maximum(per_stratum.sum(axis=0), 0.0))


def _quantile_spread(
    column: np.ndarray, strata: np.ndarray, mix: np.ndarray, rng: np.random.Generator, q: float
) -> float:
    """The stratified bootstrap standard error of the mix-weighted q-quantile of one column.

    In each resample a stratum's drawn present values share its weight in the mix, however
    many of them were drawn (a null is drawn too, and weighs nothing)."""
    sample, sample_strata, resamples, scale = _prepared(column, strata, rng)
    present = ~np.isnan(sample)
    # Counts land in the order of the values, as the quantile reads them.
    order = np.argsort(sample, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    tail_values = sample[order]
    # Per value in that order: its stratum's weight, and which stratum's present values it adds to.
    size = len(mix)
    stratum = sample_strata[order]
    share = np.where(present[order], mix[stratum], 0.0)
    members = np.zeros((len(order), size))
    members[np.arange(len(order)), stratum] = present[order]
    # Without a null, every resample draws each stratum's size of present values: one weight.
    fixed = share / (members.sum(axis=0)[stratum]) if present.all() else None
    replicates = []
    for counts in _counts(sample_strata, rng, resamples, rank):
        if fixed is None:
            drawn = counts @ members  # resamples x strata: present values drawn
            per_drawn = np.divide(1.0, drawn, out=np.zeros_like(drawn), where=drawn > 0)
            weight = share * per_drawn[:, stratum]
        else:
            weight = fixed
        replicates.append(_weighted_quantile(tail_values, counts * weight, q))
    return float(_spread(np.concatenate(replicates)[:, None])[0]) * scale


def _spread(replicates: np.ndarray) -> np.ndarray:
    """Standard deviation per column over the finite replicates (NaN below two of them); a
    resample can miss every present value of a sparse column, leaving that replicate undefined."""
    finite = np.isfinite(replicates)
    count = finite.sum(axis=0)
    values = np.where(finite, replicates, 0.0)
    mean = values.sum(axis=0) / np.maximum(count, 1)
    squares = (np.where(finite, replicates - mean, 0.0) ** 2).sum(axis=0)
    return np.where(count >= 2, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan)


def _weighted_quantile(ordered: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Per row of weights (rows x jobs, in the order of the sorted `ordered` values): the smallest
    value whose running share of the row's weight reaches q; NaN for a row without weight."""
    running = np.cumsum(weights, axis=1)
    # A small tolerance keeps 0.95 of 20 equal weights from missing the 19th by a rounding error.
    below = (running < (q - 1e-9) * running[:, -1:]).sum(axis=1)
    found = ordered[np.minimum(below, len(ordered) - 1)]
    return np.where(running[:, -1] > 0, found, np.nan)


def compare_estimates(a: Estimate, b: Estimate, alpha: float, min_jobs: int) -> Difference:
    """a against b: a z-test of log(a / b) with the bootstrap standard errors (of a - b where a
    statistic is not positive); the verdict claims a direction only when p < alpha."""
    pct = _pct(a.value, b.value)
    if a.value is None or b.value is None or a.se is None or b.se is None:
        return Difference(a.value, b.value, pct, None, None, None, a.n, b.n, NOT_ENOUGH)
    if min(a.n, b.n) < min_jobs:
        return Difference(a.value, b.value, pct, None, None, None, a.n, b.n, NOT_ENOUGH)
    z = _z(alpha)
    low: float | None
    high: float | None
    if a.value > 0 and b.value > 0:
        shift = math.log(a.value / b.value)
        se = math.hypot(a.se / a.value, b.se / b.value)
        low, high = math.expm1(shift - z * se) * 100, math.expm1(shift + z * se) * 100
    else:
        shift = a.value - b.value
        se = math.hypot(a.se, b.se)
        low = high = None
        if b.value > 0:
            low, high = (shift - z * se) / b.value * 100, (shift + z * se) / b.value * 100
    p = _p_value(shift, se)
    return Difference(a.value, b.value, pct, low, high, p, a.n, b.n, _verdict(shift, p, alpha))


def compare_rates(
    events_a: np.ndarray,
    trials_a: np.ndarray,
    events_b: np.ndarray,
    trials_b: np.ndarray,
    alpha: float,
    min_jobs: int,
) -> Difference:
    """Rate events / trials of a against b, per stratum arrays: the mix-weighted rates, a pooled
    two-proportion z-test summed over strata for the verdict and p-value, and the interval of the
    rate ratio that test implies (null while either side has no event). 'not enough data' below
    MIN_JOBS trials or, unless the rates are equal, MIN_EVENTS expected events on a side."""
    ea, ta, eb, tb = (
        np.asarray(x, dtype=np.float64) for x in (events_a, trials_a, events_b, trials_b)
    )
    matched = (ta > 0) & (tb > 0)
    n_a, n_b = int(ta[matched].sum()), int(tb[matched].sum())
    if not matched.any():
        return Difference(None, None, None, None, None, None, 0, 0, NOT_ENOUGH)
    ea, ta, eb, tb = ea[matched], ta[matched], eb[matched], tb[matched]
    mix = (ta + tb) / (ta + tb).sum()
    rate_a, rate_b = float(mix @ (ea / ta)), float(mix @ (eb / tb))
    pct = _pct(rate_a, rate_b)
    if min(n_a, n_b) < min_jobs:
        return Difference(rate_a, rate_b, pct, None, None, None, n_a, n_b, NOT_ENOUGH)
    pooled = (ea + eb) / (ta + tb)
    shift = rate_a - rate_b
    if shift != 0 and min(ta @ pooled, tb @ pooled) < MIN_EVENTS:
        return Difference(rate_a, rate_b, pct, None, None, None, n_a, n_b, NOT_ENOUGH)
    se = math.sqrt(float(mix**2 @ (pooled * (1 - pooled) * (1 / ta + 1 / tb))))
    p = _p_value(shift, se)
    low = high = None
    if rate_a > 0 and rate_b > 0 and shift != 0 and se > 0:
        # Test-based (Miettinen) limits: the log rate ratio's standard error implied by the z
        # above, so the interval excludes 0 exactly when the test rejects.
        log_ratio = math.log(rate_a / rate_b)
        half = _z(alpha) * log_ratio / (shift / se)
        low, high = math.expm1(log_ratio - half) * 100, math.expm1(log_ratio + half) * 100
    return Difference(rate_a, rate_b, pct, low, high, p, n_a, n_b, _verdict(shift, p, alpha))


def _z(alpha: float) -> float:
    """The two-sided normal critical value at level alpha."""
    return NormalDist().inv_cdf(1 - alpha / 2)


def _p_value(shift: float, se: float) -> float:
    """Two-sided normal p-value of shift / se (erfc keeps tiny p-values exact)."""
    if se <= 0:
        return 1.0 if shift == 0 else 0.0
    return math.erfc(abs(shift / se) / math.sqrt(2))


def _pct(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return (a - b) / b * 100


def _verdict(shift: float, p: float, alpha: float) -> str:
    if p >= alpha or shift == 0:
        return NO_CLEAR
    return HIGHER if shift > 0 else LOWER


def correlations(
    x: np.ndarray, y: np.ndarray, min_pairs: int
) -> Iterator[tuple[int, int, float, float, int]]:
    """Per column i of x and j of y (rows x columns, NaN = absent): (i, j, Pearson's r,
    Spearman's rho with average ranks, n) over the rows where both are present, by i then j;
    nothing for a pair with fewer than `min_pairs` such rows or a constant side.

    Columns present on the same rows (every standard score, say) are correlated as one block,
    in matrix products: one pair at a time took twice as long on the Quality page."""
    x, y = _columns(x, np.float64), _columns(y, np.float64)
    found = []
    for rows_x, cols_x in _by_presence(~np.isnan(x)):
        for rows_y, cols_y in _by_presence(~np.isnan(y)):
            both = rows_x & rows_y
            n = int(both.sum())
            if n < min_pairs:
                continue
            a, b = x[both][:, cols_x], y[both][:, cols_y]
            r = _pearson_matrix(a, b)
            rho = _pearson_matrix(average_ranks(a), average_ranks(b))
            for (k, i), (m, j) in itertools.product(enumerate(cols_x), enumerate(cols_y)):
                if np.isfinite(r[k, m]):
                    found.append((i, j, float(r[k, m]), float(rho[k, m]), n))
    yield from sorted(found)


def _by_presence(present: np.ndarray) -> list[tuple[np.ndarray, list[int]]]:
    """The columns of `present` (rows x columns) grouped by the rows they are present on."""
    groups: dict[bytes, list[int]] = {}
    for col in range(present.shape[1]):
        groups.setdefault(np.packbits(present[:, col]).tobytes(), []).append(col)
    return [(present[:, cols[0]], cols) for cols in groups.values()]


def _pearson_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of every column of a against every column of b (equally long); NaN where a
    side is constant."""
    da, db = a - a.mean(axis=0), b - b.mean(axis=0)
    constant = np.all(a == a[:1], axis=0)[:, None] | np.all(b == b[:1], axis=0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (da.T @ db) / np.sqrt(np.outer((da * da).sum(axis=0), (db * db).sum(axis=0)))
    return np.where(constant, np.nan, np.clip(r, -1.0, 1.0))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n within each column of `values` (rows x columns), ties sharing the average of
    the ranks they span (1, 2.5, 2.5, 4); every column at once."""
    n = len(values)
    order = np.argsort(values, axis=0)  # ties share their average rank: any order of them
    ordered = np.take_along_axis(values, order, axis=0)
    place = np.broadcast_to(np.arange(n)[:, None], values.shape)
    starts_tie = np.ones(values.shape, bool)
    starts_tie[1:] = ordered[1:] != ordered[:-1]
    ends_tie = np.ones(values.shape, bool)
    ends_tie[:-1] = starts_tie[1:]
    first = np.maximum.accumulate(np.where(starts_tie, place, 0), axis=0)
    last = np.minimum.accumulate(np.where(ends_tie, place, n - 1)[::-1], axis=0)[::-1]
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=0)
    return ranks
