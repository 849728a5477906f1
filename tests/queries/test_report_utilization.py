"""The GPU utilization report against a tiny hand-built lake.

Period 2025-06-11..06-20 (10 days), previous 06-01..06-10. GPU time in hours (3_600_000 ms = 1 h):

  current   u1  06-12  p1  dialogue  1080p  gpu-01  1.00 h
            u2  06-13  p1  action    4k     gpu-01  2.00 h
            u3  06-14  p2  dialogue  720p   gpu-02  0.50 h
            u4  06-15  -   -         -      gpu-02  0.25 h   (no project, scene type or tier)
            uf  06-16  p2  action    4k     gpu-02  0.25 h   failed
  previous  v1  06-05  p1  dialogue  1080p  gpu-01  2.00 h

Worker samples (one hour each unless said):
  current   gpu-01 06-12  3 generating, 1 idle                -> 75%
            gpu-02 06-14  1 generating, 3 idle, 30 min offline -> 25%
            gpu-03 06-20  1 idle                               -> 0%; and one idle sample sent
                   2025-06-20T23:30-01:00, which is 06-21 in UTC: outside the period
  previous  gpu-01 06-05  2 generating, 2 idle                 -> 50%
Fleet: 4 h generating, 5 h idle, 0.5 h offline now (4/9); 2 h and 2 h before (1/2).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from queries.reports import build_report
from tests.lakes import write_events

START, END = date(2025, 6, 11), date(2025, 6, 20)
HOUR = 3_600_000


def _job(event_id: str, day: str, worker: str, hours: float, failed: bool = False, **dims) -> dict:
    event = {
        "event_type": "job.failed" if failed else "job.completed",
        "event_id": event_id,
        "occurred_at": f"2025-06-{day}T10:00:00Z",
        "job_id": f"job-{event_id}",
        "workflow_id": "wf-a",
        "worker_id": worker,
        "total_gpu_time_ms": int(hours * HOUR),
    } | dims
    return event | ({"error_type": "crash"} if failed else {"frame_count": 100})


def _samples(worker: str, at: str, state: str, count: int, interval_s: float = 3600) -> list[dict]:
    return [
        {
            "event_type": "worker.sample",
            "event_id": f"{worker}-{at}-{state}-{i}",
            "occurred_at": at,
            "worker_id": worker,
            "gpu_model": "NVIDIA L40S",
            "state": state,
            "interval_s": interval_s,
        }
        for i in range(count)
    ]


P1_DIALOGUE = {"project_id": "p1", "scene_type": "dialogue", "resolution_tier": "1080p"}
EVENTS = [
    _job("u1", "12", "gpu-01", 1.0, **P1_DIALOGUE),
    _job("u2", "13", "gpu-01", 2.0, project_id="p1", scene_type="action", resolution_tier="4k"),
    _job("u3", "14", "gpu-02", 0.5, project_id="p2", scene_type="dialogue", resolution_tier="720p"),
    _job("u4", "15", "gpu-02", 0.25),
    _job("uf", "16", "gpu-02", 0.25, True, project_id="p2", scene_type="action", resolution_tier="4k"),
    _job("v1", "05", "gpu-01", 2.0, **P1_DIALOGUE),
    *_samples("gpu-01", "2025-06-12T09:00:00Z", "generating", 3),
    *_samples("gpu-01", "2025-06-12T09:00:00Z", "idle", 1),
    *_samples("gpu-02", "2025-06-14T09:00:00Z", "generating", 1),
    *_samples("gpu-02", "2025-06-14T09:00:00Z", "idle", 3),
    *_samples("gpu-02", "2025-06-14T09:00:00Z", "offline", 1, 1800),
    *_samples("gpu-03", "2025-06-20T09:00:00Z", "idle", 1),
    *_samples("gpu-03", "2025-06-20T23:30:00-01:00", "idle", 1),
    *_samples("gpu-01", "2025-06-05T09:00:00Z", "generating", 2),
    *_samples("gpu-01", "2025-06-05T09:00:00Z", "idle", 2),
    # A review on 06-01: the lake's data covers the whole previous period.
    {
        "event_type": "review.completed", "event_id": "r1", "occurred_at": "2025-06-01T10:00:00Z",
        "review_id": "r1", "reviewer_id": "u1", "project_id": "p1", "character_id": "c1",
        "submitted_at": "2025-06-01T09:00:00Z", "decision": "approved", "segment_count": 1,
        "annotation_count": 0,
    },
]  # fmt: skip


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("utilization") / "lake", EVENTS)


def test_headline(lake: Path) -> None:
    h = build_report(lake, "utilization", START, END).headline
    assert (h["gpu_hours"], h["gpu_hours_previous"], h["gpu_hours_change_pct"]) == pytest.approx(
        (4.0, 2.0, 100.0)
    )
    assert (h["jobs"], h["jobs_previous"], h["failures"], h["failures_previous"]) == (4, 1, 1, 0)
    assert (h["utilization"], h["utilization_previous"]) == pytest.approx((4 / 9, 0.5))
    assert (h["generating_hours"], h["idle_hours"], h["offline_hours"]) == (4.0, 5.0, 0.5)
    assert (h["generating_hours_previous"], h["idle_hours_previous"]) == (2.0, 2.0)
    # Offline time rose from none: no percentage of zero.
    assert (h["offline_hours_previous"], h["offline_hours_change_pct"]) == (0.0, None)


def test_gpu_hours_by_dimension(lake: Path) -> None:
    r = build_report(lake, "utilization", START, END)
    assert list(r.tables) == [
        "by_project",
        "by_scene_type",
        "by_resolution_tier",
        "state_hours_daily",
        "workers",
    ]
    # Columns: value, jobs, failures, gpu_hours, share, previous_gpu_hours; not given last.
    assert r.tables["by_project"].rows() == [
        ("p1", 2, 0, 3.0, 0.75, 2.0),
        ("p2", 1, 1, 0.75, 0.1875, None),
        (None, 1, 0, 0.25, 0.0625, None),
    ]
    assert r.tables["by_scene_type"].rows() == [
        ("action", 1, 1, 2.25, 0.5625, None),
        ("dialogue", 2, 0, 1.5, 0.375, 2.0),
        (None, 1, 0, 0.25, 0.0625, None),
    ]
    assert r.tables["by_resolution_tier"].rows() == [
        ("4k", 1, 1, 2.25, 0.5625, None),
        ("1080p", 1, 0, 1.0, 0.25, 2.0),
        ("720p", 1, 0, 0.5, 0.125, None),
        (None, 1, 0, 0.25, 0.0625, None),
    ]


def test_state_hours_and_workers(lake: Path) -> None:
    r = build_report(lake, "utilization", START, END)
    assert r.tables["state_hours_daily"].rows() == [
        (date(2025, 6, 12), "generating", 3.0),
        (date(2025, 6, 12), "idle", 1.0),
        (date(2025, 6, 12), "offline", 0.0),
        (date(2025, 6, 14), "generating", 1.0),
        (date(2025, 6, 14), "idle", 3.0),
        (date(2025, 6, 14), "offline", 0.5),
        (date(2025, 6, 20), "generating", 0.0),
        (date(2025, 6, 20), "idle", 1.0),
        (date(2025, 6, 20), "offline", 0.0),
    ]
    assert r.tables["workers"].rows() == [
        ("gpu-01", "NVIDIA L40S", 2, 3.0, 3.0, 1.0, 0.0, 0.75, 0.5),
        ("gpu-02", "NVIDIA L40S", 2, 1.0, 1.0, 3.0, 0.5, 0.25, None),
        ("gpu-03", "NVIDIA L40S", 0, 0.0, 0.0, 1.0, 0.0, 0.0, None),
    ]


def test_summary(lake: Path) -> None:
    r = build_report(lake, "utilization", START, END)
    assert r.summary == [
        "GPU time: 4.0 h across 4 completed jobs and 1 failed attempt, up 100% on the previous "
        "10 days (2.0 h).",
        "By project: p1 3.0 h (75.0%), p2 0.75 h (18.8%) and not given 0.25 h (6.2%).",
        "By scene type: action 2.2 h (56.2%), dialogue 1.5 h (37.5%) and not given 0.25 h (6.2%).",
        "By resolution tier: 4k 2.2 h (56.2%), 1080p 1.0 h (25.0%), 720p 0.50 h (12.5%) and not "
        "given 0.25 h (6.2%).",
        "GPU utilization: 44.4% of powered-on time spent generating (4.0 h generating, 5.0 h "
        "idle), down 5.6 points on the previous 10 days (50.0%).",
        "Workers were offline for 0.50 h in all.",
        "Least busy worker: gpu-03 at 0.0%; busiest: gpu-01 at 75.0%.",
    ]


def test_project_filter_keeps_fleet_time_farm_wide(lake: Path) -> None:
    r = build_report(lake, "utilization", START, END, project="p1")
    h = r.headline
    assert (h["gpu_hours"], h["gpu_hours_previous"]) == (3.0, 2.0)
    assert h["utilization"] == pytest.approx(4 / 9)
    assert r.tables["by_project"]["project_id"].to_list() == ["p1"]
    workers = r.tables["workers"].select("worker_id", "jobs", "gpu_hours").rows()
    assert workers == [("gpu-01", 2, 3.0), ("gpu-02", 0, 0.0), ("gpu-03", 0, 0.0)]
    assert r.summary[-1] == (
        "Worker samples carry no project: utilization and generating, idle and offline time are "
        "the whole farm's."
    )


def test_empty_period(lake: Path) -> None:
    r = build_report(lake, "utilization", date(2025, 1, 1), date(2025, 1, 10))
    assert r.summary == [
        "No data in the period 1 Jan 2025 to 10 Jan 2025: no job ran and no worker reported.",
        "The lake holds data from 1 Jun 2025 to 21 Jun 2025.",
    ]
    assert all(t.is_empty() for t in r.tables.values())
    assert r.tables["workers"].columns == [
        "worker_id",
        "gpu_model",
        "jobs",
        "gpu_hours",
        "generating_hours",
        "idle_hours",
        "offline_hours",
        "utilization",
        "previous_utilization",
    ]
    assert (r.headline["gpu_hours"], r.headline["utilization"]) == (0, None)
