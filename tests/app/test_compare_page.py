"""The "Compare" page through AppTest on the farm lake of conftest.py: workflows side by side,
one workflow before and since a day, two versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.apptest import FARM_DAYS, downloads, open_page, rerun

# wf-a runs at 1000 ms per frame (1400 on gpu-03, 6 of its 30 jobs), wf-b at 1200 (1680, 12 of
# 30): 1080 against 1392 ms, 22% less; the scores are the same.
A_VS_B = (
    "wf-a is 22% faster and uses 22% less GPU time per job than wf-b; no clear difference in "
    "VRAM peak, likeness, face_confidence, motion_quality or boundary_ssim; not enough data for "
    "p95 time per frame and failure rate."
)


def _sentences(at: object) -> list[str]:
    return [
        m.value.removeprefix("- **").removesuffix("**")
        for m in at.markdown
        if m.value.startswith("- **")
    ]  # type: ignore[attr-defined]


def test_two_busiest_workflows_by_default(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "compare", monkeypatch, **FARM_DAYS)
    assert at.multiselect(key="url:compare").value == ["wf-a", "wf-b"]
    assert _sentences(at) == [A_VS_B]
    [table] = at.dataframe
    # The verdict beside the difference it judges.
    assert list(table.value.columns[:7]) == [
        "metric",
        "a",
        "b",
        "pct_diff",
        "ci_low",
        "ci_high",
        "verdict",
    ]
    rows = {r["metric"]: r for r in table.value.to_dict("records")}
    tpf = rows["avg_time_per_frame_ms"]
    assert (tpf["a"], tpf["b"]) == pytest.approx((1080.0, 1392.0))
    assert tpf["verdict"] == "a lower"
    assert tpf["pct_diff"] == pytest.approx((1080 - 1392) / 1392 * 100)
    assert rows["avg_likeness"]["verdict"] == "no clear difference"
    assert downloads(at) == ["compare_wf-a_vs_wf-b"]
    # Two workflows, 9 metrics: each test at 5% / 9.
    assert any("Each of the 9 tests runs at 0.56% (Bonferroni)" in c.value for c in at.caption)


def test_more_workflows_compare_with_the_first(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "compare", monkeypatch, **FARM_DAYS)
    rerun(at.multiselect(key="url:compare").set_value(["wf-a", "wf-b", "wf-c"]))
    sentences = _sentences(at)
    assert [s.split(" is ")[0] for s in sentences] == ["wf-b", "wf-c"]
    assert sentences[1].startswith(
        "wf-c is 61% slower and uses 61% more GPU time per job than wf-a"
    )
    assert at.query_params["compare"] == ["wf-a", "wf-b", "wf-c"]
    # Two pairs of 9 metrics: each test at 5% / 18.
    assert any("Each of the 18 tests runs at 0.28% (Bonferroni)" in c.value for c in at.caption)


def test_one_workflow_is_not_a_comparison(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "compare", monkeypatch, **FARM_DAYS, compare="wf-c")
    assert [i.value for i in at.info] == ["Pick two or more workflows to compare."]
    assert not at.dataframe


def test_before_and_since_a_day(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(
        farm_lake, "compare", monkeypatch, **FARM_DAYS, mode="periods", split="2025-06-04"
    )
    # 18 wf-a jobs before 06-04, 12 since: too few for a verdict.
    assert _sentences(at) == [
        "Not enough data to compare wf-a since 2025-06-04 and wf-a before 2025-06-04."
    ]
    table = at.dataframe[0].value
    assert set(table["workflow_a"]) == {"wf-a since 2025-06-04"}
    assert downloads(at) == ["compare_wf-a_split_2025-06-04"]


def test_two_versions(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "compare", monkeypatch, **FARM_DAYS, mode="versions")
    assert [i.value for i in at.info] == ["Type two workflow_version values of wf-a to compare."]
    at.text_input(key="url:version_a").set_value("v2")
    rerun(at.text_input(key="url:version_b").set_value("v1"))
    assert _sentences(at) == ["Not enough data to compare wf-a v2 and wf-a v1."]
    assert set(at.dataframe[0].value["workflow_b"]) == {"wf-a v1"}
    assert (at.query_params["version_a"], at.query_params["version_b"]) == ("v2", "v1")
