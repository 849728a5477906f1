"""The performance report against a tiny hand-built lake (the table below gives every figure).

Period 2025-06-11..06-20 (10 days), previous 06-01..06-10. gpu = total_gpu_time_ms, frames 1000
per job, so tpf = gpu / 1000.

  previous  wf-a p1  5 jobs  tpf 1000  gpu 1_000_000 each  vram 4000 (06-01..06-05)
            wf-b p2  5 jobs  tpf 2400  gpu 2_400_000 each  vram 6000 x4, 21000 of 24000 (87.5%:
                                                           a warning alert)
            f0  wf-b p2  failed, no GPU time
  current   wf-a p1  5 jobs  tpf 1200  gpu 1_200_000 each  vram 5000 (one sent 2025-06-10T23:30
                                                           at -01:00: 06-11 00:30 UTC)
            wf-b p2  5 jobs  tpf 1500  gpu 1_500_000 each  vram 6000
            wf-c p1  1 job   tpf 3000  gpu 3_000_000       vram 23000 of 24000 (95.8%: critical)
            f1  wf-a p1  failed (oom), gpu 600_000

Totals: previous 10 jobs, 1 failure, 17_000_000 ms GPU; current 11 jobs, 1 failure, 17_100_000 ms.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from queries.base import Filters
from queries.overview import overview_totals
from queries.reports import build_report
from tests.lakes import write_events

START, END = date(2025, 6, 11), date(2025, 6, 20)
NOW = datetime(2025, 6, 21, 6, 0, tzinfo=UTC)


def _job(
    n: int, at: str, workflow: str, project: str, tpf: int, vram: int, **extra: object
) -> dict:
    return {
        "event_type": "job.completed",
        "event_id": f"{workflow}-{n}-{at}",
        "occurred_at": at,
        "job_id": f"job-{workflow}-{n}-{at}",
        "workflow_id": workflow,
        "workflow_name": workflow.upper(),
        "worker_id": "gpu-03" if workflow == "wf-c" else "gpu-01",
        "project_id": project,
        "frame_count": 1000,
        "total_gpu_time_ms": tpf * 1000,
        "vram_peak_mb": vram,
    } | extra


def _failure(event_id: str, at: str, workflow: str, project: str, gpu: int) -> dict:
    return {
        "event_type": "job.failed",
        "event_id": event_id,
        "occurred_at": at,
        "job_id": f"job-{event_id}",
        "workflow_id": workflow,
        "worker_id": "gpu-02",
        "project_id": project,
        "error_type": "oom",
        "total_gpu_time_ms": gpu,
    }


EVENTS = [
    *[_job(i, f"2025-06-0{i + 1}T10:00:00Z", "wf-a", "p1", 1000, 4000) for i in range(5)],
    *[_job(i, f"2025-06-0{i + 2}T12:00:00Z", "wf-b", "p2", 2400, 6000) for i in range(4)],
    _job(4, "2025-06-06T12:00:00Z", "wf-b", "p2", 2400, 21000, vram_total_mb=24000),
    _failure("f0", "2025-06-07T09:00:00Z", "wf-b", "p2", 0),
    _job(0, "2025-06-10T23:30:00-01:00", "wf-a", "p1", 1200, 5000),
    *[_job(i, f"2025-06-1{i + 2}T10:00:00Z", "wf-a", "p1", 1200, 5000) for i in range(1, 5)],
    *[_job(i, f"2025-06-1{i + 2}T12:00:00Z", "wf-b", "p2", 1500, 6000) for i in range(5)],
    _job(0, "2025-06-20T20:00:00Z", "wf-c", "p1", 3000, 23000, vram_total_mb=24000),
    _failure("f1", "2025-06-15T09:00:00Z", "wf-a", "p1", 600_000),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("perf") / "lake", EVENTS)


def test_headline_against_the_previous_period(lake: Path) -> None:
    r = build_report(lake, "performance", START, END, now=NOW)
    assert (r.kind, r.title, r.start, r.end) == ("performance", "Performance summary", START, END)
    assert (r.previous_start, r.previous_end) == (date(2025, 6, 1), date(2025, 6, 10))
    assert r.filters == {"project": None}
    assert r.generated_at == NOW
    assert r.data_range == (date(2025, 6, 1), date(2025, 6, 20))
    h = r.headline
    assert (h["jobs"], h["jobs_previous"], h["failures"], h["failures_previous"]) == (11, 10, 1, 1)
    assert h["jobs_change_pct"] == pytest.approx(10.0)
    assert h["failures_change_pct"] == 0.0
    assert (h["gpu_hours"], h["gpu_hours_previous"]) == pytest.approx((4.75, 17 / 3.6))
    assert h["gpu_hours_change_pct"] == pytest.approx(0.1 / 17 * 100)
    assert (h["failure_rate"], h["failure_rate_previous"]) == pytest.approx((1 / 12, 1 / 11))
    # tpf: (5 x 1200 + 5 x 1500 + 3000) / 11 against (5 x 1000 + 5 x 2400) / 10.
    assert (h["avg_time_per_frame_ms"], h["avg_time_per_frame_ms_previous"]) == (1500.0, 1700.0)
    assert h["avg_time_per_frame_ms_change_pct"] == pytest.approx(-200 / 17)
    # p95 of 11 values: halfway between the 10th (1500) and 11th (3000); of 10: 2400.
    assert (h["p95_time_per_frame_ms"], h["p95_time_per_frame_ms_previous"]) == (2250.0, 2400.0)
    assert (h["avg_vram_peak_mb"], h["avg_vram_peak_mb_previous"]) == pytest.approx(
        (78000 / 11, 6500.0)
    )
    assert (h["peak_vram_mb"], h["peak_vram_mb_previous"]) == (23000, 21000)
    assert (h["alerts"], h["alerts_previous"], h["alerts_change_pct"]) == (1, 1, 0.0)
    assert (h["critical_alerts"], h["critical_alerts_previous"]) == (1, 0)
    assert h["critical_alerts_change_pct"] is None


def test_summary_reads_like_an_analyst(lake: Path) -> None:
    r = build_report(lake, "performance", START, END)
    assert r.summary == [
        "GPU time: 4.8 h across 11 completed jobs and 1 failed attempt, up 0.6% on the previous "
        "10 days (4.7 h).",
        "Average time per frame: 1,500 ms, down 12% on the previous 10 days (1,700 ms).",
        "Failure rate: 8.3% of attempts (1 of 12), down 0.8 points on the previous 10 days (9.1%).",
        "Average VRAM peak per job: 7,091 MB, up 9.1% on the previous 10 days (6,500 MB).",
        "The highest VRAM peak of a job was 22.5 GB.",
        "Biggest slowdown: wf-a, 1,200 ms per frame, up 20% on the previous 10 days (1,000 ms).",
        "Biggest speed-up: wf-b, 1,500 ms per frame, down 38% on the previous 10 days (2,400 ms).",
        "Most GPU time went to wf-b: 2.1 h, 43.9% of the total.",
        "Alerts: 1 (1 critical), the same as the previous 10 days (1). The most frequent: "
        "vram_peak_pct (critical) on wf-c / gpu-03, 1 alert.",
    ]


def test_workflow_table_and_ranking(lake: Path) -> None:
    r = build_report(lake, "performance", START, END)
    assert list(r.tables) == ["workflows", "top_bottom_workflows", "daily", "alerts"]
    wf = r.tables["workflows"]
    assert wf.columns == [
        "workflow_id",
        "workflow_name",
        "jobs",
        "failures",
        "failure_rate",
        "gpu_hours",
        "gpu_share",
        "avg_time_per_frame_ms",
        "previous_avg_time_per_frame_ms",
        "time_per_frame_change_pct",
        "p95_time_per_frame_ms",
        "avg_vram_peak_mb",
        "max_vram_peak_mb",
    ]
    # Most GPU hours first: wf-b 7.5M ms, wf-a 6.0M + 0.6M failed, wf-c 3.0M.
    assert wf["workflow_id"].to_list() == ["wf-b", "wf-a", "wf-c"]
    assert wf["workflow_name"].to_list() == ["WF-B", "WF-A", "WF-C"]
    assert wf["failures"].to_list() == [0, 1, 0]
    assert wf["gpu_hours"].to_list() == pytest.approx([7.5 / 3.6, 6.6 / 3.6, 3 / 3.6])
    assert wf["gpu_share"].to_list() == pytest.approx([7.5 / 17.1, 6.6 / 17.1, 3 / 17.1])
    assert wf["previous_avg_time_per_frame_ms"].to_list() == [2400.0, 1000.0, None]
    assert wf["time_per_frame_change_pct"].to_list() == pytest.approx([-37.5, 20.0, None])
    ranked = r.tables["top_bottom_workflows"]
    # wf-c ran no job in the previous period: it is not ranked.
    assert ranked.select("rank_group", "rank", "workflow_id", "jobs", "previous_jobs").rows() == [
        ("top", 1, "wf-b", 5, 5),
        ("bottom", 1, "wf-a", 5, 5),
    ]


def test_days_and_alerts_tables(lake: Path) -> None:
    r = build_report(lake, "performance", START, END)
    daily = r.tables["daily"]
    # The job sent at 23:30 -01:00 on 06-10 is on 06-11 UTC; wf-a's other current jobs run
    # 06-13..06-16, wf-b's 06-12..06-16, f1 on 06-15, wf-c on 06-20.
    assert daily.drop("gpu_hours").rows() == [
        (date(2025, 6, 11), 1, 1000, 0),
        (date(2025, 6, 12), 1, 1000, 0),
        (date(2025, 6, 13), 2, 2000, 0),
        (date(2025, 6, 14), 2, 2000, 0),
        (date(2025, 6, 15), 2, 2000, 1),
        (date(2025, 6, 16), 2, 2000, 0),
        (date(2025, 6, 20), 1, 1000, 0),
    ]
    hours = [1.2, 1.5, 2.7, 2.7, 3.3, 2.7, 3.0]
    assert daily["gpu_hours"].to_list() == pytest.approx([h / 3.6 for h in hours])
    assert r.tables["alerts"].rows() == [
        ("vram_peak_pct", "critical", "wf-c", "gpu-03", 1, "2025-06-20T20:00:00Z")
    ]


def test_project_filter(lake: Path) -> None:
    r = build_report(lake, "performance", START, END, project="p2")
    h = r.headline
    assert r.filters == {"project": "p2"}
    assert (h["jobs"], h["jobs_previous"], h["failures"], h["failures_previous"]) == (5, 5, 0, 1)
    assert (h["gpu_hours"], h["gpu_hours_previous"]) == pytest.approx((7.5 / 3.6, 12 / 3.6))
    assert (h["alerts"], h["alerts_previous"], h["critical_alerts"]) == (0, 1, 0)
    assert r.tables["workflows"]["workflow_id"].to_list() == ["wf-b"]
    assert r.summary[0] == (
        "GPU time: 2.1 h across 5 completed jobs and 0 failed attempts, down 38% on the previous "
        "10 days (3.3 h)."
    )
    assert r.summary[-1] == "Alerts: 0 (0 critical), down from 1 in the previous 10 days."


def test_agrees_with_the_overview_totals(lake: Path) -> None:
    r = build_report(lake, "performance", START, END, project="p1")
    totals = overview_totals(lake, Filters(START, END, projects=("p1",))).row(0, named=True)
    h = r.headline
    assert (h["jobs"], h["failures"]) == (totals["jobs"], totals["failures"])
    assert h["gpu_hours"] == pytest.approx(totals["gpu_hours"])
    assert h["p95_time_per_frame_ms"] == pytest.approx(totals["p95_time_per_frame_ms"])
    assert h["peak_vram_mb"] == totals["peak_vram_mb"]


def test_no_previous_data_claims_no_change(lake: Path) -> None:
    r = build_report(lake, "performance", date(2025, 6, 1), date(2025, 6, 10))
    h = r.headline
    assert (h["jobs"], h["jobs_previous"], h["jobs_change_pct"]) == (10, None, None)
    assert (h["alerts_previous"], h["avg_time_per_frame_ms_previous"]) == (None, None)
    assert r.summary[0] == (
        "GPU time: 4.7 h across 10 completed jobs and 1 failed attempt; the previous 10 days "
        "have no data to compare with."
    )
    assert not any(line.startswith(("Biggest", "The lake's data")) for line in r.summary)
    assert r.tables["top_bottom_workflows"].is_empty()


def test_previous_period_partly_covered(lake: Path) -> None:
    r = build_report(lake, "performance", date(2025, 6, 7), date(2025, 6, 16))
    assert r.summary[-1] == (
        "The lake's data begins on 1 Jun 2025, so the previous 10 days are only partly covered "
        "by it."
    )


def test_empty_period(lake: Path) -> None:
    r = build_report(lake, "performance", date(2025, 1, 1), date(2025, 1, 10), project="p1")
    assert r.summary == [
        "No data in the period 1 Jan 2025 to 10 Jan 2025 for project p1: no job completed or "
        "failed.",
        "The lake holds data from 1 Jun 2025 to 20 Jun 2025.",
    ]
    assert all(t.is_empty() for t in r.tables.values())
    assert r.tables["workflows"].schema["gpu_hours"] == pl.Float64
    assert r.tables["daily"].schema["date"] == pl.Date
    assert (r.headline["jobs"], r.headline["gpu_hours"], r.headline["jobs_previous"]) == (
        0,
        0,
        None,
    )
    assert r.headline["avg_time_per_frame_ms"] is None
