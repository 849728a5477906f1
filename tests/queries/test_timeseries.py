"""Time-series queries against the tiny farm lake of conftest.py (its table gives every figure)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from queries import timeseries
from queries.base import Filters

ALL = Filters()
NOTHING_MATCHES = Filters(workflows=("wf-nope",))
NO_DAYS = Filters(start=date(2020, 1, 1), end=date(2020, 1, 31))
NOTHING = pytest.mark.parametrize(
    "filters", [NOTHING_MATCHES, NO_DAYS], ids=["no-match", "no-days"]
)
SERIES_SCHEMA = pl.Schema({"period": pl.Date(), "value": pl.Float64(), "moving_avg": pl.Float64()})
TRENDS_SCHEMA = pl.Schema(
    {
        "period": pl.Date(),
        "score": pl.String(),
        "value": pl.Float64(),
        "jobs": pl.Int64(),
        "moving_avg": pl.Float64(),
    }
)


def _days(first: int, last: int) -> list[date]:
    return [date(2025, 6, d) for d in range(first, last + 1)]


def test_daily_jobs_fill_gaps_with_zero_and_average_seven_days(farm: Path) -> None:
    got = timeseries.metric_series(farm, ALL, "jobs")
    assert got.schema == SERIES_SCHEMA
    # First to last day with data: 06-02 .. 06-10 (f2 alone on 06-09 has no job).
    assert got.get_column("period").to_list() == _days(2, 10)
    assert got.get_column("value").to_list() == [2, 0, 1, 0, 0, 0, 0, 0, 1]
    # Trailing 7 days; the first six average the days there are.
    assert got.get_column("moving_avg").to_list() == pytest.approx(
        [2 / 1, 2 / 2, 3 / 3, 3 / 4, 3 / 5, 3 / 6, 3 / 7, 1 / 7, 2 / 7]
    )


def test_a_rate_is_null_without_data_and_its_average_skips_the_gaps(farm: Path) -> None:
    got = timeseries.metric_series(farm, ALL, "failure_rate")
    # 06-02 1 of 3 attempts failed; 06-04 j3; 06-09 f2 alone; 06-10 j4.
    assert got.get_column("value").to_list() == pytest.approx(
        [1 / 3, None, 0.0, None, None, None, None, 1.0, 0.0]
    )
    # 06-10: the days 06-04 .. 06-10 with a value: 0, 1, 0.
    assert got.get_column("moving_avg").to_list()[-1] == pytest.approx(1 / 3)
    assert got.get_column("moving_avg").to_list()[:3] == pytest.approx([1 / 3, 1 / 3, 1 / 6])


@pytest.mark.parametrize(
    ("metric", "grain", "values", "moving"),
    [
        # f2 (23:30 at -01:00 on Sunday 06-08) is Monday 06-09 UTC: the second week.
        ("failures", "week", [1, 1], [1, 1]),
        # Week 1: j1, j2, f1, j3 = 0.25 + 0.5 + 0.5 + 0.25; week 2: f2 (none) + j4.
        ("gpu_hours", "week", [1.5, 0.5], [1.5, 1.0]),
        ("frames", "week", [2100, 600], [2100, 1350]),
        ("avg_likeness", "week", [0.7, 0.9], [0.7, 0.8]),
        # j3 sent no VRAM: week 1 is (4000 + 8000) / 2.
        ("avg_vram_peak_mb", "week", [6000, 6000], [6000, 6000]),
        # Week 1 tpf 1000, 2000, 3000: position 0.95 * 2 = 1.9.
        ("p95_time_per_frame_ms", "week", [2000 + 0.9 * 1000, 4000], [2900, 3450]),
        ("avg_time_per_frame_ms", "month", [2500], [2500]),
        ("jobs", "month", [4], [4]),
    ],
)
def test_weekly_and_monthly_series(
    farm: Path, metric: str, grain: str, values: list, moving: list
) -> None:
    got = timeseries.metric_series(farm, ALL, metric, grain)
    periods = [date(2025, 6, 2), date(2025, 6, 9)] if grain == "week" else [date(2025, 6, 1)]
    assert got.get_column("period").to_list() == periods
    assert got.get_column("value").to_list() == pytest.approx(values)
    assert got.get_column("moving_avg").to_list() == pytest.approx(moving)


def test_a_score_nobody_sent_is_null(farm: Path) -> None:
    got = timeseries.metric_series(farm, Filters(workflows=("wf-b",)), "avg_face_confidence")
    assert got.get_column("period").to_list() == _days(4, 10)
    assert got.get_column("value").to_list() == [None] * 7
    assert got.get_column("moving_avg").to_list() == [None] * 7


def test_the_series_spans_the_filters_range_in_utc_days(farm: Path) -> None:
    # j3 (06-03 23:30 at -01:00) is on 06-04 UTC, outside the range.
    got = timeseries.metric_series(
        farm, Filters(start=date(2025, 5, 31), end=date(2025, 6, 3)), "jobs"
    )
    assert got.rows() == [
        (date(2025, 5, 31), 0.0, 0.0),
        (date(2025, 6, 1), 0.0, 0.0),
        (date(2025, 6, 2), 2.0, pytest.approx(2 / 3)),
        (date(2025, 6, 3), 0.0, 0.5),
    ]


def test_an_open_end_stops_at_the_data(farm: Path) -> None:
    got = timeseries.metric_series(farm, Filters(start=date(2025, 6, 8)), "failures")
    assert got.select("period", "value").rows() == [
        (date(2025, 6, 8), 0.0),
        (date(2025, 6, 9), 1.0),
        (date(2025, 6, 10), 0.0),
    ]


@pytest.mark.parametrize(
    ("grain", "start", "end", "periods"),
    [
        # Wednesday to Thursday: the week of Monday 06-02.
        ("week", date(2025, 6, 4), date(2025, 6, 5), [date(2025, 6, 2)]),
        (
            "week",
            date(2025, 6, 1),
            date(2025, 6, 9),
            [date(2025, 5, 26), date(2025, 6, 2), date(2025, 6, 9)],
        ),
        (
            "month",
            date(2025, 5, 20),
            date(2025, 7, 1),
            [date(2025, 5, 1), date(2025, 6, 1), date(2025, 7, 1)],
        ),
    ],
)
def test_range_ends_start_their_period(
    farm: Path, grain: str, start: date, end: date, periods: list[date]
) -> None:
    got = timeseries.metric_series(farm, Filters(start=start, end=end), "jobs", grain)
    assert got.get_column("period").to_list() == periods


def test_series_honour_dimension_filters(farm: Path) -> None:
    # gpu-01 ran j1 (06-02) and j3 (06-04), and f2 (06-09).
    got = timeseries.metric_series(farm, Filters(workers=("gpu-01",)), "jobs", "week")
    assert got.select("period", "value").rows() == [
        (date(2025, 6, 2), 2.0),
        (date(2025, 6, 9), 0.0),
    ]


@NOTHING
@pytest.mark.parametrize("metric", ["jobs", "avg_likeness"])
def test_a_series_of_nothing_is_empty(farm: Path, filters: Filters, metric: str) -> None:
    got = timeseries.metric_series(farm, filters, metric)
    assert got.is_empty()
    assert got.schema == SERIES_SCHEMA


def test_quality_trends_weekly_with_a_custom_score(farm: Path) -> None:
    got = timeseries.quality_trends(farm, ALL, "week")
    assert got.schema == TRENDS_SCHEMA
    w1, w2 = date(2025, 6, 2), date(2025, 6, 9)
    assert got.rows() == [
        (w1, "boundary_ssim", 0.95, 1, 0.95),
        (w1, "face_confidence", 0.9, 1, 0.9),
        # j1 0.8 and j2 0.6; j3 sent no scores.
        (w1, "likeness", pytest.approx(0.7), 2, pytest.approx(0.7)),
        (w1, "loop_seam", 0.5, 1, 0.5),
        (w1, "motion_quality", 0.7, 1, 0.7),
        (w2, "boundary_ssim", None, 0, 0.95),
        (w2, "face_confidence", None, 0, 0.9),
        (w2, "likeness", 0.9, 1, pytest.approx(0.8)),
        (w2, "loop_seam", 0.7, 1, pytest.approx(0.6)),
        (w2, "motion_quality", None, 0, 0.7),
    ]


def test_quality_trends_daily_fill_every_score(farm: Path) -> None:
    got = timeseries.quality_trends(farm, ALL)
    assert got.height == 9 * 5
    loop_seam = got.filter(pl.col("score") == "loop_seam")
    assert loop_seam.get_column("period").to_list() == _days(2, 10)
    assert loop_seam.get_column("value").to_list() == [0.5, *[None] * 7, 0.7]
    assert loop_seam.get_column("jobs").to_list() == [1, *[0] * 7, 1]
    # 06-08 still sees 06-02 (7 days back); 06-09 no longer does.
    assert loop_seam.get_column("moving_avg").to_list() == pytest.approx([0.5] * 7 + [None, 0.7])


def test_quality_trends_list_only_scores_sent_in_range(farm: Path) -> None:
    got = timeseries.quality_trends(farm, Filters(start=date(2025, 6, 10)))
    assert got.rows() == [
        (date(2025, 6, 10), "likeness", 0.9, 1, 0.9),
        (date(2025, 6, 10), "loop_seam", 0.7, 1, 0.7),
    ]


@NOTHING
def test_quality_trends_of_nothing_are_empty(farm: Path, filters: Filters) -> None:
    got = timeseries.quality_trends(farm, filters)
    assert got.is_empty()
    assert got.schema == TRENDS_SCHEMA


def test_a_lake_without_data_gives_typed_results(bare_lake: Path) -> None:
    assert timeseries.metric_series(bare_lake, ALL, "gpu_hours").schema == SERIES_SCHEMA
    assert timeseries.quality_trends(bare_lake, ALL, "month").schema == TRENDS_SCHEMA


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda lake: timeseries.metric_series(lake, ALL, "likeness"), "metric"),
        (lambda lake: timeseries.metric_series(lake, ALL, "jobs", "year"), "grain"),
        (lambda lake: timeseries.quality_trends(lake, ALL, "hour"), "grain"),
    ],
)
def test_bad_arguments_are_named(farm: Path, call, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        call(farm)


def test_every_standard_metric_is_offered() -> None:
    assert set(timeseries.METRICS) == {
        "jobs",
        "frames",
        "gpu_hours",
        "failures",
        "failure_rate",
        "avg_time_per_frame_ms",
        "p95_time_per_frame_ms",
        "avg_vram_peak_mb",
        "avg_likeness",
        "avg_face_confidence",
        "avg_motion_quality",
        "avg_boundary_ssim",
    }
    assert timeseries.GRAINS == ("day", "week", "month")
