"""The "Workflows" page through AppTest on the farm lake of conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.apptest import FARM_DAYS, downloads, every_range_sampled, open_page, rerun


def test_page_shows_every_section(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "workflows", monkeypatch, **FARM_DAYS)
    assert [t.value for t in at.title] == ["Workflows"]
    assert [h.value for h in at.subheader] == [
        "Summary",
        "Distributions",
        "GPU time",
        "Pipeline stages",
    ]
    summary = at.dataframe[0].value
    assert list(summary["workflow_id"]) == ["wf-a", "wf-b", "wf-c"]
    # 90 jobs, i % 3 picks the workflow; one failure a day on the day's first job (i % 18 == 0,
    # so always wf-a).
    assert list(summary["jobs"]) == [30, 30, 30]
    assert list(summary["failures"]) == [5, 0, 0]
    # Two histograms, four GPU time bars (one per tab) and the stage bars.
    assert len(at.get("vega_lite_chart")) == 7
    assert downloads(at) == [
        "workflow_summary",
        "histogram_time_per_frame_ms",
        "histogram_likeness",
        "gpu_time_by_project_id",
        "gpu_time_by_character_id",
        "gpu_time_by_scene_type",
        "gpu_time_by_resolution_tier",
        "stage_breakdown",
    ]
    stages = at.dataframe[-1].value
    assert list(stages["stage_name"]) == ["sample", "load_model"]
    assert not at.info


def test_sidebar_filter_changes_the_page(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "workflows", monkeypatch, **FARM_DAYS)
    at.sidebar.multiselect(key="url:workflow").set_value(["wf-b"])
    rerun(at)
    assert list(at.dataframe[0].value["workflow_id"]) == ["wf-b"]
    assert at.query_params["workflow"] == "wf-b"
    # The URL opens the same view in a new session.
    again = open_page(farm_lake, "workflows", monkeypatch, **FARM_DAYS, workflow="wf-b")
    assert list(again.dataframe[0].value["workflow_id"]) == ["wf-b"]


def test_histograms_show_the_workflows_picked(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "workflows", monkeypatch, **FARM_DAYS, spread="wf-c")
    assert at.multiselect(key="url:spread").value == ["wf-c"]
    at.multiselect(key="url:spread").set_value([])
    rerun(at)
    assert [i.value for i in at.info] == [
        "No completed job of the workflows shown has a time per frame (ms) value.",
        "No completed job of the workflows shown has a likeness value.",
    ]
    assert len(at.get("vega_lite_chart")) == 5


def test_custom_days_in_the_wrong_order_are_swapped(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = {"range": "custom", "from": "2025-06-02", "to": "2025-06-01"}
    at = open_page(farm_lake, "workflows", monkeypatch, **days)
    assert [w.value for w in at.sidebar.warning] == [
        "From (2025-06-02) is after To (2025-06-01): showing 2025-06-01 to 2025-06-02."
    ]
    assert at.caption[0].value == "2025-06-01 to 2025-06-02 (UTC days)"
    # Two days of 18 jobs.
    assert at.dataframe[0].value["jobs"].sum() == 36


def test_a_large_range_says_what_the_samples_estimated(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with every_range_sampled(monkeypatch):
        at = open_page(farm_lake, "workflows", monkeypatch, **FARM_DAYS)
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "p50, p95 and p99 are estimated on the lake's 1-in-16 job sample" in captions
    assert (
        "Over this large range: the jobs of the lake's 1-in-16 sample, for the workflows whose "
        "sample_rate says so."
    ) in captions
    assert "p50 and p95 are estimated on the stages of the lake's 1-in-16 job sample" in captions
    summary = at.dataframe[0].value
    assert set(summary["percentile_sample_rate"]) == {16}
    assert list(summary["jobs"]) == [30, 30, 30]  # counts stay exact
