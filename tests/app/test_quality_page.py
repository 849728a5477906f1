"""The "Quality" page through AppTest on the farm lake of conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.apptest import (
    FARM_DAYS,
    chart_rows,
    downloads,
    every_range_sampled,
    open_page,
    rerun,
)


def test_page_shows_series_trends_correlations_and_configurations(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "quality", monkeypatch, **FARM_DAYS, min_jobs="2")
    assert [t.value for t in at.title] == ["Quality"]
    assert [h.value for h in at.subheader] == [
        "A metric over time",
        "Quality scores",
        "Parameters, per workflow",
    ]
    # The series, the score trends and the scatter.
    assert len(at.get("vega_lite_chart")) == 3
    correlations, best, worst = (d.value for d in at.dataframe)
    # Every workflow ran 30 jobs: the first one by id is the default; likeness follows
    # lora_strength exactly (0.5 + 0.4 * lora), so it leads with r = 1.
    assert at.selectbox(key="url:quality_workflow").value == "wf-a"
    first = correlations.iloc[0]
    assert (first["param"], first["score"]) == ("lora_strength", "likeness")
    assert first["spearman_r"] == pytest.approx(1.0)
    # cfg_scale x lora_strength: 10 configurations of 3 jobs, likeness 0.9 at lora 1, 0.5 at 0.
    assert list(best["value"]) == pytest.approx([0.9, 0.9, 0.8, 0.8, 0.7])
    assert list(best["params"][:2]) == [
        "cfg_scale=6, lora_strength=1, steps=30",
        "cfg_scale=7, lora_strength=1, steps=30",
    ]
    assert list(worst["value"][:4]) == pytest.approx([0.5, 0.5, 0.6, 0.6])
    assert worst["params"][0] == "cfg_scale=6, lora_strength=0, steps=30"
    assert downloads(at) == [
        "series_avg_time_per_frame_ms_day",
        "quality_trends_day",
        "correlations_wf-a",
        "scatter_wf-a_lora_strength_likeness",
        "configurations_wf-a_top_likeness",
        "configurations_wf-a_bottom_likeness",
    ]


def test_quality_trends_include_custom_scores(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "quality", monkeypatch, **FARM_DAYS)
    trends = at.get("vega_lite_chart")[1]
    scores = {row["score"] for row in chart_rows(trends)}
    assert scores == {"likeness", "face_confidence", "motion_quality", "boundary_ssim", "lip_sync"}


def test_metric_and_grain_are_chosen(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "quality", monkeypatch, **FARM_DAYS)
    at.selectbox(key="url:metric").set_value("jobs")
    at.selectbox(key="url:grain").set_value("week")
    rerun(at)
    assert "series_jobs_week" in downloads(at)
    assert (at.query_params["metric"], at.query_params["grain"]) == ("jobs", "week")
    # 2025-06-01 is a Sunday: its week began 05-26; the other four days are the next week's.
    weeks = [(row["period"], row["value"]) for row in chart_rows(at.get("vega_lite_chart")[0])]
    assert weeks == [("2025-05-26", 18), ("2025-06-02", 72)]


def test_too_few_jobs_per_configuration_says_so(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "quality", monkeypatch, **FARM_DAYS)
    assert "No parameter combination of wf-a ran 5 or more jobs in range." in [
        i.value for i in at.info
    ]


def test_a_large_range_says_what_the_job_sample_computed(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The farm lake's sample holds 8 of its 90 jobs.
    with every_range_sampled(monkeypatch):
        at = open_page(farm_lake, "quality", monkeypatch, **FARM_DAYS, min_jobs="1")
    assert not at.exception
    # The score trends count every job, custom scores too (the score cells), whatever the range.
    trends = [c.value for c in at.caption if c.value.startswith("Average of every score")]
    assert trends == [
        "Average of every score sent, custom ones included, per day; dashed: moving average."
    ]
    # wf-a has one sampled job: too few for a correlation; its settings come from the level
    # cells (every job), its one sampled job gives a combination.
    assert [i.value for i in at.info][-1] == (
        "No numeric parameter and quality score of wf-a were sent together by 3 or more jobs in "
        "range."
    )
    captions = " ".join(c.value for c in at.caption)
    assert "counted in the lake's 1-in-16 job sample: `jobs` are sampled jobs" in captions
    with every_range_sampled(monkeypatch):
        at.selectbox(key="url:quality_workflow").set_value("wf-b").run()
    captions = " ".join(c.value for c in at.caption)
    assert "counted in the lake's 1-in-16 job sample: `jobs` are sampled jobs" in captions
