"""What every report shares: argument checks, options, plain table columns, charts that point at
real columns, compared figures in threes, and a lake without data."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from queries.reports import (
    DEFAULT_GPU_RATES,
    REPORT_TYPES,
    ChartSpec,
    Report,
    ReportOptions,
    build_report,
)
from queries.reports import wording as w
from queries.reports.model import Context
from tests.lakes import write_events

START, END = date(2025, 6, 11), date(2025, 6, 20)
PLAIN = (pl.String, pl.Int64, pl.Int32, pl.Float64, pl.Date, pl.Boolean)

# One event of each kind in the period and one job before it.
EVENTS = [
    {
        "event_type": "job.completed",
        "event_id": "j1",
        "occurred_at": "2025-06-12T10:00:00Z",
        "job_id": "job-1",
        "workflow_id": "wf-a",
        "workflow_version": "1.0",
        "worker_id": "gpu-01",
        "gpu_model": "NVIDIA L40S",
        "project_id": "p1",
        "character_id": "c1",
        "scene_type": "idle",
        "resolution_tier": "1080p",
        "frame_count": 10,
        "total_gpu_time_ms": 3_600_000,
        "qa_passed": True,
        "quality_scores": {"likeness": 0.8},
    },
    {
        "event_type": "job.completed",
        "event_id": "j0",
        "occurred_at": "2025-06-05T10:00:00Z",
        "job_id": "job-0",
        "workflow_id": "wf-a",
        "workflow_version": "0.9",
        "worker_id": "gpu-01",
        "project_id": "p1",
        "frame_count": 10,
        "total_gpu_time_ms": 3_600_000,
    },
    {
        "event_type": "job.failed",
        "event_id": "f1",
        "occurred_at": "2025-06-13T10:00:00Z",
        "job_id": "job-2",
        "workflow_id": "wf-a",
        "workflow_version": "1.1",
        "worker_id": "gpu-01",
        "project_id": "p1",
        "character_id": "c1",
        "error_type": "oom",
    },
    {
        "event_type": "worker.sample",
        "event_id": "s1",
        "occurred_at": "2025-06-12T10:00:00Z",
        "worker_id": "gpu-01",
        "state": "generating",
        "interval_s": 60,
    },
    {
        "event_type": "review.completed",
        "event_id": "r1",
        "occurred_at": "2025-06-14T10:00:00Z",
        "review_id": "r1",
        "reviewer_id": "rev-a",
        "project_id": "p1",
        "character_id": "c1",
        "submitted_at": "2025-06-14T09:00:00Z",
        "decision": "approved",
        "segment_count": 2,
        "annotation_count": 1,
    },
    {
        "event_type": "character.delivered",
        "event_id": "d1",
        "occurred_at": "2025-06-15T10:00:00Z",
        "character_id": "c1",
        "project_id": "p1",
        "onboarded_at": "2025-06-10T10:00:00Z",
        "scene_count": 3,
    },
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("api") / "lake", EVENTS)


def test_report_types() -> None:
    assert REPORT_TYPES == {
        "performance": "Performance summary",
        "delivery": "Delivery summary",
        "throughput": "Throughput",
        "utilization": "GPU utilization",
        "quality": "Quality",
        "cost": "Cost per character",
        "reviewers": "Reviewer productivity",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "speed"}, "kind: must be one of performance, delivery"),
        ({"start": date(2025, 6, 21)}, "start: 2025-06-21 is after end: 2025-06-20"),
        ({"start": "2025-06-01"}, "start: must be a date"),
        ({"end": datetime(2025, 6, 20, tzinfo=UTC)}, "end: must be a date"),
        ({"project": ""}, "project: must be a project id or None"),
        ({"now": datetime(2025, 6, 21)}, "now: must carry a time zone"),
        ({"options": {"per_reviewer": True}}, "options: must be a ReportOptions"),
    ],
)
def test_bad_arguments_name_the_argument(lake: Path, kwargs: dict, message: str) -> None:
    args = {"lake": lake, "kind": "performance", "start": START, "end": END} | kwargs
    with pytest.raises(ValueError, match=message):
        build_report(**args)


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"H100": 2.0}, "gpu_hourly_usd: needs a '\\*' rate"),
        ({"*": -1.0}, "gpu_hourly_usd: rate of \\* must be >= 0, got -1.0"),
        ({"*": math.nan}, "gpu_hourly_usd: rate of \\* must be >= 0"),
        ({"*": "1"}, "gpu_hourly_usd: rate of \\* must be a number"),
        ({"*": 1.0, " ": 1.0}, "gpu_hourly_usd: a GPU model must be a name"),
    ],
)
def test_bad_rates_name_the_setting(rates: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReportOptions(gpu_hourly_usd=rates)


@pytest.mark.parametrize(
    ("model", "rate"),
    [
        ("NVIDIA H100 80GB HBM3", 2.5),
        ("NVIDIA A100-SXM4-80GB", 1.5),
        ("NVIDIA L40S", 1.0),
        ("NVIDIA GeForce RTX 4090", 0.5),
        ("nvidia rtx 4090", 0.5),
        ("NVIDIA B200", 1.0),
        (None, 1.0),
    ],
)
def test_default_rates_match_model_names(model: str | None, rate: float) -> None:
    assert ReportOptions().rate_of(model) == rate
    assert DEFAULT_GPU_RATES["*"] == 1.0


def test_options_are_frozen_hashable_and_picklable() -> None:
    rates = {"H100": 3.0, "*": 1.0}
    options = ReportOptions(gpu_hourly_usd=rates, per_reviewer=True)
    rates["H100"] = 99.0
    assert options.rate_of("NVIDIA H100") == 3.0
    with pytest.raises(TypeError):
        options.gpu_hourly_usd["H100"] = 5.0  # type: ignore[index]
    again = pickle.loads(pickle.dumps(options))
    assert again == options
    assert hash(again) == hash(options)
    assert hash(ReportOptions()) == hash(ReportOptions(gpu_hourly_usd=dict(DEFAULT_GPU_RATES)))


def test_keys_match_whole_words_the_longest_and_an_exact_name_first() -> None:
    options = ReportOptions(gpu_hourly_usd={"L4": 0.3, "L40S": 1.1, "NVIDIA L4": 0.4, "*": 9.0})
    assert options.rate_of("NVIDIA L40S") == 1.1
    assert options.rate_of("NVIDIA L4") == 0.4
    assert options.rate_of("L4 (24GB)") == 0.3
    assert options.rate_of("NVIDIA L4S") == 9.0


@pytest.mark.parametrize("kind", list(REPORT_TYPES))
def test_every_report_is_plain_and_consistent(lake: Path, kind: str) -> None:
    now = datetime(2025, 6, 21, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    r = build_report(lake, kind, START, END, now=now)
    assert isinstance(r, Report)
    assert (r.kind, r.title) == (kind, REPORT_TYPES[kind])
    assert r.generated_at == datetime(2025, 6, 21, 6, 0, tzinfo=UTC)
    assert r.generated_at.tzinfo == UTC
    assert r.data_range == (date(2025, 6, 5), date(2025, 6, 15))
    assert r.summary and all(isinstance(s, str) and s.endswith(".") for s in r.summary)
    assert not any("no data in the period" in s.lower() for s in r.summary)
    for name, table in r.tables.items():
        assert name.isidentifier() and name == name.lower(), name
        for column, dtype in table.schema.items():
            assert dtype in PLAIN, (name, column, dtype)
    for chart in r.charts:
        assert isinstance(chart, ChartSpec)
        assert chart.kind in ("bar", "line", "stacked_bar")
        columns = r.tables[chart.table].columns
        assert {chart.x, chart.y} <= set(columns), chart
        assert chart.color is None or chart.color in columns, chart
    for key, value in r.headline.items():
        assert value is None or isinstance(value, int | float | str), (key, value)
        if f"{key}_previous" in r.headline:
            assert f"{key}_change_pct" in r.headline


@pytest.mark.parametrize("kind", list(REPORT_TYPES))
def test_a_lake_without_data(bare_lake: Path, kind: str) -> None:
    r = build_report(bare_lake, kind, START, END)
    assert r.data_range == (None, None)
    assert r.summary[0].startswith("No data in the period 11 Jun 2025 to 20 Jun 2025")
    assert r.summary[1] == "The lake holds no data yet."
    # Trends keep a row per period, with null figures where the lake has no data.
    assert all(t.is_empty() for name, t in r.tables.items() if name != "trend")
    for name, table in r.tables.items():
        for column, dtype in table.schema.items():
            assert dtype in PLAIN, (name, column, dtype)


def test_a_missing_lake_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="lake"):
        build_report(tmp_path / "nowhere", "performance", START, END)


def test_queries_package_does_not_import_streamlit() -> None:
    import subprocess
    import sys

    code = "import sys, queries.reports; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


CTX = Context(Path("."), date(2025, 6, 1), date(2025, 6, 30), None, ReportOptions(), (None, None))


@pytest.mark.parametrize(
    ("value", "before", "fmt", "points", "expected"),
    [
        (1240.0, 1107.0, w.hours, False, "X: 1,240 h, up 12% on the previous 30 days (1,107 h)."),
        (
            1000.0,
            1004.0,
            w.hours,
            False,
            "X: 1,000 h, about the same as the previous 30 days (1,004 h).",
        ),
        (5.0, 5.0, w.count, False, "X: 5, the same as the previous 30 days (5)."),
        (0.0, 0.0, w.count, False, "X: 0, the same as the previous 30 days."),
        (3.0, 0.0, w.count, False, "X: 3, up from 0 in the previous 30 days."),
        (0.0, 3.0, w.count, False, "X: 0, down from 3 in the previous 30 days."),
        (9.0, None, w.count, False, "X: 9; the previous 30 days have no data to compare with."),
        (0.25, 0.2, w.share, True, "X: 25.0%, up 5.0 points on the previous 30 days (20.0%)."),
        (12_000.0, 9_000.0, w.mb, False, "X: 11.7 GB, up 33% on the previous 30 days (8.8 GB)."),
        (9_000.0, 12_000.0, w.ms, False, "X: 9.0 s, down 25% on the previous 30 days (12.0 s)."),
        (None, 3.0, w.count, False, "X: not measured in the period."),
    ],
)
def test_figure_sentences(
    value: float | None, before: float | None, fmt: w.Format, points: bool, expected: str
) -> None:
    assert w.figure(CTX, "X", value, before, fmt, points) == expected


def test_one_day_periods_read_in_the_singular() -> None:
    one = Context(
        Path("."), date(2025, 6, 1), date(2025, 6, 1), None, ReportOptions(), (None, None)
    )
    assert w.figure(one, "X", 1.0, None, w.count) == (
        "X: 1; the previous day has no data to compare with."
    )
    assert w.period(one.start, one.end) == "1 Jun 2025"
