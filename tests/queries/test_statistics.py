"""The comparison statistics on tiny arrays, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from queries import statistics as st
from queries.statistics import Estimate


def _rng() -> np.random.Generator:
    return np.random.default_rng(1)


def test_alpha_is_bonferroni() -> None:
    assert st.test_alpha(1) == 0.05
    assert st.test_alpha(9) == pytest.approx(0.0055555556)
    with pytest.raises(ValueError, match="tests"):
        st.test_alpha(0)


def test_common_mix_weights_the_strata_both_ran_by_their_joint_share() -> None:
    # Stratum 0: 2 + 1 jobs, stratum 1: 2 + 5, stratum 2 only b: left out.
    strata_a = np.array([0, 0, 1, 1])
    strata_b = np.array([0, 1, 1, 1, 1, 1, 2])
    mix = st.common_mix(strata_a, np.ones(4, bool), strata_b, np.ones(7, bool))
    assert mix[:, 0].tolist() == pytest.approx([0.3, 0.7, 0.0])


def test_common_mix_counts_present_values_per_column() -> None:
    # Column 1 has no value of a in stratum 1: only stratum 0 is matched there.
    present_a = np.array([[True, True], [True, False]])
    mix = st.common_mix(np.array([0, 1]), present_a, np.array([0, 1]), np.ones((2, 2), bool))
    assert mix.tolist() == [[0.5, 1.0], [0.5, 0.0]]


def test_common_mix_without_shared_strata_is_all_zero() -> None:
    mix = st.common_mix(np.array([0]), np.ones(1, bool), np.array([1]), np.ones(1, bool))
    assert mix.tolist() == [[0.0], [0.0]]


def test_mean_and_its_bootstrap_standard_error() -> None:
    # The ideal bootstrap SE of a mean is the population sd over sqrt(n): sqrt(1.25 / 4).
    values = np.array([[1.0], [2.0], [3.0], [4.0]])
    strata = np.zeros(4, dtype=np.int64)
    mix = st.common_mix(strata, np.ones(4, bool), strata, np.ones(4, bool))
    mean, p95 = st.stratified_estimates(values, strata, mix, _rng())
    assert mean.value == 2.5
    assert mean.n == 4
    assert mean.se == pytest.approx(0.5590, rel=1e-3)
    assert p95.value == 4.0


def test_mean_standard_error_is_that_of_a_stratified_bootstrap() -> None:
    # Two strata of unequal size and weight, nulls in one: the closed form against 20,000
    # resamples drawn here, each stratum's jobs (nulls too) drawn within it.
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(10, 2, 60), rng.exponential(30, 25)])
    values[rng.choice(60, 9, replace=False)] = math.nan
    strata = np.repeat([0, 1], [60, 25])
    mix = np.array([[0.3], [0.7]])
    mean, _ = st.stratified_estimates(values.reshape(-1, 1), strata, mix, _rng())
    replicates = []
    for _ in range(20_000):
        picks = [rng.choice(np.flatnonzero(strata == s), (strata == s).sum()) for s in (0, 1)]
        means = [np.nanmean(values[p]) for p in picks]
        replicates.append(0.3 * means[0] + 0.7 * means[1])
    assert mean.value == pytest.approx(0.3 * np.nanmean(values[:60]) + 0.7 * values[60:].mean())
    assert mean.se == pytest.approx(np.std(replicates, ddof=1), rel=0.03)


def test_mean_leaves_nulls_out_and_an_empty_column_has_no_estimate() -> None:
    values = np.array([[1.0, math.nan], [math.nan, math.nan], [3.0, math.nan]])
    strata = np.zeros(3, dtype=np.int64)
    mix = st.common_mix(strata, ~np.isnan(values), strata, ~np.isnan(values))
    mean, empty, p95 = st.stratified_estimates(values, strata, mix, _rng())
    assert (mean.value, mean.n) == (2.0, 2)
    assert empty == Estimate(None, None, 0)
    assert (p95.value, p95.n) == (3.0, 2)


def test_mix_weighted_mean_and_quantile() -> None:
    # Stratum 0 holds 1, 2, 3, 4 and stratum 1 holds 10, 20, each half the weight:
    # mean 0.5 * 2.5 + 0.5 * 15 = 8.75; running weight 1/8, 2/8, 3/8, 4/8, 6/8, 8/8.
    values = np.array([[1.0], [2.0], [3.0], [4.0], [10.0], [20.0]])
    strata = np.array([0, 0, 0, 0, 1, 1])
    mix = np.array([[0.5], [0.5]])
    for q, expected in ((0.5, 4.0), (0.6, 10.0), (0.75, 10.0), (0.95, 20.0)):
        mean, quantile = st.stratified_estimates(values, strata, mix, _rng(), q=q)
        assert mean.value == 8.75
        assert quantile.value == expected


def test_p95_of_one_to_twenty_is_nineteen_and_of_a_hundred_ninety_five() -> None:
    for n, expected in ((20, 19.0), (100, 95.0)):
        values = np.arange(1.0, n + 1).reshape(-1, 1)
        strata = np.zeros(n, dtype=np.int64)
        mix = np.array([[1.0]])
        assert st.stratified_estimates(values, strata, mix, _rng())[1].value == expected


def test_constant_values_have_no_spread() -> None:
    values = np.full((5, 1), 7.0)
    strata = np.zeros(5, dtype=np.int64)
    mean, p95 = st.stratified_estimates(values, strata, np.array([[1.0]]), _rng())
    assert (mean.value, mean.se) == (pytest.approx(7.0), pytest.approx(0.0, abs=1e-12))
    assert (p95.value, p95.se) == (7.0, 0.0)


def test_a_subsampled_group_keeps_the_whole_groups_standard_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 400 values 0..9 ten times over: population sd sqrt(8.25) = 2.8723, SE 2.8723 / 20 = 0.1436.
    monkeypatch.setattr(st, "MAX_RESAMPLED", 100)
    values = (np.arange(400) % 10).astype(float).reshape(-1, 1)
    strata = np.zeros(400, dtype=np.int64)
    mean, _ = st.stratified_estimates(values, strata, np.array([[1.0]]), _rng())
    assert mean.value == 4.5
    assert mean.n == 400
    assert mean.se == pytest.approx(0.1436, rel=0.15)


def test_same_seed_same_standard_error() -> None:
    values = np.arange(50.0).reshape(-1, 1)
    strata = np.zeros(50, dtype=np.int64)
    first = st.stratified_estimates(values, strata, np.array([[1.0]]), _rng())
    again = st.stratified_estimates(values, strata, np.array([[1.0]]), _rng())
    assert first == again


def test_log_ratio_test_and_interval() -> None:
    # log(110 / 100) = 0.09531; se = hypot(2 / 110, 2 / 100) = 0.027029; z = 3.5262;
    # two-sided p = 0.000422; 95% interval exp(0.09531 -+ 1.95996 * 0.027029) - 1.
    diff = st.compare_estimates(Estimate(110.0, 2.0, 40), Estimate(100.0, 2.0, 40), 0.05, 30)
    assert diff.pct_diff == pytest.approx(10.0)
    assert diff.p_value == pytest.approx(0.00042158, rel=1e-4)
    assert diff.ci_low == pytest.approx(4.32427, rel=1e-4)
    assert diff.ci_high == pytest.approx(15.98451, rel=1e-4)
    assert (diff.n_a, diff.n_b, diff.verdict) == (40, 40, st.HIGHER)
    flipped = st.compare_estimates(Estimate(100.0, 2.0, 40), Estimate(110.0, 2.0, 40), 0.05, 30)
    assert flipped.verdict == st.LOWER
    # At the level of 9 metrics x 100 pairs (0.0000556) the same evidence is not enough.
    strict = st.compare_estimates(Estimate(110.0, 2.0, 40), Estimate(100.0, 2.0, 40), 5.56e-5, 30)
    assert strict.verdict == st.NO_CLEAR


@pytest.mark.parametrize(
    ("a", "b", "pct", "p", "verdict"),
    [
        (Estimate(5.0, 0.0, 40), Estimate(5.0, 0.0, 40), 0.0, 1.0, st.NO_CLEAR),
        (Estimate(6.0, 0.0, 40), Estimate(5.0, 0.0, 40), 20.0, 0.0, st.HIGHER),
        (Estimate(0.0, 0.1, 40), Estimate(0.5, 0.1, 40), -100.0, None, st.LOWER),
        (Estimate(0.5, 0.1, 40), Estimate(0.0, 0.1, 40), None, None, st.HIGHER),
        (Estimate(110.0, 2.0, 29), Estimate(100.0, 2.0, 40), 10.0, None, st.NOT_ENOUGH),
        (Estimate(None, None, 0), Estimate(100.0, 2.0, 40), None, None, st.NOT_ENOUGH),
    ],
)
def test_edge_cases_of_a_comparison(
    a: Estimate, b: Estimate, pct: float | None, p: float | None, verdict: str
) -> None:
    diff = st.compare_estimates(a, b, 0.05, 30)
    assert diff.pct_diff == pct
    if p is not None:
        assert diff.p_value == p
    assert diff.verdict == verdict


def test_difference_scale_where_a_statistic_is_zero() -> None:
    # a = 0, b = 0.5: shift -0.5 over se hypot(0.1, 0.1) = 0.141421, z = -3.5355.
    diff = st.compare_estimates(Estimate(0.0, 0.1, 40), Estimate(0.5, 0.1, 40), 0.05, 30)
    assert diff.p_value == pytest.approx(0.00040695, rel=1e-3)
    # (-0.5 -+ 1.95996 * 0.141421) / 0.5 * 100
    assert diff.ci_low == pytest.approx(-155.4365, rel=1e-4)
    assert diff.ci_high == pytest.approx(-44.5635, rel=1e-4)


def _rates(ea: list[int], ta: list[int], eb: list[int], tb: list[int], alpha: float = 0.05):
    return st.compare_rates(np.array(ea), np.array(ta), np.array(eb), np.array(tb), alpha, 30)


def test_rates_pooled_z_and_rate_ratio_interval() -> None:
    # 30/100 against 5/100: pooled 0.175, se sqrt(0.175 * 0.825 * 0.02) = 0.053735,
    # z = 0.25 / 0.053735 = 4.6524, p = 3.2806e-6; the interval log(6) -+ 1.95996 * log(6) / z.
    diff = _rates([30], [100], [5], [100])
    assert (diff.a, diff.b, diff.pct_diff) == (0.3, 0.05, pytest.approx(500.0))
    assert diff.p_value == pytest.approx(3.2806e-6, rel=1e-3)
    assert diff.ci_low == pytest.approx(182.054, rel=1e-4)
    assert diff.ci_high == pytest.approx(1176.349, rel=1e-4)
    assert diff.verdict == st.HIGHER


def test_rate_interval_agrees_with_the_test() -> None:
    # 20/100 against 10/100: z = 1.9803 > 1.95996 (p = 0.0477); the interval
    # log 2 -+ 1.95996 * log 2 / 1.9803 just misses 0: [0.714%, 297.16%].
    diff = _rates([20], [100], [10], [100])
    assert diff.p_value == pytest.approx(0.047670, rel=1e-4)
    assert diff.ci_low == pytest.approx(0.71417, rel=1e-3)
    assert diff.ci_high == pytest.approx(297.1636, rel=1e-4)
    assert diff.verdict == st.HIGHER
    assert _rates([20], [100], [10], [100], alpha=0.04).verdict == st.NO_CLEAR


@pytest.mark.parametrize(
    ("ea", "ta", "eb", "tb", "verdict", "n"),
    [
        ([0], [100], [0], [100], st.NO_CLEAR, (100, 100)),  # equal rates, no events
        ([3], [100], [0], [100], st.NOT_ENOUGH, (100, 100)),  # 1.5 expected events a side
        ([30], [29], [5], [100], st.NOT_ENOUGH, (29, 100)),  # too few trials
        ([1], [0], [1], [10], st.NOT_ENOUGH, (0, 0)),  # no shared stratum
        ([30, 9], [100, 40], [5, 0], [100, 0], st.HIGHER, (100, 100)),  # stratum 1 unmatched
    ],
)
def test_rate_edge_cases(
    ea: list[int], ta: list[int], eb: list[int], tb: list[int], verdict: str, n: tuple[int, int]
) -> None:
    diff = _rates(ea, ta, eb, tb)
    assert diff.verdict == verdict
    assert (diff.n_a, diff.n_b) == n


def test_rates_with_no_failures_on_b_have_no_percentage_but_a_verdict() -> None:
    # 20/60 against 0/40: pooled 0.2, expected failures 12 and 8; z = 0.3333 / 0.08165 = 4.08.
    diff = _rates([20], [60], [0], [40], alpha=0.05 / 9)
    assert diff.pct_diff is None
    assert diff.ci_low is None
    assert diff.p_value == pytest.approx(4.4557e-5, rel=1e-3)
    assert diff.verdict == st.HIGHER


def test_stratified_rates_weight_each_stratum_by_its_share() -> None:
    # Stratum 0: 10/100 vs 10/100 (200 trials), stratum 1: 40/100 vs 20/100 (200): mix 0.5/0.5:
    # a = 0.5 * 0.1 + 0.5 * 0.4 = 0.25, b = 0.5 * 0.1 + 0.5 * 0.2 = 0.15.
    diff = _rates([10, 40], [100, 100], [10, 20], [100, 100])
    assert diff.a == pytest.approx(0.25)
    assert diff.b == pytest.approx(0.15)
    assert diff.pct_diff == pytest.approx(66.6667, rel=1e-5)


def test_average_ranks_share_ties() -> None:
    values = np.array([[10.0, 7.0], [20.0, 7.0], [20.0, 7.0], [5.0, 1.0]])
    assert st.average_ranks(values).tolist() == [[2.0, 3.0], [3.5, 3.0], [3.5, 3.0], [1.0, 1.0]]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks the slow, plain way: below it, plus half of the ties (itself included)."""
    return np.array([(values < v).sum() + ((values == v).sum() + 1) / 2 for v in values])


def test_correlations_by_hand() -> None:
    nan = math.nan
    # x: cfg 1..5, steps 10 10 20 20 30, a constant, a column with two values;
    # y: likeness .2 .4 .5 .4 .5 and lip_sync on rows 2, 4, 5 only.
    x = np.array(
        [
            [1, 10, 512, 1],
            [2, 10, 512, 2],
            [3, 20, 512, nan],
            [4, 20, 512, nan],
            [5, 30, 512, nan],
        ],
        dtype=float,
    )
    y = np.array([[0.2, nan], [0.4, 0.5], [0.5, nan], [0.4, 0.7], [0.5, 0.6]])
    found = {(i, j): rest for i, j, *rest in st.correlations(x, y, 3)}
    # cfg/likeness: Pearson 0.6 / sqrt(10 * 0.06); Spearman: ranks (1, 2.5, 4.5, 2.5, 4.5)
    # of likeness against 1..5: 7 / sqrt(10 * 9).
    assert found[(0, 0)] == [pytest.approx(0.774597), pytest.approx(0.737865), 5]
    # steps/likeness: ranks (1.5, 1.5, 3.5, 3.5, 5): 7.25 / 9; Pearson 3 / sqrt(280 * 0.06).
    assert found[(1, 0)] == [pytest.approx(0.731925), pytest.approx(0.805556), 5]
    # cfg/lip_sync on rows 2, 4, 5: cfg ranked again among those three (1, 2, 3), not (2, 4, 5).
    assert found[(0, 1)] == [pytest.approx(0.654654), pytest.approx(0.5), 3]
    assert found[(1, 1)] == [pytest.approx(0.5), pytest.approx(0.5), 3]
    # The constant column and the one with two rows (fewer than 3 pairs) give nothing.
    assert set(found) == {(0, 0), (1, 0), (0, 1), (1, 1)}


def _per_stratum_bootstrap(
    values: np.ndarray, strata: np.ndarray, mix: np.ndarray, statistic, resamples: int
) -> float:
    """The standard deviation of `statistic(drawn present values per stratum)` over resamples
    that draw each stratum's jobs (nulls too) within it: the reference the estimates follow."""
    rng = np.random.default_rng(5)
    replicates = []
    for _ in range(resamples):
        drawn = []
        for s in range(len(mix)):
            rows = rng.choice(np.flatnonzero(strata == s), (strata == s).sum())
            drawn.append(values[rows][~np.isnan(values[rows])])
        replicates.append(statistic(drawn))
    return float(np.std(replicates, ddof=1))


def test_nulls_in_one_stratum_do_not_inflate_the_standard_errors() -> None:
    # Three kinds of work around 10, 20 and 40, half of the third's values null: each kind's
    # mean varies within it, not with how many of its values a resample draws.
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.normal(m, 1.0, 200) for m in (10, 20, 40)])
    values[400 + rng.choice(200, 100, replace=False)] = math.nan
    strata = np.repeat([0, 1, 2], 200)
    mix = np.array([[0.3], [0.3], [0.4]])
    mean, p95 = st.stratified_estimates(values.reshape(-1, 1), strata, mix, _rng(), q=0.95)

    def weighted_mean(drawn: list[np.ndarray]) -> float:
        return float(sum(m * d.mean() for m, d in zip(mix[:, 0], drawn, strict=True)))

    def weighted_p95(drawn: list[np.ndarray]) -> float:
        flat = np.concatenate(drawn)
        shares = zip(mix[:, 0], drawn, strict=True)
        weights = np.concatenate([np.full(len(d), m / len(d)) for m, d in shares])
        order = np.argsort(flat)
        running = np.cumsum(weights[order])
        return float(flat[order][np.searchsorted(running, 0.95 - 1e-9)])

    assert mean.se == pytest.approx(
        _per_stratum_bootstrap(values, strata, mix[:, 0], weighted_mean, 4000), rel=0.05
    )
    assert mean.se < 0.1  # about 0.05; deviating from the overall mean gave about 0.43
    assert p95.se == pytest.approx(
        _per_stratum_bootstrap(values, strata, mix[:, 0], weighted_p95, 2000), rel=0.25
    )


def test_block_correlations_equal_those_of_each_pair() -> None:
    # Columns present on different rows, ties, a constant column: each pair worked out alone.
    rng = np.random.default_rng(11)
    x = rng.integers(0, 6, (300, 5)).astype(float)
    y = np.column_stack([x[:, 0] + rng.normal(0, 2, 300), rng.normal(0, 1, (300, 3))])
    x[:, 4] = 7.0
    x[rng.random(300) < 0.3, 1] = math.nan
    y[rng.random(300) < 0.5, 2] = math.nan
    y[:290, 3] = math.nan  # ten rows
    found = list(st.correlations(x, y, 12))
    expected = []
    for i in range(5):
        for j in range(4):
            both = ~np.isnan(x[:, i]) & ~np.isnan(y[:, j])
            a, b = x[both, i], y[both, j]
            if both.sum() >= 12 and a.std() > 0 and b.std() > 0:
                r = np.corrcoef(a, b)[0, 1]
                rho = np.corrcoef(_ranks(a), _ranks(b))[0, 1]
                expected.append((i, j, pytest.approx(r), pytest.approx(rho), int(both.sum())))
    assert found == expected
    assert len(found) == 4 * 3  # the constant column and the ten-row score give nothing


def test_perfect_correlations_stay_within_one() -> None:
    x = np.array([[0.1], [0.2], [0.3]])
    y = np.array([[0.9], [0.8], [0.7]])
    [(i, j, r, rho, n)] = st.correlations(x, y, 3)
    assert (i, j, r, rho, n) == (0, 0, pytest.approx(-1.0), -1.0, 3)
    assert r >= -1.0


def test_the_order_of_the_jobs_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Subsampled for the quantile, with nulls and ties: the same estimates, to the last bit,
    # whatever order the rows come in (as from a parallel scan).
    monkeypatch.setattr(st, "MAX_RESAMPLED", 150)
    rng = np.random.default_rng(3)
    values = np.column_stack([rng.integers(1, 40, 400).astype(float), rng.normal(0.6, 0.1, 400)])
    values[rng.choice(400, 30, replace=False), 1] = math.nan
    strata = rng.integers(0, 3, 400)
    mix = st.common_mix(strata, ~np.isnan(values), strata, ~np.isnan(values))
    first = st.stratified_estimates(values, strata, mix, _rng())
    shuffled = rng.permutation(400)
    again = st.stratified_estimates(values[shuffled], strata[shuffled], mix, _rng())
    assert first == again
    assert all(e.se is not None and e.se > 0 for e in first)
