"""Overview queries against the tiny farm lake of conftest.py (its table gives every figure)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from queries import overview
from queries.base import Filters

ALL = Filters()
NOTHING_MATCHES = Filters(workflows=("wf-nope",))
NO_DAYS = Filters(start=date(2020, 1, 1), end=date(2020, 1, 31))

TOTALS_SCHEMA = pl.Schema(
    {
        "gpu_hours": pl.Float64(),
        "jobs": pl.Int64(),
        "failures": pl.Int64(),
        "frames": pl.Int64(),
        "avg_time_per_frame_ms": pl.Float64(),
        "p95_time_per_frame_ms": pl.Float64(),
        "peak_vram_mb": pl.Int64(),
        "success_rate": pl.Float64(),
        "percentile_sample_rate": pl.Int64(),
    }
)


def test_totals_count_failed_gpu_time_but_not_failed_vram(farm: Path) -> None:
    got = overview.overview_totals(farm, ALL)
    assert got.schema == TOTALS_SCHEMA
    row = got.row(0, named=True)
    # GPU ms 0.9M + 1.8M + 0.9M + 1.8M (jobs) + 1.8M (f1; f2 sent none) = 7.2M = 2 h.
    assert row["gpu_hours"] == pytest.approx(2.0)
    assert (row["jobs"], row["failures"], row["frames"]) == (4, 2, 2700)
    assert row["avg_time_per_frame_ms"] == pytest.approx(2500.0)
    # tpf 1000, 2000, 3000, 4000: position 0.95 * 3 = 2.85 -> 3000 + 0.85 * 1000.
    assert row["p95_time_per_frame_ms"] == pytest.approx(3850.0)
    # The OOM failure peaked at 24000 MB: a failure's VRAM is not a job's.
    assert row["peak_vram_mb"] == 8000
    assert row["success_rate"] == pytest.approx(4 / 6)


def test_totals_honour_dimension_filters(farm: Path) -> None:
    # p2 on 1080p: j3 and f2.
    got = overview.overview_totals(farm, Filters(projects=("p2",), resolution_tiers=("1080p",)))
    assert got.rows() == [(0.25, 1, 1, 300, 3000.0, 3000.0, None, 0.5, 1)]


@pytest.mark.parametrize("filters", [NOTHING_MATCHES, NO_DAYS], ids=["no-match", "no-days"])
def test_totals_of_nothing_are_zero_and_null(farm: Path, filters: Filters) -> None:
    got = overview.overview_totals(farm, filters)
    assert got.rows() == [(0.0, 0, 0, 0, None, None, None, None, 1)]
    assert got.schema == TOTALS_SCHEMA


@pytest.mark.parametrize(
    ("filters", "found"),
    [
        (ALL, True),
        (Filters(workflows=("wf-c",)), True),  # f2 alone: a failure counts as activity
        (Filters(start=date(2025, 6, 9), end=date(2025, 6, 9)), True),  # f2's day, no job
        (Filters(start=date(2025, 6, 3), end=date(2025, 6, 3)), False),  # j3 is 06-04 in UTC
        (NOTHING_MATCHES, False),
        (NO_DAYS, False),
    ],
)
def test_has_attempts_finds_a_job_or_a_failure(farm: Path, filters: Filters, found: bool) -> None:
    got = overview.has_attempts(farm, filters)
    assert got.schema == pl.Schema({"found": pl.Boolean()})
    assert got.rows() == [(found,)]


def test_daily_volume_one_row_per_utc_day_with_activity(farm: Path) -> None:
    got = overview.daily_volume(farm, ALL)
    assert got.schema == pl.Schema(
        {
            "date": pl.Date(),
            "jobs": pl.Int64(),
            "frames": pl.Int64(),
            "failures": pl.Int64(),
            "gpu_hours": pl.Float64(),
        }
    )
    assert got.rows() == [
        (date(2025, 6, 2), 2, 1800, 1, 1.25),
        # j3, 23:30 at -01:00 on 06-03, counts on 06-04 UTC.
        (date(2025, 6, 4), 1, 300, 0, 0.25),
        # Only f2 (23:30 at -01:00 on 06-08), which sent no GPU time.
        (date(2025, 6, 9), 0, 0, 1, 0.0),
        (date(2025, 6, 10), 1, 600, 0, 0.5),
    ]


def test_daily_volume_date_range_is_utc_days(farm: Path) -> None:
    got = overview.daily_volume(farm, Filters(start=date(2025, 6, 3), end=date(2025, 6, 4)))
    assert got.rows() == [(date(2025, 6, 4), 1, 300, 0, 0.25)]
    assert overview.daily_volume(farm, Filters(end=date(2025, 6, 3))).get_column(
        "date"
    ).to_list() == [date(2025, 6, 2)]


@pytest.mark.parametrize("filters", [NOTHING_MATCHES, NO_DAYS], ids=["no-match", "no-days"])
def test_daily_volume_of_nothing_is_empty(farm: Path, filters: Filters) -> None:
    got = overview.daily_volume(farm, filters)
    assert got.is_empty()
    assert got.columns == ["date", "jobs", "frames", "failures", "gpu_hours"]
    assert got.dtypes == [pl.Date, pl.Int64, pl.Int64, pl.Int64, pl.Float64]


# Per workflow: wf-a jobs 2, failures 1, tpf 1000/2000, GPU 1.25 h, likeness 0.8/0.6, VRAM
# 4000/8000; wf-b jobs 2, tpf 3000/4000, GPU 0.75 h, likeness -/0.9, VRAM null/6000;
# wf-c only a failure (no GPU time sent).
@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # Ties (2 jobs each) go by workflow_id in both groups.
        (
            "jobs",
            [
                ("top", 1, "wf-a", 2.0, 2),
                ("top", 2, "wf-b", 2.0, 2),
                ("top", 3, "wf-c", 0.0, 0),
                ("bottom", 1, "wf-c", 0.0, 0),
                ("bottom", 2, "wf-a", 2.0, 2),
                ("bottom", 3, "wf-b", 2.0, 2),
            ],
        ),
        # wf-b's null VRAM is left out of its average: 6000 each, a tie.
        (
            "vram_peak_mb",
            [
                ("top", 1, "wf-a", 6000.0, 2),
                ("top", 2, "wf-b", 6000.0, 2),
                ("bottom", 1, "wf-a", 6000.0, 2),
                ("bottom", 2, "wf-b", 6000.0, 2),
            ],
        ),
        # wf-c has no likeness at all: not ranked. j3 has none either: wf-b is 0.9.
        (
            "likeness",
            [
                ("top", 1, "wf-b", 0.9, 2),
                ("top", 2, "wf-a", 0.7, 2),
                ("bottom", 1, "wf-a", 0.7, 2),
                ("bottom", 2, "wf-b", 0.9, 2),
            ],
        ),
        (
            "failure_rate",
            [
                ("top", 1, "wf-b", 0.0, 2),
                ("top", 2, "wf-a", 1 / 3, 2),
                ("top", 3, "wf-c", 1.0, 0),
                ("bottom", 1, "wf-c", 1.0, 0),
                ("bottom", 2, "wf-a", 1 / 3, 2),
                ("bottom", 3, "wf-b", 0.0, 2),
            ],
        ),
        # GPU hours are a cost: fewest first.
        (
            "gpu_hours",
            [
                ("top", 1, "wf-c", 0.0, 0),
                ("top", 2, "wf-b", 0.75, 2),
                ("top", 3, "wf-a", 1.25, 2),
                ("bottom", 1, "wf-a", 1.25, 2),
                ("bottom", 2, "wf-b", 0.75, 2),
                ("bottom", 3, "wf-c", 0.0, 0),
            ],
        ),
        (
            "time_per_frame_ms",
            [
                ("top", 1, "wf-a", 1500.0, 2),
                ("top", 2, "wf-b", 3500.0, 2),
                ("bottom", 1, "wf-b", 3500.0, 2),
                ("bottom", 2, "wf-a", 1500.0, 2),
            ],
        ),
        # 1000 + 0.95 * 1000 and 3000 + 0.95 * 1000.
        (
            "p95_time_per_frame_ms",
            [
                ("top", 1, "wf-a", 1950.0, 2),
                ("top", 2, "wf-b", 3950.0, 2),
                ("bottom", 1, "wf-b", 3950.0, 2),
                ("bottom", 2, "wf-a", 1950.0, 2),
            ],
        ),
    ],
)
def test_ranked_workflows(farm: Path, metric: str, expected: list[tuple]) -> None:
    got = overview.ranked_workflows(farm, ALL, metric)
    assert got.select("rank_group", "rank", "workflow_id", "jobs").rows() == [
        (g, r, w, j) for g, r, w, _, j in expected
    ]
    assert got.get_column("value").to_list() == pytest.approx([e[3] for e in expected])


def test_ranked_workflows_keeps_n_per_group(farm: Path) -> None:
    got = overview.ranked_workflows(farm, ALL, "failure_rate", n=1)
    assert got.select("rank_group", "rank", "workflow_id").rows() == [
        ("top", 1, "wf-b"),
        ("bottom", 1, "wf-c"),
    ]


def test_ranked_workflows_honours_filters(farm: Path) -> None:
    # gpu-01 ran j1 (wf-a), j3 (wf-b) and f2 (wf-c).
    got = overview.ranked_workflows(farm, Filters(workers=("gpu-01",)), "time_per_frame_ms", n=1)
    assert got.rows() == [("top", 1, "wf-a", 1000.0, 1), ("bottom", 1, "wf-b", 3000.0, 1)]


@pytest.mark.parametrize("filters", [NOTHING_MATCHES, NO_DAYS], ids=["no-match", "no-days"])
def test_ranked_workflows_of_nothing_is_empty(farm: Path, filters: Filters) -> None:
    got = overview.ranked_workflows(farm, filters, "likeness")
    assert got.is_empty()
    assert got.schema == pl.Schema(
        {
            "rank_group": pl.String(),
            "rank": pl.Int64(),
            "workflow_id": pl.String(),
            "value": pl.Float64(),
            "jobs": pl.Int64(),
        }
    )


def test_a_lake_without_data_gives_typed_results(bare_lake: Path) -> None:
    assert overview.overview_totals(bare_lake, ALL).rows() == [
        (0.0, 0, 0, 0, None, None, None, None, 1)
    ]
    assert overview.has_attempts(bare_lake, ALL).rows() == [(False,)]
    assert overview.daily_volume(bare_lake, ALL).is_empty()
    assert overview.ranked_workflows(bare_lake, ALL, "jobs").is_empty()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"metric": "speed"}, "metric"), ({"metric": "jobs", "n": 0}, "n")],
)
def test_ranked_workflows_refuses_bad_arguments(farm: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        overview.ranked_workflows(farm, ALL, **kwargs)


def test_every_metric_has_a_label_and_a_direction() -> None:
    assert set(overview.METRICS) == {
        "time_per_frame_ms",
        "p95_time_per_frame_ms",
        "gpu_hours",
        "jobs",
        "failure_rate",
        "likeness",
        "vram_peak_mb",
    }
    assert overview.LOWER_IS_BETTER.issubset(overview.METRICS)
    assert {"jobs", "likeness"}.isdisjoint(overview.LOWER_IS_BETTER)
