"""The "Alerts & thresholds" page through AppTest: the farm lake's alerts, and the threshold form
(create, edit, disable, delete, and a refused threshold with the reason in the form)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lake import thresholds
from tests.app.apptest import FARM_DAYS, downloads, open_page, rerun


@pytest.fixture
def farm_copy(farm_lake: Path, tmp_path: Path) -> Path:
    """A copy of the farm lake whose threshold store a test may change."""
    return Path(shutil.copytree(farm_lake, tmp_path / "farm"))


def _stored(lake: Path) -> list[tuple]:
    return [
        (t.metric, t.scope, t.scope_id, t.warning, t.critical, t.enabled)
        for t in thresholds.list_thresholds(lake)
    ]


def _fill(at: AppTest, **values: object) -> None:
    for field, value in values.items():
        kinds = {"metric": at.selectbox, "scope": at.selectbox}
        widget = kinds.get(field, at.text_input if field in ("scope_id", "custom") else None)
        widget = widget or at.number_input
        widget(key=f"th:{field}").set_value(value)


def test_alerts_of_the_range(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "alerts", monkeypatch, **FARM_DAYS)
    assert [t.value for t in at.title] == ["Alerts & thresholds"]
    assert {m.label: m.value for m in at.metric} == {"Alerts": "2", "Critical": "1", "Warning": "1"}
    grouped, raised, stored = (d.value for d in at.dataframe)
    assert list(grouped["level"]) == ["critical", "warning"]
    assert list(raised["job_id"]) == ["job-11", "job-7"]  # newest first
    assert list(stored["metric"]) == ["vram_peak_pct"]  # the default, seeded once
    assert downloads(at) == ["active_alerts", "alerts", "thresholds"]


def test_level_and_filters_narrow_the_alerts(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "alerts", monkeypatch, **FARM_DAYS, level="warning")
    assert list(at.dataframe[1].value["job_id"]) == ["job-7"]
    at = open_page(farm_lake, "alerts", monkeypatch, **FARM_DAYS, worker="gpu-01")
    assert {m.label: m.value for m in at.metric}["Alerts"] == "0"
    assert [s.value for s in at.success] == [
        "No alert was raised in this range: no job crossed an enabled threshold."
    ]


def test_create_edit_disable_delete(farm_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_copy, "alerts", monkeypatch, **FARM_DAYS)
    # Create: likeness is bad when low, so critical lies below warning.
    _fill(at, metric="likeness", scope="workflow", scope_id="wf-a", warning=0.6, critical=0.4)
    rerun(at.button(key="th:save").click())
    assert not at.error
    assert _stored(farm_copy) == [
        ("likeness", "workflow", "wf-a", 0.6, 0.4, True),
        ("vram_peak_pct", "global", None, 85.0, 95.0, True),
    ]
    [created] = [t for t in thresholds.list_thresholds(farm_copy) if t.metric == "likeness"]
    assert at.selectbox(key="th:editing").value == created.id
    assert list(at.dataframe[-1].value["metric"]) == ["likeness", "vram_peak_pct"]
    # Edit it.
    _fill(at, warning=0.7)
    rerun(at.button(key="th:save").click())
    assert _stored(farm_copy)[0] == ("likeness", "workflow", "wf-a", 0.7, 0.4, True)
    # Disable it, then enable it again.
    rerun(at.button(key="th:toggle").click())
    assert _stored(farm_copy)[0][-1] is False
    assert f"Threshold #{created.id} disabled." in [s.value for s in at.success]
    assert at.button(key="th:toggle").label == "Enable"
    rerun(at.button(key="th:toggle").click())
    assert _stored(farm_copy)[0][-1] is True
    # Delete it: the form is back to a new threshold.
    rerun(at.button(key="th:delete").click())
    assert _stored(farm_copy) == [("vram_peak_pct", "global", None, 85.0, 95.0, True)]
    assert at.selectbox(key="th:editing").value == 0
    assert f"Deleted threshold #{created.id}." in [s.value for s in at.success]


def test_edit_the_default_through_the_picker(
    farm_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_copy, "alerts", monkeypatch, **FARM_DAYS)
    [default] = thresholds.list_thresholds(farm_copy)
    rerun(at.selectbox(key="th:editing").set_value(default.id))
    assert at.number_input(key="th:warning").value == 85.0
    assert at.button(key="th:save").label == "Save"
    _fill(at, warning=80.0)
    rerun(at.button(key="th:save").click())
    assert _stored(farm_copy) == [("vram_peak_pct", "global", None, 80.0, 95.0, True)]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"metric": "vram_peak_pct", "warning": 90.0, "critical": 80.0},
            "critical: must lie above warning (90) because vram_peak_pct is bad when high, got 80",
        ),
        ({"metric": "likeness", "warning": 1.5}, "warning: must be a number between 0 and 1"),
        ({"metric": "likeness", "scope": "worker"}, "scope_id: required for scope worker"),
        (
            {"metric": "time_per_frame_ms"},
            "warning: set a warning or a critical level (or both)",
        ),
        (
            {"metric": "vram_peak_pct", "warning": 70.0},
            "scope: a threshold on vram_peak_pct already exists globally; edit that one",
        ),
    ],
    ids=["critical-below-warning", "out-of-range", "no-scope-id", "no-level", "duplicate"],
)
def test_invalid_threshold_is_refused_with_the_reason(
    values: dict, reason: str, farm_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_copy, "alerts", monkeypatch, **FARM_DAYS)
    _fill(at, **values)
    rerun(at.button(key="th:save").click())
    [error] = at.error
    assert error.value.startswith(reason), error.value
    # Nothing stored, and the form keeps what was typed.
    assert _stored(farm_copy) == [("vram_peak_pct", "global", None, 85.0, 95.0, True)]
    assert at.selectbox(key="th:metric").value == values["metric"]


def test_custom_score_threshold(farm_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_copy, "alerts", monkeypatch, **FARM_DAYS)
    _fill(at, metric="another quality score", custom="lip_sync", warning=0.5)
    rerun(at.button(key="th:save").click())
    assert not at.error
    assert ("lip_sync", "global", None, 0.5, None, True) in _stored(farm_copy)
    # Its name is a choice of its own now, shown when it is edited.
    assert at.selectbox(key="th:metric").value == "lip_sync"
    # A custom score needs its name.
    rerun(at.selectbox(key="th:editing").set_value(0))
    _fill(at, metric="another quality score", warning=0.5)
    rerun(at.button(key="th:save").click())
    assert [e.value for e in at.error] == ["metric: required"]
