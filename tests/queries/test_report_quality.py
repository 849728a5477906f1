"""The quality report against a tiny hand-built lake.

Period 2025-06-11..06-20 (10 days), previous 06-01..06-10. Every job and failure of wf-v runs at
1080p on an L40S (one matched-work stratum).

  current   wf-v 1.0  40 jobs 06-11..06-14, likeness 0.60 / 0.70 alternating, face 0.9,
                      QA passed 20 of 40; 10 failures (oom) on 06-12
            wf-v 1.1  40 jobs 06-15..06-18, likeness 0.70 / 0.80 alternating, face 0.9,
                      QA passed 36 of 40; 2 failures (timeout) on 06-15: job v11-0 failed attempt 1
                      at 08:00 and completed as attempt 2; job lost failed once
            wf-w 2.0  2 jobs (project p2), likeness 0.8, no QA result
  previous  wf-v 0.9  10 jobs 06-05, likeness 0.5, QA passed 10 of 10; failures oom 06-05,
                      crash x2 06-06

All of wf-v is project p1.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from queries.reports import build_report
from tests.lakes import write_events

START, END = date(2025, 6, 11), date(2025, 6, 20)
WORK = {"resolution_tier": "1080p", "gpu_model": "NVIDIA L40S", "worker_id": "gpu-01"}


def _job(job_id: str, at: str, version: str, likeness: float, qa: bool | None, **extra) -> dict:
    event = {
        "event_type": "job.completed",
        "event_id": f"{job_id}-{extra.get('attempt', 1)}",
        "occurred_at": at,
        "job_id": job_id,
        "workflow_id": "wf-w" if version == "2.0" else "wf-v",
        "workflow_version": version,
        "project_id": "p2" if version == "2.0" else "p1",
        "frame_count": 100,
        "total_gpu_time_ms": 100_000,
        "quality_scores": {"likeness": likeness}
        | ({} if version == "2.0" else {"face_confidence": 0.9}),
    } | WORK
    return event | ({"qa_passed": qa} if qa is not None else {}) | extra


def _failure(job_id: str, at: str, version: str, error: str) -> dict:
    return {
        "event_type": "job.failed",
        "event_id": f"{job_id}-f",
        "occurred_at": at,
        "job_id": job_id,
        "workflow_id": "wf-v",
        "workflow_version": version,
        "project_id": "p1",
        "error_type": error,
    } | WORK


EVENTS = [
    *[
        _job(f"v10-{i}", f"2025-06-{11 + i // 10}T{i % 10 + 8:02d}:00:00Z", "1.0",
             0.6 if i % 2 else 0.7, i % 2 == 0)
        for i in range(40)
    ],
    *[_failure(f"v10-f{i}", "2025-06-12T20:00:00Z", "1.0", "oom") for i in range(10)],
    _failure("v11-0", "2025-06-15T07:00:00Z", "1.1", "timeout"),
    _job("v11-0", "2025-06-15T08:00:00Z", "1.1", 0.7, False, attempt=2),
    *[
        _job(f"v11-{i}", f"2025-06-{15 + i // 10}T{i % 10 + 8:02d}:30:00Z", "1.1",
             0.7 if i % 2 == 0 else 0.8, i % 10 != 0)
        for i in range(1, 40)
    ],
    _failure("lost", "2025-06-15T09:00:00Z", "1.1", "timeout"),
    _job("w-1", "2025-06-19T10:00:00Z", "2.0", 0.8, None),
    _job("w-2", "2025-06-19T11:00:00Z", "2.0", 0.8, None),
    *[_job(f"v09-{i}", f"2025-06-05T{i + 8:02d}:00:00Z", "0.9", 0.5, True) for i in range(10)],
    _failure("p-0", "2025-06-05T20:00:00Z", "0.9", "oom"),
    _failure("p-1", "2025-06-06T20:00:00Z", "0.9", "crash"),
    _failure("p-2", "2025-06-06T21:00:00Z", "0.9", "crash"),
    # The lake's data starts on 06-01: the previous period is wholly covered.
    _job("early", "2025-06-01T08:00:00Z", "0.9", 0.5, True),
]  # fmt: skip


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("quality") / "lake", EVENTS)


def test_headline(lake: Path) -> None:
    h = build_report(lake, "quality", START, END).headline
    assert (h["jobs"], h["failures"], h["jobs_previous"], h["failures_previous"]) == (82, 12, 11, 3)
    assert (h["failure_rate"], h["failure_rate_previous"]) == pytest.approx((12 / 94, 3 / 14))
    assert (h["qa_checked"], h["qa_pass_rate"], h["qa_pass_rate_previous"]) == (80, 0.7, 1.0)
    # 93 jobs: v11-0 took 2 attempts, every other one 1; before, 14 jobs of 1 attempt.
    assert (h["avg_attempts_per_job"], h["avg_attempts_per_job_previous"]) == pytest.approx(
        (94 / 93, 1.0)
    )
    assert (h["avg_likeness"], h["avg_likeness_previous"]) == pytest.approx((57.6 / 82, 0.5))
    assert h["workflows_with_version_change"] == 1


def test_summary(lake: Path) -> None:
    r = build_report(lake, "quality", START, END)
    assert r.summary == [
        "Auto-QA pass rate: 70.0% of 80 checked jobs, down 30.0 points on the previous 10 days "
        "(100.0%).",
        "Attempts per job: 1.01 on average, up 1.1% on the previous 10 days (1.00).",
        "Failure rate: 12.8% of attempts (12 of 94), down 8.7 points on the previous 10 days "
        "(21.4%).",
        "Most common failures: oom 10 (83.3%) and timeout 2 (16.7%).",
        "The biggest rise: oom, 10 against 1 in the previous 10 days.",
        "Average likeness score: 0.702, up 40% on the previous 10 days (0.500).",
        "wf-v 1.1 (since 15 Jun 2025) against 1.0: likeness up 15% (0.650 to 0.750) and QA pass "
        "rate up from 50.0% to 90.0%.",
    ]


def test_failure_types(lake: Path) -> None:
    r = build_report(lake, "quality", START, END)
    assert r.tables["failure_types"].rows() == [
        ("oom", 10, pytest.approx(10 / 12), 1, 900.0),
        ("timeout", 2, pytest.approx(2 / 12), None, None),
        ("crash", 0, 0.0, 2, -100.0),
    ]


def test_daily(lake: Path) -> None:
    daily = build_report(lake, "quality", START, END).tables["daily"]
    assert daily.columns == [
        "date",
        "jobs",
        "failures",
        "failure_rate",
        "qa_checked",
        "qa_pass_rate",
        "avg_likeness",
    ]
    # 06-12: 10 jobs of 1.0 (5 passed QA) and its 10 failures.
    assert daily.row(1) == (date(2025, 6, 12), 10, 10, 0.5, 10, 0.5, pytest.approx(0.65))
    # 06-15: v11-0 (attempt 2, QA failed) and v11-1..9 (i % 10 != 0: passed), 2 failures.
    assert daily.row(4)[:6] == (date(2025, 6, 15), 10, 2, pytest.approx(2 / 12), 10, 0.9)
    assert daily["date"].to_list()[-1] == date(2025, 6, 19)


def test_version_changes(lake: Path) -> None:
    changes = build_report(lake, "quality", START, END).tables["version_changes"]
    rows = {r["metric"]: r for r in changes.rows(named=True)}
    assert list(rows) == [
        "avg_likeness",
        "avg_face_confidence",
        "avg_motion_quality",
        "avg_boundary_ssim",
        "failure_rate",
        "qa_pass_rate",
    ]
    likeness = rows["avg_likeness"]
    assert (likeness["workflow_id"], likeness["version_before"], likeness["version_after"]) == (
        "wf-v",
        "1.0",
        "1.1",
    )
    assert likeness["after_since"] == date(2025, 6, 15)
    assert (likeness["before"], likeness["after"]) == pytest.approx((0.65, 0.75))
    assert likeness["pct_diff"] == pytest.approx(100 / 6.5)
    assert (likeness["n_before"], likeness["n_after"], likeness["verdict"]) == (
        40,
        40,
        "higher after",
    )
    # Alternating +-0.05 around the mean: variance 40 * 0.05^2 / 39, standard error sqrt(var/40);
    # the z of the log ratio is ~8.78, far past the 0.05 / 6 level of the six tests.
    se = math.sqrt(0.1 / 39 / 40)
    z = math.log(0.75 / 0.65) / math.hypot(se / 0.75, se / 0.65)
    assert likeness["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-6)
    face = rows["avg_face_confidence"]
    assert (face["before"], face["after"], face["verdict"]) == (0.9, 0.9, "no clear difference")
    motion = rows["avg_motion_quality"]
    assert (motion["n_before"], motion["n_after"], motion["verdict"]) == (0, 0, "not enough data")
    # 2 of 42 attempts against 10 of 50: z = -2.16, p = 0.031, not below 0.05 / 6.
    failures = rows["failure_rate"]
    assert (failures["after"], failures["before"]) == pytest.approx((2 / 42, 0.2))
    assert (failures["n_after"], failures["n_before"]) == (42, 50)
    assert failures["p_value"] == pytest.approx(0.0306, abs=5e-4)
    assert failures["verdict"] == "no clear difference"
    # QA 36/40 against 20/40: pooled 0.7, se sqrt(0.21 * 2 / 40), z = 0.4 / se = 3.90.
    qa = rows["qa_pass_rate"]
    assert (qa["after"], qa["before"], qa["pct_diff"]) == pytest.approx((0.9, 0.5, 80.0))
    z = 0.4 / math.sqrt(0.21 * 2 / 40)
    assert qa["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert qa["verdict"] == "higher after"


def test_project_filter(lake: Path) -> None:
    r = build_report(lake, "quality", START, END, project="p2")
    h = r.headline
    assert (h["jobs"], h["failures"], h["jobs_previous"]) == (2, 0, None)
    assert h["qa_pass_rate"] is None
    assert r.tables["version_changes"].is_empty()
    assert r.summary == [
        "Auto-QA: no job in the period reported a QA result.",
        "Attempts per job: 1.00 on average; the previous 10 days have no data to compare with.",
        "Failure rate: 0.0% of attempts (0 of 2); the previous 10 days have no data to compare "
        "with.",
        "Average likeness score: 0.800; the previous 10 days have no data to compare with.",
        "No workflow changed version in the period.",
    ]


def test_empty_period(lake: Path) -> None:
    r = build_report(lake, "quality", date(2025, 1, 1), date(2025, 1, 10))
    assert r.summary[0] == (
        "No data in the period 1 Jan 2025 to 10 Jan 2025: no job completed or failed."
    )
    assert all(t.is_empty() for t in r.tables.values())
    assert r.tables["version_changes"].columns[:4] == [
        "workflow_id",
        "version_before",
        "version_after",
        "after_since",
    ]
