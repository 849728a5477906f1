"""Ingest records alerts: each published job is checked against the lake's enabled thresholds."""

from __future__ import annotations

from pathlib import Path

from lake import views
from lake.thresholds import Threshold, save_threshold
from tests.lakes import write_events


def _job(eid: str, worker: str, peak: int, total: int = 24_000) -> dict:
    return {
        "event_type": "job.completed",
        "event_id": eid,
        "occurred_at": "2025-06-01T10:00:00Z",
        "job_id": f"job-{eid}",
        "workflow_id": "wf-a",
        "worker_id": worker,
        "frame_count": 10,
        "total_gpu_time_ms": 1000,
        "vram_peak_mb": peak,
        "vram_total_mb": total,
    }


def _alerts(lake: Path) -> list[tuple]:
    con = views.connect(lake)
    sql = "select event_id, metric, level from alerts order by event_id, metric"
    return views.run(con, sql).fetchall()


def test_default_vram_thresholds_raise_warning_and_critical(tmp_path: Path) -> None:
    # 20,000 / 24,000 = 83.3% (none), 21,000 = 87.5% (warning >= 85), 23,000 = 95.8% (critical).
    events = [_job("j1", "gpu-1", 20_000), _job("j2", "gpu-1", 21_000), _job("j3", "gpu-1", 23_000)]
    lake = write_events(tmp_path / "lake", events)
    assert _alerts(lake) == [
        ("j2", "vram_peak_pct", "warning"),
        ("j3", "vram_peak_pct", "critical"),
    ]


def test_a_worker_threshold_overrides_the_global_default(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_events(lake, [])
    save_threshold(
        lake,
        Threshold(
            metric="vram_peak_pct", scope="worker", scope_id="gpu-2", warning=97, critical=99
        ),
    )
    events = [_job("j1", "gpu-1", 23_000), _job("j2", "gpu-2", 23_000)]
    write_events(lake, events)
    assert _alerts(lake) == [("j1", "vram_peak_pct", "critical")]


def test_a_replayed_batch_records_its_alerts_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_events(lake, [_job("j1", "gpu-1", 23_000)])
    write_events(lake, [_job("j1", "gpu-1", 23_000)])
    assert _alerts(lake) == [("j1", "vram_peak_pct", "critical")]
