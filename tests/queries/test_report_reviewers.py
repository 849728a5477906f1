"""The reviewer productivity report against a tiny hand-built lake.

Period 2025-06-11..06-20 (10 days), previous 06-01..06-10 (turnaround = decided - submitted):

  r0  rev-a  p1  06-05 10:00 -> 14:00   4 h  rejected  2 segments  1 note   (previous)
  r1  rev-a  p1  06-11 10:00 -> 12:00   2 h  approved  4 segments  2 notes
  r2  rev-a  p1  06-12 08:00 -> 14:00   6 h  rejected  2 segments  4 notes
  r3  rev-b  p2  06-13 10:00 -> 11:00   1 h  approved  2 segments  0 notes
  r4  rev-c  p1  06-10 20:30 -> 23:30 at -01:00 (06-11 00:30 UTC): 4 h, approved, 4 segments,
                 2 notes: in the period
  r5  rev-b  p2  06-20 20:00 -> 23:30 at -01:00 (06-21 00:30 UTC): after the period
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from queries.reports import ReportOptions, build_report
from tests.lakes import write_events

START, END = date(2025, 6, 11), date(2025, 6, 20)


def _review(
    n: int,
    reviewer: str,
    project: str,
    submitted: str,
    decided: str,
    decision: str,
    seg: int,
    notes: int,
) -> dict:
    return {
        "event_type": "review.completed",
        "event_id": f"r{n}",
        "occurred_at": decided,
        "review_id": f"r{n}",
        "reviewer_id": reviewer,
        "project_id": project,
        "character_id": "char-1",
        "submitted_at": submitted,
        "decision": decision,
        "segment_count": seg,
        "annotation_count": notes,
    }


EVENTS = [
    _review(0, "rev-a", "p1", "2025-06-05T10:00:00Z", "2025-06-05T14:00:00Z", "rejected", 2, 1),
    _review(1, "rev-a", "p1", "2025-06-11T10:00:00Z", "2025-06-11T12:00:00Z", "approved", 4, 2),
    _review(2, "rev-a", "p1", "2025-06-12T08:00:00Z", "2025-06-12T14:00:00Z", "rejected", 2, 4),
    _review(3, "rev-b", "p2", "2025-06-13T10:00:00Z", "2025-06-13T11:00:00Z", "approved", 2, 0),
    _review(4, "rev-c", "p1", "2025-06-10T20:30:00Z", "2025-06-10T23:30:00-01:00", "approved", 4, 2),
    _review(5, "rev-b", "p2", "2025-06-20T20:00:00Z", "2025-06-20T23:30:00-01:00", "approved", 1, 0),
    # A job on 06-01: the lake's data covers the whole previous period.
    {
        "event_type": "job.completed", "event_id": "j1", "occurred_at": "2025-06-01T10:00:00Z",
        "job_id": "j1", "workflow_id": "wf-a", "worker_id": "gpu-01", "frame_count": 1,
        "total_gpu_time_ms": 1,
    },
]  # fmt: skip

COLUMNS = [
    "reviews",
    "segments",
    "approved",
    "rejected",
    "approval_rate",
    "avg_turnaround_hours",
    "median_turnaround_hours",
    "annotation_density",
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("reviews") / "lake", EVENTS)


def test_headline(lake: Path) -> None:
    h = build_report(lake, "reviewers", START, END).headline
    assert (h["reviews"], h["reviews_previous"], h["reviews_change_pct"]) == (4, 1, 300.0)
    assert (h["segments"], h["reviewers"], h["approved"], h["rejected"]) == (12, 3, 3, 1)
    assert (h["approval_rate"], h["approval_rate_previous"]) == (0.75, 0.0)
    assert (h["avg_turnaround_hours"], h["avg_turnaround_hours_previous"]) == (3.25, 4.0)
    assert (h["median_turnaround_hours"], h["median_turnaround_hours_previous"]) == (3.0, 4.0)
    assert (h["annotation_density"], h["annotation_density_previous"]) == pytest.approx(
        (8 / 12, 0.5)
    )


def test_summary(lake: Path) -> None:
    r = build_report(lake, "reviewers", START, END)
    assert r.summary == [
        "Reviews completed: 4 (12 segments, 3 reviewers), up 300% on the previous 10 days (1).",
        "Review turnaround: 3.2 h on average from submission to decision (median 3.0 h), down 19% "
        "on the previous 10 days (4.0 h).",
        "Approval rate: 75.0% (3 approved, 1 rejected), up 75.0 points on the previous 10 days "
        "(0.0%).",
        "Annotation density: 0.67 notes per segment, up 33% on the previous 10 days (0.50 notes "
        "per segment).",
        "By project, reviews of p2 were the quickest (1.0 h on average) and those of p1 the "
        "slowest (4.0 h).",
        "Figures are aggregated over all reviewers.",
    ]


def test_aggregated_by_default(lake: Path) -> None:
    r = build_report(lake, "reviewers", START, END)
    assert list(r.tables) == ["daily", "by_project"]
    assert not any("reviewer_id" in t.columns for t in r.tables.values())
    assert not any("rev-" in line for line in r.summary)
    assert r.tables["by_project"].rows() == [
        ("p1", 3, 10, 2, 1, pytest.approx(2 / 3), 4.0, 4.0, 0.8, 4.0),
        ("p2", 1, 2, 1, 0, 1.0, 1.0, 1.0, 0.0, None),
    ]
    assert r.tables["daily"].select("date", "reviews", "avg_turnaround_hours").rows() == [
        (date(2025, 6, 11), 2, 3.0),
        (date(2025, 6, 12), 1, 6.0),
        (date(2025, 6, 13), 1, 1.0),
    ]


def test_per_reviewer_rows_when_asked(lake: Path) -> None:
    r = build_report(lake, "reviewers", START, END, options=ReportOptions(per_reviewer=True))
    assert list(r.tables) == ["daily", "by_project", "reviewers"]
    assert r.tables["reviewers"].columns == ["reviewer_id", *COLUMNS]
    assert r.tables["reviewers"].rows() == [
        ("rev-a", 2, 6, 1, 1, 0.5, 4.0, 4.0, 1.0),
        ("rev-b", 1, 2, 1, 0, 1.0, 1.0, 1.0, 0.0),
        ("rev-c", 1, 4, 1, 0, 1.0, 4.0, 4.0, 0.5),
    ]
    assert r.summary[-1] == "Per-reviewer rows are included because the per-reviewer setting is on."
    # The aggregate figures do not change.
    assert r.headline == build_report(lake, "reviewers", START, END).headline


def test_project_filter(lake: Path) -> None:
    r = build_report(lake, "reviewers", START, END, project="p2")
    h = r.headline
    # p2 had no review in the previous period: nothing to compare with.
    assert (h["reviews"], h["reviews_previous"], h["avg_turnaround_hours"]) == (1, None, 1.0)
    assert r.tables["by_project"]["project_id"].to_list() == ["p2"]


def test_empty_period(lake: Path) -> None:
    for options in (ReportOptions(), ReportOptions(per_reviewer=True)):
        r = build_report(lake, "reviewers", date(2025, 1, 1), date(2025, 1, 10), options=options)
        assert r.summary[0] == (
            "No data in the period 1 Jan 2025 to 10 Jan 2025: no review was completed."
        )
        assert all(t.is_empty() for t in r.tables.values())
        assert r.tables["daily"].columns == ["date", *COLUMNS]
        assert (r.headline["reviews"], r.headline["reviews_previous"]) == (0, None)
