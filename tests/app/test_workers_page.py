"""The "Workers" page through AppTest on the farm lake of conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.apptest import FARM_DAYS, downloads, open_page


def test_page_flags_the_slow_worker(farm_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(farm_lake, "workers", monkeypatch, **FARM_DAYS)
    assert [t.value for t in at.title] == ["Workers"]
    metrics = {m.label: m.value for m in at.metric}
    # gpu-03 runs every workflow 40% slower than gpu-01 and gpu-02, over its 30 jobs.
    assert metrics["Workers"] == "3"
    assert metrics["Underperformers"] == "1"
    [warning] = at.warning
    assert "**gpu-03** (NVIDIA L40S)" in warning.value
    flagged, fleet = (d.value for d in at.dataframe)
    assert list(flagged["worker_id"]) == ["gpu-03"]
    assert list(fleet["worker_id"]) == ["gpu-01", "gpu-02", "gpu-03"]
    assert list(fleet["jobs"]) == [30, 30, 30]
    assert list(fleet["underperformer"]) == [False, False, True]
    assert len(at.get("vega_lite_chart")) == 1
    assert downloads(at) == ["underperformers", "worker_summary"]


def test_filter_to_fast_workers_flags_none(
    farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, "workers", monkeypatch, **FARM_DAYS, worker=["gpu-01", "gpu-02"])
    assert {m.label: m.value for m in at.metric}["Underperformers"] == "0"
    assert [s.value for s in at.success] == [
        "No worker is flagged as underperforming in this range."
    ]
    assert list(at.dataframe[0].value["worker_id"]) == ["gpu-01", "gpu-02"]
    assert downloads(at) == ["worker_summary"]
