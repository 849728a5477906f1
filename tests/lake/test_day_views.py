"""Views narrowed to a query's days (lake/day_views.py): the same rows as the lake's views, only
the days in range listed, a listing reused for a second and made again when a compaction swapped
its files away."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lake import day_views, maintenance, views
from queries.base import Filters, frame
from tests.lake.test_sample import EVENTS, JOBS, _job
from tests.lakes import write_events

JUNE_1, JUNE_2, JUNE_3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)
ROWS = "select * exclude (ingested_at) from {table} where date between ? and ? order by event_id"
COUNT = "select count(*) as n from jobs where date between ? and ?"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return write_events(tmp_path / "lake", EVENTS)


def _count(lake: Path, start: date, end: date) -> int:
    return int(frame(lake, COUNT, [start, end], within=Filters(start=start, end=end)).item())


def test_a_narrowed_query_reads_the_rows_of_the_lakes_view(lake: Path) -> None:
    got = frame(lake, ROWS.format(table="jobs"), [JUNE_1, JUNE_2], within=Filters(JUNE_1, JUNE_2))
    expected = frame(lake, ROWS.format(table="memory.main.jobs"), [JUNE_1, JUNE_2])
    assert got.height == 2 * JOBS // 3
    assert_frame_equal(got, expected)  # same columns, order and types


def test_only_the_days_in_range_are_listed(lake: Path) -> None:
    sql = day_views.view_sql(lake, "jobs", JUNE_2, JUNE_3)
    assert "date=2025-06-02" in sql and "date=2025-06-03" in sql
    assert "date=2025-06-01" not in sql
    with views.cursor(lake) as con:
        assert day_views.narrow(con, lake, "select 1 from jobs, job_failures", JUNE_2, JUNE_3) == [
            "job_failures",
            "jobs",
        ]
        temporary = "select view_name from duckdb_views() where temporary and not internal"
        assert sorted(r[0] for r in con.execute(temporary).fetchall()) == ["job_failures", "jobs"]


def test_open_long_and_sample_ranges_read_the_lakes_views(lake: Path) -> None:
    with views.cursor(lake) as con:
        assert day_views.narrow(con, lake, "select 1 from jobs", None, JUNE_3) == []
        assert day_views.narrow(con, lake, "select 1 from jobs", JUNE_1, None) == []
        long_ago = date(2025, 1, 1)
        assert day_views.narrow(con, lake, "select 1 from jobs", long_ago, JUNE_3) == []
        assert day_views.narrow(con, lake, "select 1 from jobs_sample", JUNE_1, JUNE_3) == []


def test_a_range_without_files_is_empty_and_typed_alike(lake: Path) -> None:
    later = Filters(start=date(2030, 1, 1), end=date(2030, 1, 5))
    got = frame(lake, ROWS.format(table="jobs"), [later.start, later.end], within=later)
    assert got.is_empty()
    assert got.schema == frame(lake, ROWS.format(table="jobs"), [JUNE_1, JUNE_3]).schema


def test_a_listing_is_reused_for_a_second_then_made_again(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(day_views, "REUSE_S", 60.0)
    assert _count(lake, JUNE_1, JUNE_3) == JOBS
    write_events(lake, [_job(JOBS)])  # a new file on one of the days
    assert _count(lake, JUNE_1, JUNE_3) == JOBS  # the page's queries see one listing
    monkeypatch.setattr(day_views, "REUSE_S", 0.0)
    assert _count(lake, JUNE_1, JUNE_3) == JOBS + 1


def test_a_listing_from_before_a_compaction_is_made_again(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_events(lake, [_job(n) for n in range(JOBS, JOBS + 30)])  # a second file per day
    files = sorted((lake / "jobs").rglob("*.parquet"))
    monkeypatch.setattr(day_views, "REUSE_S", 60.0)
    assert _count(lake, JUNE_1, JUNE_3) == JOBS + 30
    assert maintenance.compact(lake)  # each day's two files merged into one
    assert not any(f.exists() for f in files)  # the listed files are gone
    with views.cursor(lake) as con:
        assert day_views.narrow(con, lake, COUNT, JUNE_1, JUNE_3) == ["jobs"]  # listed again
        assert con.execute(COUNT, [JUNE_1, JUNE_3]).fetchone() == (JOBS + 30,)
    assert _count(lake, JUNE_1, JUNE_3) == JOBS + 30
    rows = frame(lake, ROWS.format(table="jobs"), [JUNE_1, JUNE_3], within=Filters(JUNE_1, JUNE_3))
    assert rows.get_column("event_id").n_unique() == rows.height == JOBS + 30
    assert rows.filter(pl.col("date") == JUNE_1).height == (JOBS + 30) // 3


def test_a_tables_first_files_count_once_its_shape_is_looked_at_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which tables have files is reused for a second: a table's first files are read after it.
    lake = write_events(tmp_path / "lake", [_job(0)])
    count = "select count(*) from job_failures"
    monkeypatch.setattr(views, "SHAPE_REUSE_S", 60.0)
    assert frame(lake, count).item() == 0  # no file yet: the typed empty view
    failed = _job(1) | {"event_type": "job.failed", "error_type": "oom", "error_message": "x"}
    write_events(lake, [failed])
    assert frame(lake, count).item() == 0  # a page's queries see one shape
    monkeypatch.setattr(views, "SHAPE_REUSE_S", 0.0)
    assert frame(lake, count).item() == 1
