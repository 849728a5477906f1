"""The alert queries against alerts published through the lake's writer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from lake.alerting import alerts_by_day, evaluate_jobs
from lake.layout import ensure_lake
from lake.tables import ALERTS, JOBS
from lake.thresholds import Threshold, save_threshold
from lake.writer import LakeWriter
from queries import alerts
from queries.base import Filters


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _alert(event_id: str, at: str, metric: str, level: str, value: float, **kw: Any) -> dict:
    return {
        "event_id": event_id,
        "metric": metric,
        "occurred_at": _utc(at),
        "level": level,
        "value": value,
        "threshold": 85.0 if level == "warning" else 95.0,
        "threshold_id": 1,
        "scope": "global",
        "scope_id": None,
        "attempts": None,
        "job_id": f"job-{event_id}",
        "attempt": 1,
        "workflow_id": "wf-a",
        "worker_id": "gpu-1",
        "project_id": "p-1",
        "ingested_at": _utc("2025-06-04T00:00:00Z"),
    } | kw


# 2025-06-01: e1 (2 metrics); 2025-06-02: e2, e3 (same time: ties by event_id);
# 2025-06-03: e4 at 23:30 -01:00 on 06-02, which is 00:30 UTC on 06-03, and e5 on wf-b / p-2.
ROWS = [
    _alert("e1", "2025-06-01T10:00:00Z", "vram_peak_pct", "warning", 88.0),
    _alert("e1", "2025-06-01T10:00:00Z", "likeness", "critical", 0.2, threshold=0.4),
    _alert("e3", "2025-06-02T12:00:00Z", "vram_peak_pct", "critical", 97.0),
    _alert("e2", "2025-06-02T12:00:00Z", "vram_peak_pct", "warning", 90.0),
    _alert("e4", "2025-06-02T23:30:00-01:00", "vram_peak_pct", "critical", 99.0),
    _alert(
        "e5",
        "2025-06-03T08:00:00Z",
        "failure_rate",
        "warning",
        0.25,
        threshold=0.2,
        scope="worker",
        scope_id="gpu-2",
        attempts=12,
        workflow_id="wf-b",
        worker_id="gpu-2",
        project_id="p-2",
    ),
]


def _publish(lake: Path, rows: pa.Table) -> None:
    writer = LakeWriter(lake)
    for day, part in alerts_by_day(rows):
        writer.publish(ALERTS, day, part, "part-test.parquet")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = ensure_lake(tmp_path_factory.mktemp("alerts") / "lake", create=True)
    _publish(lake, pa.Table.from_pylist(ROWS, schema=ALERTS.schema))
    return lake


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    return ensure_lake(tmp_path / "empty", create=True)


def _short(frame: pl.DataFrame) -> list[tuple]:
    return frame.select("occurred_at", "level", "metric", "job_id").rows()


def test_alerts_newest_first_ties_by_event_then_metric(lake: Path) -> None:
    got = alerts.alerts(lake, Filters())
    assert got.rows()[-1] == (
        _utc("2025-06-01T10:00:00Z"),
        "warning",
        "vram_peak_pct",
        88.0,
        85.0,
        "global",
        None,
        "wf-a",
        "gpu-1",
        "job-e1",
    )
    assert _short(got) == [
        (_utc("2025-06-03T08:00:00Z"), "warning", "failure_rate", "job-e5"),
        (_utc("2025-06-03T00:30:00Z"), "critical", "vram_peak_pct", "job-e4"),
        (_utc("2025-06-02T12:00:00Z"), "warning", "vram_peak_pct", "job-e2"),
        (_utc("2025-06-02T12:00:00Z"), "critical", "vram_peak_pct", "job-e3"),
        (_utc("2025-06-01T10:00:00Z"), "critical", "likeness", "job-e1"),
        (_utc("2025-06-01T10:00:00Z"), "warning", "vram_peak_pct", "job-e1"),
    ]
    assert got.row(0, named=True) | {"occurred_at": None} == {
        "occurred_at": None,
        "level": "warning",
        "metric": "failure_rate",
        "value": 0.25,
        "threshold": 0.2,
        "scope": "worker",
        "scope_id": "gpu-2",
        "workflow_id": "wf-b",
        "worker_id": "gpu-2",
        "job_id": "job-e5",
    }


@pytest.mark.parametrize(
    ("filters", "level", "jobs"),
    [
        (Filters(), "critical", ["job-e4", "job-e3", "job-e1"]),
        (Filters(), "warning", ["job-e5", "job-e2", "job-e1"]),
        # The alert at 23:30 -01:00 on 06-02 belongs to the UTC day 06-03.
        (Filters(start=date(2025, 6, 3)), None, ["job-e5", "job-e4"]),
        (Filters(end=date(2025, 6, 2)), None, ["job-e2", "job-e3", "job-e1", "job-e1"]),
        (Filters(workflows=("wf-b",)), None, ["job-e5"]),
        (Filters(workers=("gpu-1",)), "critical", ["job-e4", "job-e3", "job-e1"]),
        (Filters(projects=("p-2",)), None, ["job-e5"]),
        (Filters(start=date(2025, 6, 4)), None, []),
        (Filters(workflows=("wf-b",)), "critical", []),
    ],
)
def test_alerts_filters_and_level(
    lake: Path, filters: Filters, level: str | None, jobs: list[str]
) -> None:
    assert alerts.alerts(lake, filters, level).get_column("job_id").to_list() == jobs


def test_alerts_refuses_an_unknown_level(lake: Path) -> None:
    with pytest.raises(ValueError, match="level: must be one of warning, critical or none"):
        alerts.alerts(lake, Filters(), "high")


def test_active_alerts_group_critical_first_then_latest(lake: Path) -> None:
    assert alerts.active_alerts(lake, Filters()).rows() == [
        ("vram_peak_pct", "critical", "wf-a", "gpu-1", 2, _utc("2025-06-03T00:30:00Z")),
        ("likeness", "critical", "wf-a", "gpu-1", 1, _utc("2025-06-01T10:00:00Z")),
        ("failure_rate", "warning", "wf-b", "gpu-2", 1, _utc("2025-06-03T08:00:00Z")),
        ("vram_peak_pct", "warning", "wf-a", "gpu-1", 2, _utc("2025-06-02T12:00:00Z")),
    ]
    assert alerts.active_alerts(lake, Filters(end=date(2025, 6, 1))).rows() == [
        ("likeness", "critical", "wf-a", "gpu-1", 1, _utc("2025-06-01T10:00:00Z")),
        ("vram_peak_pct", "warning", "wf-a", "gpu-1", 1, _utc("2025-06-01T10:00:00Z")),
    ]


ALERT_SCHEMA = pl.Schema(
    {
        "occurred_at": pl.Datetime("us", "UTC"),
        "level": pl.String(),
        "metric": pl.String(),
        "value": pl.Float64(),
        "threshold": pl.Float64(),
        "scope": pl.String(),
        "scope_id": pl.String(),
        "workflow_id": pl.String(),
        "worker_id": pl.String(),
        "job_id": pl.String(),
    }
)
ACTIVE_SCHEMA = pl.Schema(
    {
        "metric": pl.String(),
        "level": pl.String(),
        "workflow_id": pl.String(),
        "worker_id": pl.String(),
        "alerts": pl.Int64(),
        "last_at": pl.Datetime("us", "UTC"),
    }
)


def test_an_empty_lake_gives_empty_typed_frames(lake: Path, empty: Path) -> None:
    assert alerts.alerts(lake, Filters()).schema == ALERT_SCHEMA
    for where in (empty, lake):
        got = alerts.alerts(where, Filters(start=date(2025, 7, 1)))
        assert got.is_empty() and got.schema == ALERT_SCHEMA
        active = alerts.active_alerts(where, Filters(start=date(2025, 7, 1)))
        assert active.is_empty() and active.schema == ACTIVE_SCHEMA


def test_alerts_raised_by_a_batch_reach_the_view(tmp_path: Path) -> None:
    lake = ensure_lake(tmp_path / "lake", create=True)
    job = {
        "event_id": "j1",
        "occurred_at": _utc("2025-06-05T09:00:00Z"),
        "job_id": "job-1",
        "attempt": 1,
        "workflow_id": "wf-a",
        "worker_id": "gpu-3",
        "frame_count": 10,
        "total_gpu_time_ms": 1000,
        "time_per_frame_ms": 100.0,
        "vram_peak_mb": 23_000,
        "vram_total_mb": 24_000,
    }
    batch = pa.Table.from_pylist([job], schema=JOBS.schema)
    default = Threshold(1, "vram_peak_pct", "global", None, 85.0, 95.0)
    for _ in range(2):  # replayed: kept once
        _publish(lake, evaluate_jobs(batch, None, [default]))
    got = alerts.alerts(lake, Filters())
    assert got.drop("value").rows() == [
        (
            _utc("2025-06-05T09:00:00Z"),
            "critical",
            "vram_peak_pct",
            95.0,
            "global",
            None,
            "wf-a",
            "gpu-3",
            "job-1",
        )
    ]
    # 23000 * 100 / 24000
    assert got.get_column("value").to_list() == [pytest.approx(95.8333333333)]


def test_thresholds_frame_lists_every_threshold(empty: Path) -> None:
    save_threshold(empty, Threshold(None, "likeness", "workflow", "wf-a", 0.6, 0.4, False))
    got = alerts.thresholds(empty)
    assert got.rows() == [
        (2, "likeness", "low", "workflow", "wf-a", 0.6, 0.4, False),
        (1, "vram_peak_pct", "high", "global", None, 85.0, 95.0, True),
    ]
    assert got.schema == alerts.THRESHOLD_SCHEMA
