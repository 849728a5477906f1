"""The "Overview" page through AppTest on the farm lake of conftest.py."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from app import cached
from tests.app.apptest import FARM_DAYS, downloads, every_range_sampled, open_page, rerun
from tests.lakes import write_events


def test_page_shows_totals_volume_ranking_and_alerts(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "overview", monkeypatch, **FARM_DAYS)
    assert [t.value for t in at.title] == ["Overview"]
    metrics = {m.label: m.value for m in at.metric}
    assert list(metrics) == [
        "GPU hours",
        "Jobs",
        "Frames",
        "Success rate",
        "Avg time per frame",
        "p95 time per frame",
        "Peak VRAM",
    ]
    # 90 jobs of 24 frames, 5 failures: 90 / 95 succeeded; job 11 peaked at 23,500 MB.
    assert metrics["Jobs"] == "90"
    assert metrics["Frames"] == "2,160"
    assert metrics["Success rate"] == "94.7%"
    assert metrics["Peak VRAM"] == "22.9 GB"
    # The five days before hold nothing: no change to show.
    assert all(m.proto.delta == "" for m in at.metric)
    assert len(at.get("vega_lite_chart")) == 1
    best, worst, active = (d.value for d in at.dataframe)
    # By time per frame, lower is better: wf-a (1000 ms, x1.4 on gpu-03) first, wf-c last.
    assert list(best["workflow_id"]) == ["wf-a", "wf-b", "wf-c"]
    assert list(worst["workflow_id"]) == ["wf-c", "wf-b", "wf-a"]
    assert list(active["level"]) == ["critical", "warning"]
    assert downloads(at) == [
        "daily_volume",
        "workflows_top_time_per_frame_ms",
        "workflows_bottom_time_per_frame_ms",
        "active_alerts",
    ]


def test_ranking_metric_is_chosen_and_kept_in_the_url(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "overview", monkeypatch, **FARM_DAYS)
    at.selectbox(key="url:rank_by").set_value("failure_rate")
    rerun(at)
    best = at.dataframe[0].value
    # Every failure is wf-a's: 5 of its 35 attempts.
    assert list(best["workflow_id"]) == ["wf-b", "wf-c", "wf-a"]
    assert list(best["value"]) == pytest.approx([0.0, 0.0, 5 / 35])
    assert at.query_params["rank_by"] == "failure_rate"
    assert "csv-workflows_top_failure_rate" in [b.key for b in at.get("download_button")]


def test_sidebar_filter_changes_the_totals(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "overview", monkeypatch, **FARM_DAYS, project="p-1")
    metrics = {m.label: m.value for m in at.metric}
    # p-1 holds the even jobs (45) and every failure (the day's first job, i % 18 == 0).
    assert metrics["Jobs"] == "45"
    assert metrics["Success rate"] == "90.0%"
    # No alert on p-1 (jobs 7 and 11 are p-2).
    assert [s.value for s in at.success] == ["No alert was raised in this range."]


def test_previous_period_gives_the_change(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 06-04..05 against 06-02..03: 36 jobs each, so no change in jobs.
    at = open_page(
        farm_lake,
        "overview",
        monkeypatch,
        range="custom",
        **{"from": "2025-06-04", "to": "2025-06-05"},
    )
    jobs = next(m for m in at.metric if m.label == "Jobs")
    assert (jobs.value, jobs.proto.delta) == ("36", "+0.0%")


def test_new_data_shows_without_a_restart(
    farm_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Path(shutil.copytree(farm_lake, tmp_path / "farm"))
    at = open_page(lake, "overview", monkeypatch, **FARM_DAYS)
    assert {m.label: m.value for m in at.metric}["Jobs"] == "90"
    late = {
        "event_type": "job.completed",
        "event_id": "late-1",
        "occurred_at": "2025-06-05T23:00:00Z",
        "job_id": "late-1",
        "workflow_id": "wf-a",
        "worker_id": "gpu-01",
        "frame_count": 24,
        "total_gpu_time_ms": 24_000,
    }
    write_events(lake, [late])
    # A rerun well within the cache's TTL, once the version is no longer reused (a second), sees
    # the new job: the lake's version changed.
    time.sleep(cached.VERSION_REUSE_S)
    rerun(at)
    assert {m.label: m.value for m in at.metric}["Jobs"] == "91"


def test_a_large_range_says_the_p95_is_estimated(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "overview", monkeypatch, **FARM_DAYS)
    assert "job sample" not in " ".join(c.value for c in at.caption)
    exact = {m.label: m.value for m in at.metric}
    with every_range_sampled(monkeypatch):
        at = open_page(farm_lake, "overview", monkeypatch, **FARM_DAYS)
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "the p95 is estimated on the lake's 1-in-16 job sample" in captions
    sampled = {m.label: m.value for m in at.metric}
    assert sampled["Jobs"] == exact["Jobs"]  # the counts stay exact
