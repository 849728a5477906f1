"""Comparison benchmark: how often the verdict of `perflake query compare` is right, on simulated
workflow pairs whose true differences are known.

Each pair gets sample sizes drawn log-uniformly from 30 to 5000 jobs per workflow and, per
metric, a true relative difference of exactly 0 or drawn uniformly from -30% to +30%:
time per frame lognormal (CV 0.2-0.4, the two shapes equal or up to 25% apart, which moves the
p95 by its own true amount), VRAM peak lognormal (CV 0.05-0.15), likeness beta (mean 0.55-0.75,
concentration 20-80), failures Bernoulli (rate 1%-15%). A quarter of the pairs have no true
difference at all. The pairs go through `queries.compare.group_differences`, the very code behind
the query, at the level a two-workflow comparison uses. With --lake, it also times a comparison
on a real lake against a plain average query on the same lake and prints its sentence.

    make bench-compare
    python -m tests.bench.bench_compare --pairs 2000 --seed 3
    python -m tests.bench.bench_compare --lake demo-lake
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist

import numpy as np
import polars as pl

from queries import compare
from queries import statistics as st
from queries.base import Filters, frame

#: Metrics simulated; the others come out 'not enough data' (no values) and are not counted.
METRICS = (
    "avg_time_per_frame_ms",
    "p95_time_per_frame_ms",
    "avg_vram_peak_mb",
    "avg_likeness",
    "failure_rate",
)
#: A true difference counts as resolvable at a pair's sample sizes from this many standard errors
#: (of the log ratio, from the true distributions): an ideal z-test at the level used has ~98.7%
#: power there. Below it, 'no clear difference' is an honest answer, not a miss.
RESOLVABLE_SE = 5.0
#: Bands of the true |difference| in %: (upper bound, name); the p95's can pass 30%.
BANDS = ((0.0, "0%"), (5.0, "0-5%"), (10.0, "5-10%"), (20.0, "10-20%"), (math.inf, "20%+"))
SE_BANDS = (0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, math.inf)
TARGETS = {"right_5pct": 0.99, "detected_resolvable": 0.99, "false_claims": 0.05}
Z95 = NormalDist().inv_cdf(0.95)


@dataclass
class Case:
    """One metric of one simulated pair: its true % difference, oracle SE and the verdict."""

    metric: str
    true_pct: float
    se: float
    verdict: str
    null_pair: bool
    pair: int


@dataclass(frozen=True)
class Workflow:
    """The true distributions of one simulated workflow, and how many jobs it ran."""

    jobs: int
    time: float  # mean time per frame, ms
    time_cv: float
    vram: float  # mean VRAM peak, MB
    vram_cv: float
    likeness: float  # mean of the beta
    concentration: float  # alpha + beta of the beta
    fail: float  # chance an attempt fails

    @property
    def sigma(self) -> float:
        """Shape of the lognormal time per frame."""
        return math.sqrt(math.log1p(self.time_cv**2))

    def truth(self) -> dict[str, float]:
        """The true value of every simulated metric."""
        # The p95 of a lognormal with mean m and shape s is m * exp(z95 s - s^2 / 2).
        p95 = self.time * math.exp(Z95 * self.sigma - self.sigma**2 / 2)
        return dict(
            zip(METRICS, (self.time, p95, self.vram, self.likeness, self.fail), strict=True)
        )

    def log_variance(self) -> dict[str, float]:
        """Variance of the log of each metric's estimate, from the true distributions."""
        tail = 0.95 * 0.05 / NormalDist().pdf(Z95) ** 2
        like_cv2 = (1 - self.likeness) / (self.likeness * (self.concentration + 1))
        attempts = self.jobs / (1 - self.fail)
        return {
            "avg_time_per_frame_ms": self.time_cv**2 / self.jobs,
            "p95_time_per_frame_ms": tail * self.sigma**2 / self.jobs,
            "avg_vram_peak_mb": self.vram_cv**2 / self.jobs,
            "avg_likeness": like_cv2 / self.jobs,
            "failure_rate": (1 - self.fail) / (attempts * self.fail),
        }

    def sample(self, rng: np.random.Generator) -> pl.DataFrame:
        """Jobs shaped as COMPARED_VALUES returns them: completed jobs, then the counts row."""
        # Attempts fail independently: the failures before the jobs-th success.
        failures = int(rng.negative_binomial(self.jobs, 1 - self.fail))
        n = self.jobs
        tpf = rng.lognormal(math.log(self.time) - self.sigma**2 / 2, self.sigma, n)
        vsigma = math.sqrt(math.log1p(self.vram_cv**2))
        peak = np.round(rng.lognormal(math.log(self.vram) - vsigma**2 / 2, vsigma, n))
        m, k = self.likeness, self.concentration
        like = rng.beta(m * k, (1 - m) * k, n)
        measured = {"time_per_frame_ms": tpf, "vram_peak_mb": peak, "likeness": like}
        columns: dict[str, pl.Series] = {
            "is_job": pl.Series([True] * n + [False], dtype=pl.Boolean),
            "failures": pl.Series([0] * n + [failures], dtype=pl.Int64),
            "completed": pl.Series([0] * n + [n], dtype=pl.Int64),
            "code": pl.Series([0] * (n + 1), dtype=pl.Int64),
        }
        for name in compare.MEAN_COLUMNS.values():
            values = measured.get(name)
            data = [*values.tolist(), None] if values is not None else [None] * (n + 1)
            columns[name] = pl.Series(data, dtype=pl.Float64)
        return pl.DataFrame(columns)


def _true_pct(rng: np.random.Generator, null_pair: bool) -> float:
    if null_pair or rng.random() < 0.3:
        return 0.0
    return float(rng.uniform(-30.0, 30.0))


def _jobs(rng: np.random.Generator) -> int:
    return round(math.exp(rng.uniform(math.log(30), math.log(5000))))


def _pair(rng: np.random.Generator) -> tuple[Workflow, Workflow, bool]:
    """Workflows a and b: b drawn from realistic ranges, a off by a true % per metric."""
    null_pair = rng.random() < 0.25
    pct = {m: 1 + _true_pct(rng, null_pair) / 100 for m in METRICS}
    b = Workflow(
        jobs=_jobs(rng),
        time=rng.uniform(500, 3000),
        time_cv=rng.uniform(0.2, 0.4),
        vram=rng.uniform(8000, 20000),
        vram_cv=rng.uniform(0.05, 0.15),
        likeness=rng.uniform(0.55, 0.75),
        concentration=rng.uniform(20, 80),
        fail=rng.uniform(0.01, 0.15),
    )
    # Half the pairs differ in shape too (which moves the p95 by its own true amount).
    shape = 1.0 if null_pair or rng.random() < 0.5 else rng.uniform(0.8, 1.25)
    a = replace(
        b,
        jobs=_jobs(rng),
        time=b.time * pct["avg_time_per_frame_ms"],
        time_cv=b.time_cv * shape,
        vram=b.vram * pct["avg_vram_peak_mb"],
        likeness=b.likeness * pct["avg_likeness"],
        concentration=b.concentration if null_pair else rng.uniform(20, 80),
        fail=b.fail * pct["failure_rate"],
    )
    return a, b, null_pair


def simulate(pair: int, rng: np.random.Generator, alpha: float) -> list[Case]:
    """One workflow pair with known true differences, compared; one Case per simulated metric."""
    a, b, null_pair = _pair(rng)
    diffs = compare.group_differences(a.sample(rng), b.sample(rng), alpha, rng)
    truth_a, truth_b = a.truth(), b.truth()
    var_a, var_b = a.log_variance(), b.log_variance()
    return [
        Case(
            metric,
            (truth_a[metric] / truth_b[metric] - 1) * 100,
            math.sqrt(var_a[metric] + var_b[metric]),
            diffs[metric].verdict,
            null_pair,
            pair,
        )
        for metric in METRICS
    ]


def outcome(case: Case) -> str:
    """right | wrong direction | false claim | missed | honest no-claim."""
    claimed = case.verdict in (st.HIGHER, st.LOWER)
    if case.true_pct == 0:
        return "false claim" if claimed else "right"
    if claimed:
        return "right" if (case.verdict == st.HIGHER) == (case.true_pct > 0) else "wrong direction"
    return "missed" if resolvable(case) else "honest no-claim"


def resolvable(case: Case) -> bool:
    return abs(math.log1p(case.true_pct / 100)) >= RESOLVABLE_SE * case.se


def _band(pct: float) -> str:
    if pct == 0:
        return BANDS[0][1]
    return next(name for high, name in BANDS[1:] if abs(pct) < high)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.2f}%" if whole else "     - "


COUNTING = (
    "How a verdict is counted. True difference 0: right unless it claims a difference ('a "
    "higher'/'a lower'). True difference not 0: right when it claims the true direction; WRONG "
    "when it claims the opposite one; 'no clear difference' (or 'not enough data') is right only "
    f"while the true difference is under {RESOLVABLE_SE:g} standard errors of the estimate at the "
    "pair's sample sizes (the standard error of the log ratio from the true distributions, not "
    "from the sample): it is then an honest answer. Beyond, the difference is 'resolvable' and "
    "saying 'no clear difference' is a MISS."
)


def _right(case: Case) -> bool:
    return outcome(case) in ("right", "honest no-claim")


def _band_table(cases: list[Case]) -> None:
    print(
        "\nBy true difference |a - b| / b: cases; share that claimed the true direction, claimed "
        "the wrong one (or a difference that is not there), made no claim; resolvable cases and "
        "the share of them detected; RIGHT."
    )
    head = ("band", "cases", "true dir", "wrong", "no claim", "resolv.", "detected", "RIGHT")
    print("{:>7} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8}".format(*head))
    for _, name in BANDS:
        band = [c for c in cases if _band(c.true_pct) == name]
        outcomes = [outcome(c) for c in band]
        claims = sum(c.verdict in (st.HIGHER, st.LOWER) for c in band)
        wrong = outcomes.count("wrong direction") + outcomes.count("false claim")
        res = [c for c in band if c.true_pct != 0 and resolvable(c)]
        detected = sum(outcome(c) == "right" for c in res)
        print(
            f"{name:>7} {len(band):6d} {_share(claims - wrong, len(band)):>8} "
            f"{_share(wrong, len(band)):>8} {_share(len(band) - claims, len(band)):>8} "
            f"{len(res):7d} {_share(detected, len(res)):>8} "
            f"{_share(sum(map(_right, band)), len(band)):>8}"
        )


def _power_table(cases: list[Case]) -> None:
    print("\nDetection by the true difference in standard errors (the power curve):")
    print(f"{'SEs':>9} {'cases':>6} {'detected':>8} {'wrong':>8}")
    moving = [c for c in cases if c.true_pct != 0]
    for low, high in itertools.pairwise(SE_BANDS):
        band = [c for c in moving if low <= abs(math.log1p(c.true_pct / 100)) / c.se < high]
        right = sum(outcome(c) == "right" for c in band)
        wrong = sum(outcome(c) == "wrong direction" for c in band)
        label = f"{low:g}-{high:g}" if high < math.inf else f">= {low:g}"
        print(
            f"{label:>9} {len(band):6d} {_share(right, len(band)):>8} {_share(wrong, len(band)):>8}"
        )


def _metric_table(cases: list[Case]) -> None:
    print(
        "\nBy metric, true difference >= 5%: RIGHT; detected where resolvable; false claims at 0:"
    )
    for metric in METRICS:
        own = [c for c in cases if c.metric == metric]
        big = [c for c in own if abs(c.true_pct) >= 5]
        res = [c for c in big if resolvable(c)]
        none = [c for c in own if c.true_pct == 0]
        print(
            f"  {metric:<22} {_share(sum(map(_right, big)), len(big))} of {len(big):4d}; "
            f"{_share(sum(outcome(c) == 'right' for c in res), len(res))} of {len(res):4d}; "
            f"{_share(sum(outcome(c) == 'false claim' for c in none), len(none))} of {len(none):4d}"
        )


def figures(cases: list[Case]) -> dict[str, float]:
    """The headline figures (shares in 0..1) and the counts they rest on."""
    big = [c for c in cases if abs(c.true_pct) >= 5]
    res = [c for c in big if resolvable(c)]
    none = [c for c in cases if c.true_pct == 0]
    null_pairs = {c.pair for c in cases if c.null_pair}
    spoilt = {c.pair for c in cases if c.null_pair and outcome(c) == "false claim"}
    return {
        "right_5pct": sum(map(_right, big)) / len(big),
        "detected_resolvable": sum(outcome(c) == "right" for c in res) / len(res),
        "wrong_direction_5pct": sum(outcome(c) == "wrong direction" for c in big) / len(big),
        "false_claims": sum(outcome(c) == "false claim" for c in none) / len(none),
        "family_false_claims": len(spoilt) / max(len(null_pairs), 1),
        "cases_5pct": len(big),
        "resolvable_5pct": len(res),
        "cases_none": len(none),
        "null_pairs": len(null_pairs),
    }


def headline(f: dict[str, float]) -> list[str]:
    """Print the headline figures; the names of the targets missed."""
    print(
        f"\nRIGHT where the true difference is >= 5%: {100 * f['right_5pct']:.2f}% of "
        f"{f['cases_5pct']:.0f} (target >= {100 * TARGETS['right_5pct']:.0f}%); wrong direction "
        f"{100 * f['wrong_direction_5pct']:.2f}%; {f['resolvable_5pct']:.0f} of them resolvable, "
        f"{100 * f['detected_resolvable']:.2f}% of those detected "
        f"(target >= {100 * TARGETS['detected_resolvable']:.0f}%)"
    )
    print(
        f"Claimed differences where there is none: {100 * f['false_claims']:.2f}% of "
        f"{f['cases_none']:.0f} metrics (target <= {100 * TARGETS['false_claims']:.0f}%); pairs "
        f"with no true difference anywhere that got any claim: "
        f"{100 * f['family_false_claims']:.2f}% of {f['null_pairs']:.0f}"
    )
    return [
        name
        for name, ok in (
            ("right >= 5%", f["right_5pct"] >= TARGETS["right_5pct"]),
            (
                "detected where resolvable",
                f["detected_resolvable"] >= TARGETS["detected_resolvable"],
            ),
            ("false claims", f["false_claims"] <= TARGETS["false_claims"]),
        )
        if not ok
    ]


PLAIN_AVERAGES = """
select workflow_id, count(*) as jobs, avg(time_per_frame_ms) as avg_time_per_frame_ms
from jobs
where workflow_id in (?, ?)
group by workflow_id
order by workflow_id
"""


def time_lake(lake: Path, workflows: list[str]) -> None:
    """Time compare_workflows on a real lake against a plain average query; print the sentence."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        result = compare.compare_workflows(lake, Filters(), workflows)
        runs.append(time.perf_counter() - started)
    plain = []
    for _ in range(3):
        started = time.perf_counter()
        frame(lake, PLAIN_AVERAGES, workflows[:2])
        plain.append(time.perf_counter() - started)
    n = result.select("n_a", "n_b").row(0)
    print(f"\n{lake}: {' vs '.join(workflows)} ({n[0]} and {n[1]} jobs)")
    print(
        f"compare_workflows: first {runs[0]:.2f} s, best {min(runs):.2f} s; plain averages "
        f"best {min(plain):.3f} s; ratio {min(runs) / min(plain):.1f}"
    )
    for sentence in compare.tradeoff_sentences(result):
        print(sentence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=600, help="workflow pairs to simulate")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulation")
    parser.add_argument("--lake", type=Path, help="also time a comparison on this lake")
    parser.add_argument(
        "--workflows",
        nargs=2,
        default=["wf-liveportrait-hq", "wf-liveportrait-v2"],
        help="the two workflows compared on --lake",
    )
    args = parser.parse_args(argv)
    alpha = st.test_alpha(len(compare.COMPARE_METRICS))
    print(f"perflake comparison benchmark: {args.pairs} pairs, seed {args.seed}")
    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"level per test: {alpha:.5f} ({st.FAMILY_ALPHA} / {len(compare.COMPARE_METRICS)} metrics)"
    )
    print(COUNTING)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    cases = [c for pair in range(args.pairs) for c in simulate(pair, rng, alpha)]
    elapsed = time.perf_counter() - started
    print(f"{elapsed:.1f} s, {1000 * elapsed / args.pairs:.0f} ms per pair (2 groups bootstrapped)")
    _band_table(cases)
    _power_table(cases)
    _metric_table(cases)
    missed = headline(figures(cases))
    if args.lake:
        time_lake(args.lake, args.workflows)
    if missed:
        print(f"TARGET MISSED: {', '.join(missed)}")
        return 1
    print("targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
