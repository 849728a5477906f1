"""Every analysis page, empty, says why: no lake, no jobs yet, no data in the range (and which
days the lake holds), or filters that exclude every job."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from app import tables
from app.sidebar import today
from tests.app.apptest import FARM_DAYS, downloads, open_page

PAGES = ["overview", "workflows", "quality", "compare", "workers", "alerts"]


def _infos(at: object) -> list[str]:
    return [i.value for i in at.info]  # type: ignore[attr-defined]


@pytest.mark.parametrize("page", PAGES)
def test_a_range_without_data_names_the_days_the_lake_holds(
    page: str, farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(farm_lake, page, monkeypatch, range="7d")
    start, end = today() - timedelta(days=6), today()
    assert _infos(at) == [
        f"No data in range {start} to {end}; the lake holds data from 2025-06-01 to 2025-06-05."
    ]
    assert not at.get("vega_lite_chart")
    assert not at.metric
    # The alerts page still shows its thresholds (and their CSV), nothing else has a table.
    assert downloads(at) == (["thresholds"] if page == "alerts" else [])


@pytest.mark.parametrize("page", PAGES)
def test_filters_that_exclude_everything_say_so(
    page: str, farm_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even jobs are p-1, odd ones walk: no job is both.
    at = open_page(farm_lake, page, monkeypatch, **FARM_DAYS, project="p-1", scene="walk")
    assert _infos(at) == [
        "The filters exclude every job from 2025-06-01 to 2025-06-05 (projects: p-1; "
        "scene types: walk): clear or widen them in the sidebar."
    ]
    assert not at.get("vega_lite_chart")


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_lake_says_it_has_no_jobs(
    page: str, empty_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(empty_lake, page, monkeypatch)
    assert _infos(at) == [
        f"The lake at `{empty_lake}` has no jobs yet: run `make run` or "
        f"`perflake ingest --lake {empty_lake}` to fill it."
    ]
    assert not at.get("vega_lite_chart")


@pytest.mark.parametrize("page", PAGES)
def test_a_missing_lake_says_so(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    at = open_page(missing, page, monkeypatch)
    assert _infos(at) == [
        f"The lake at `{missing}` does not exist yet: run `make run` or "
        f"`perflake ingest --lake {missing}` to fill it."
    ]


def test_an_empty_table_downloads_a_header_line() -> None:
    empty = pl.DataFrame(schema={"workflow_id": pl.String(), "jobs": pl.Int64()})
    assert tables.csv(empty) == "workflow_id,jobs\n"
    listed = pl.DataFrame({"id": [1], "tags": [["a", "b"]]})
    assert tables.csv(listed) == "id,tags\n1,a; b\n"
