"""Workflow queries against the tiny farm lake of conftest.py (its table gives every figure)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from queries import workflows
from queries.base import Filters

ALL = Filters()
NOTHING_MATCHES = Filters(workflows=("wf-nope",))
NO_DAYS = Filters(start=date(2020, 1, 1), end=date(2020, 1, 31))
NOTHING = pytest.mark.parametrize(
    "filters", [NOTHING_MATCHES, NO_DAYS], ids=["no-match", "no-days"]
)

SUMMARY_SCHEMA = pl.Schema(
    {
        "workflow_id": pl.String(),
        "workflow_name": pl.String(),
        "jobs": pl.Int64(),
        "failures": pl.Int64(),
        "failure_rate": pl.Float64(),
        "avg_time_per_frame_ms": pl.Float64(),
        "min_time_per_frame_ms": pl.Float64(),
        "max_time_per_frame_ms": pl.Float64(),
        "p50_time_per_frame_ms": pl.Float64(),
        "p95_time_per_frame_ms": pl.Float64(),
        "p99_time_per_frame_ms": pl.Float64(),
        "avg_gpu_time_ms": pl.Float64(),
        "total_gpu_hours": pl.Float64(),
        "avg_wall_time_ms": pl.Float64(),
        "avg_vram_peak_mb": pl.Float64(),
        "max_vram_peak_mb": pl.Int64(),
        "avg_likeness": pl.Float64(),
        "avg_face_confidence": pl.Float64(),
        "avg_motion_quality": pl.Float64(),
        "avg_boundary_ssim": pl.Float64(),
        "percentile_sample_rate": pl.Int64(),
    }
)


def test_workflow_summary(farm: Path) -> None:
    got = workflows.workflow_summary(farm, ALL)
    assert got.schema == SUMMARY_SCHEMA
    a, b, c = got.rows(named=True)
    # f1 came last but sent no name: the latest name sent is j2's.
    assert (a["workflow_id"], a["workflow_name"], a["jobs"], a["failures"]) == (
        "wf-a",
        "Alpha",
        2,
        1,
    )
    assert a["failure_rate"] == pytest.approx(1 / 3)
    # tpf 1000 and 2000: p50 1500, p95 1000 + 0.95 * 1000, p99 1000 + 0.99 * 1000.
    assert [a[k] for k in list(SUMMARY_SCHEMA)[5:11]] == pytest.approx(
        [1500.0, 1000.0, 2000.0, 1500.0, 1950.0, 1990.0]
    )
    # Average GPU time of the jobs (0.9M, 1.8M ms); hours with f1's 1.8M: 4.5M ms.
    assert (a["avg_gpu_time_ms"], a["total_gpu_hours"]) == pytest.approx((1_350_000.0, 1.25))
    assert (a["avg_wall_time_ms"], a["avg_vram_peak_mb"], a["max_vram_peak_mb"]) == (
        1_500_000.0,
        6000.0,
        8000,
    )
    assert [a[k] for k in list(SUMMARY_SCHEMA)[16:20]] == pytest.approx([0.7, 0.9, 0.7, 0.95])
    assert a["percentile_sample_rate"] == 1  # a tiny lake: exact percentiles

    # wf-b: j3 has no wall time, no VRAM and no scores; those averages are j4's alone.
    assert b == {
        "workflow_id": "wf-b",
        "workflow_name": "Beta",
        "jobs": 2,
        "failures": 0,
        "failure_rate": 0.0,
        "avg_time_per_frame_ms": 3500.0,
        "min_time_per_frame_ms": 3000.0,
        "max_time_per_frame_ms": 4000.0,
        "p50_time_per_frame_ms": 3500.0,
        "p95_time_per_frame_ms": pytest.approx(3950.0),
        "p99_time_per_frame_ms": pytest.approx(3990.0),
        "avg_gpu_time_ms": 1_350_000.0,
        "total_gpu_hours": 0.75,
        "avg_wall_time_ms": 2_000_000.0,
        "avg_vram_peak_mb": 6000.0,
        "max_vram_peak_mb": 6000,
        "avg_likeness": 0.9,
        "avg_face_confidence": None,
        "avg_motion_quality": None,
        "avg_boundary_ssim": None,
        "percentile_sample_rate": 1,
    }
    # wf-c only failed, without GPU time: counted, every job statistic null.
    assert list(c.values()) == [
        "wf-c", "Gamma", 0, 1, 1.0, *[None] * 6, None, 0.0, *[None] * 7, 1,
    ]  # fmt: skip


def test_workflow_summary_honours_filters(farm: Path) -> None:
    got = workflows.workflow_summary(farm, Filters(scene_types=("walk",)))
    # j2 and f1.
    assert got.select("workflow_id", "jobs", "failures", "total_gpu_hours").rows() == [
        ("wf-a", 1, 1, 1.0)
    ]


@NOTHING
def test_workflow_summary_of_nothing_is_empty(farm: Path, filters: Filters) -> None:
    got = workflows.workflow_summary(farm, filters)
    assert got.is_empty()
    assert got.schema == SUMMARY_SCHEMA


HISTOGRAM_SCHEMA = pl.Schema(
    {
        "workflow_id": pl.String(),
        "bin_start": pl.Float64(),
        "bin_end": pl.Float64(),
        "jobs": pl.Int64(),
        "sample_rate": pl.Int64(),
    }
)


def test_histogram_bins_are_shared_and_the_maximum_is_in_the_last(farm: Path) -> None:
    # tpf 1000..4000 in 3 bins of 1000; 4000 falls in the last bin.
    got = workflows.histogram(farm, ALL, "time_per_frame_ms", bins=3)
    assert got.schema == HISTOGRAM_SCHEMA
    assert got.rows() == [
        ("wf-a", 1000.0, 2000.0, 1, 1),
        ("wf-a", 2000.0, 3000.0, 1, 1),
        ("wf-b", 3000.0, 4000.0, 2, 1),
    ]


def test_histogram_leaves_out_jobs_without_the_score(farm: Path) -> None:
    # Likeness 0.8, 0.6 (wf-a), 0.9 (wf-b; j3 has none): 2 bins of 0.15 from 0.6.
    got = workflows.histogram(farm, ALL, "likeness", bins=2)
    assert got.get_column("workflow_id").to_list() == ["wf-a", "wf-a", "wf-b"]
    assert got.get_column("jobs").to_list() == [1, 1, 1]
    assert got.select("bin_start", "bin_end").rows() == [
        pytest.approx((0.6, 0.75)),
        pytest.approx((0.75, 0.9)),
        pytest.approx((0.75, 0.9)),
    ]


def test_histogram_of_one_value_is_one_bin(farm: Path) -> None:
    got = workflows.histogram(farm, Filters(projects=("p1",), scene_types=("walk",)), "likeness")
    assert got.rows() == [("wf-a", 0.6, 0.6, 1, 1)]


@NOTHING
def test_histogram_of_nothing_is_empty(farm: Path, filters: Filters) -> None:
    got = workflows.histogram(farm, filters, "likeness")
    assert got.is_empty()
    assert got.schema == HISTOGRAM_SCHEMA


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"metric": "frame_count"}, "metric"), ({"metric": "likeness", "bins": 0}, "bins")],
)
def test_histogram_refuses_bad_arguments(farm: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        workflows.histogram(farm, ALL, **kwargs)


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("project_id", [("p1", 2, 1.25, 0.625), ("p2", 2, 0.75, 0.375)]),
        # walk: j2 0.5 h + f1 0.5 h; action (j4) and idle (j1, j3, f2) tie at 0.5 h: by value.
        (
            "scene_type",
            [("walk", 1, 1.0, 0.5), ("action", 1, 0.5, 0.25), ("idle", 2, 0.5, 0.25)],
        ),
        # Only j1 names a character: the rest is the null value.
        ("character_id", [(None, 3, 1.75, 0.875), ("char-1", 1, 0.25, 0.125)]),
        (
            "resolution_tier",
            [("4k", 1, 1.0, 0.5), ("1080p", 2, 0.5, 0.25), ("720p", 1, 0.5, 0.25)],
        ),
    ],
)
def test_gpu_time_by(farm: Path, dimension: str, expected: list[tuple]) -> None:
    got = workflows.gpu_time_by(farm, ALL, dimension)
    assert got.rows() == expected
    assert got.schema == pl.Schema(
        {"value": pl.String(), "jobs": pl.Int64(), "gpu_hours": pl.Float64(), "share": pl.Float64()}
    )


def test_gpu_time_by_without_gpu_time_has_no_share(farm: Path) -> None:
    # f2 alone: a failure that sent no GPU time.
    got = workflows.gpu_time_by(farm, Filters(workflows=("wf-c",)), "project_id")
    assert got.rows() == [("p2", 0, 0.0, None)]


@NOTHING
def test_gpu_time_by_of_nothing_is_empty(farm: Path, filters: Filters) -> None:
    got = workflows.gpu_time_by(farm, filters, "scene_type")
    assert got.is_empty()
    assert got.columns == ["value", "jobs", "gpu_hours", "share"]


@pytest.mark.parametrize("dimension", ["worker_id", "project_id; drop view jobs", ""])
def test_gpu_time_by_refuses_other_dimensions(farm: Path, dimension: str) -> None:
    with pytest.raises(ValueError, match=r"^dimension:"):
        workflows.gpu_time_by(farm, ALL, dimension)


STAGES_SCHEMA = pl.Schema(
    {
        "stage_name": pl.String(),
        "stages": pl.Int64(),
        "total_ms": pl.Float64(),
        "share": pl.Float64(),
        "avg_ms": pl.Float64(),
        "p50_ms": pl.Float64(),
        "p95_ms": pl.Float64(),
        "percentile_sample_rate": pl.Int64(),
    }
)


def test_stage_breakdown_counts_completed_and_failed_attempts(farm: Path) -> None:
    got = workflows.stage_breakdown(farm, ALL)
    assert got.schema == STAGES_SCHEMA
    assert got.rows() == [
        # 800, 3000, 1200, 500 (f1): p50 (800 + 1200) / 2, p95 1200 + 0.85 * 1800.
        ("sample", 4, 5500.0, 0.6875, 1375.0, 1000.0, pytest.approx(2730.0), 1),
        ("vae_decode", 1, 2000.0, 0.25, 2000.0, 2000.0, 2000.0, 1),
        # 100, 100, 100 (f1), 200: p95 100 + 0.85 * 100.
        ("load_model", 4, 500.0, 0.0625, 125.0, 100.0, pytest.approx(185.0), 1),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # Columns job_stages has: j2, f1 and j4 ran on gpu-02.
        (
            Filters(workers=("gpu-02",)),
            [("sample", 3500.0), ("vae_decode", 2000.0), ("load_model", 400.0)],
        ),
        (
            Filters(workflows=("wf-b",)),
            [("vae_decode", 2000.0), ("sample", 1200.0), ("load_model", 200.0)],
        ),
        # Columns only the attempts have: p2 is j3, j4 (and f2, without stages).
        (
            Filters(projects=("p2",)),
            [("vae_decode", 2000.0), ("sample", 1200.0), ("load_model", 200.0)],
        ),
        # 4k is j2 and the failure f1.
        (Filters(resolution_tiers=("4k",)), [("sample", 3500.0), ("load_model", 200.0)]),
        (
            Filters(scene_types=("idle",), workers=("gpu-01",)),
            [("sample", 2000.0), ("load_model", 100.0)],
        ),
        # j3 finished on 06-04 UTC (06-03 at -01:00).
        (Filters(start=date(2025, 6, 3), end=date(2025, 6, 4)), [("sample", 1200.0)]),
    ],
)
def test_stage_breakdown_honours_filters(farm: Path, filters: Filters, expected: list) -> None:
    got = workflows.stage_breakdown(farm, filters)
    assert got.select("stage_name", "total_ms").rows() == expected
    assert got.get_column("share").sum() == pytest.approx(1.0)


def test_stage_breakdown_shares_of_a_joined_filter(farm: Path) -> None:
    # 2000 + 1200 + 200 = 3400 ms.
    got = workflows.stage_breakdown(farm, Filters(projects=("p2",)))
    assert got.get_column("share").to_list() == pytest.approx([10 / 17, 6 / 17, 1 / 17])


@pytest.mark.parametrize(
    "filters",
    [NOTHING_MATCHES, NO_DAYS, Filters(projects=("p-nope",))],
    ids=["no-match", "no-days", "joined"],
)
def test_stage_breakdown_of_nothing_is_empty(farm: Path, filters: Filters) -> None:
    got = workflows.stage_breakdown(farm, filters)
    assert got.is_empty()
    assert got.schema == STAGES_SCHEMA


def test_a_lake_without_data_gives_typed_results(bare_lake: Path) -> None:
    assert workflows.workflow_summary(bare_lake, ALL).schema == SUMMARY_SCHEMA
    assert workflows.histogram(bare_lake, ALL, "time_per_frame_ms").is_empty()
    assert workflows.gpu_time_by(bare_lake, ALL, "project_id").is_empty()
    assert workflows.stage_breakdown(bare_lake, Filters(projects=("p1",))).schema == STAGES_SCHEMA


def test_filter_choices_list_every_value_of_jobs_and_failures(farm: Path) -> None:
    # wf-c appears only through the failure f2.
    got = workflows.filter_choices(farm)
    assert got.schema == pl.Schema({"dimension": pl.String(), "value": pl.String()})
    assert got.rows() == [
        ("project_id", "p1"),
        ("project_id", "p2"),
        ("resolution_tier", "1080p"),
        ("resolution_tier", "4k"),
        ("resolution_tier", "720p"),
        ("scene_type", "action"),
        ("scene_type", "idle"),
        ("scene_type", "walk"),
        ("worker_id", "gpu-01"),
        ("worker_id", "gpu-02"),
        ("workflow_id", "wf-a"),
        ("workflow_id", "wf-b"),
        ("workflow_id", "wf-c"),
    ]


def test_filter_choices_of_an_empty_lake_are_empty(bare_lake: Path) -> None:
    assert workflows.filter_choices(bare_lake).is_empty()


def test_gpu_time_by_dimensions_is_every_dimension_in_one_frame(farm: Path) -> None:
    every = workflows.gpu_time_by_dimensions(farm, ALL)
    assert every.get_column("dimension").unique(maintain_order=True).to_list() == list(
        workflows.GPU_TIME_DIMENSIONS
    )
    for dimension in workflows.GPU_TIME_DIMENSIONS:
        one = every.filter(pl.col("dimension") == dimension).drop("dimension")
        assert one.equals(workflows.gpu_time_by(farm, ALL, dimension))
        assert one.get_column("share").sum() == pytest.approx(1.0)


def test_workflow_jobs_lists_every_workflow_busiest_first(farm: Path) -> None:
    # wf-a and wf-b ran 2 jobs each (a tie: wf-a has a failure too); wf-c only failed.
    assert workflows.workflow_jobs(farm, Filters()).rows() == [
        ("wf-a", 2, 1),
        ("wf-b", 2, 0),
        ("wf-c", 0, 1),
    ]
    assert workflows.workflow_jobs(farm, Filters(projects=("p2",))).rows() == [
        ("wf-b", 2, 0),
        ("wf-c", 0, 1),
    ]
    after = Filters(start=date(2025, 6, 10))
    assert workflows.workflow_jobs(farm, after).rows() == [("wf-b", 1, 0)]
    empty = workflows.workflow_jobs(farm, Filters(workflows=("wf-x",)))
    assert empty.is_empty()
    assert empty.schema == pl.Schema(
        {"workflow_id": pl.String(), "jobs": pl.Int64(), "failures": pl.Int64()}
    )
