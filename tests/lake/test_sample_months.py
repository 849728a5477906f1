"""Month copies of the samples (lake/sample_months.py): a query over a sample table reads the same
rows from its month copies as from the lake's day files, sees a new file at once, and reads
today's rows, which are never copied, from the lake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from lake import rollup, sample_months, views
from queries.base import frame
from tests.lake.test_sample import EVENTS, SAMPLED, _job, _sampled_ids
from tests.lakes import write_events

TEMP_VIEWS = "select view_name from duckdb_views() where temporary and not internal"
ROWS = "select * exclude (ingested_at) from {table} order by event_id{stage}"


def _copies(lake: Path, table: str) -> list[Path]:
    root = lake / "_meta" / "rollups" / sample_months.COPIES[table].name
    return sorted(root.rglob("*.parquet"))


def _lake_rows(lake: Path, table: str) -> pl.DataFrame:
    """The rows of the lake's own view (`frame` would read the copies)."""
    stage = ", stage_index" if table == "job_stages_sample" else ""
    with views.cursor(lake) as con:
        sql = ROWS.format(table=f"memory.main.{table}", stage=stage)
        return pl.from_arrow(con.sql(sql).to_arrow_table())  # type: ignore[return-value]


def _rows(lake: Path, table: str) -> pl.DataFrame:
    stage = ", stage_index" if table == "job_stages_sample" else ""
    return frame(lake, ROWS.format(table=table, stage=stage))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    staged = [e | {"pipeline_stages": [{"name": "sample", "duration_ms": 100}]} for e in EVENTS]
    return write_events(tmp_path / "lake", staged)


@pytest.mark.parametrize("table", ["jobs_sample", "job_stages_sample"])
def test_the_copies_hold_the_rows_of_the_days(
    lake: Path, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_months, "COPY_ROW_GROUP", 8)
    got = _rows(lake, table)  # copies June 2025, settled long ago
    assert [p.parent.name for p in _copies(lake, table)] == ["month=2025-06"]
    # By workflow, day and event, in row groups of COPY_ROW_GROUP (read in parallel).
    copy = pq.ParquetFile(_copies(lake, table)[0])
    assert copy.metadata.num_row_groups == -(-len(SAMPLED) // 8)
    order = copy.read(columns=["workflow_id", "date", "event_id"]).to_pylist()
    assert order == sorted(order, key=lambda r: (r["workflow_id"], r["date"], r["event_id"]))
    assert got.height == len(SAMPLED)  # one stage a job
    assert_frame_equal(got, _lake_rows(lake, table))  # same columns, order and types
    assert_frame_equal(_rows(lake, table), got)  # read back from the copy


def test_a_new_sample_file_in_a_copied_month_is_read_at_once(lake: Path) -> None:
    before = _rows(lake, "jobs_sample")
    late = next(_job(n) for n in range(10_000, 20_000) if _in_sample(n))
    write_events(lake, [late])
    after = _rows(lake, "jobs_sample")
    assert after.height == before.height + 1
    assert late["event_id"] in after.get_column("event_id").to_list()
    assert len(_copies(lake, "jobs_sample")) in (1, 2)  # the old one stays for its grace period


def _in_sample(n: int) -> bool:
    return bool(_sampled_ids([_job(n)["event_id"]]))


def test_todays_rows_are_read_from_the_lake(lake: Path) -> None:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    n = next(n for n in range(10_000, 20_000) if _in_sample(n))
    fresh = _job(n) | {"occurred_at": f"{today}T00:00:01Z"}
    write_events(lake, [fresh])
    got = _rows(lake, "jobs_sample")
    assert fresh["event_id"] in got.get_column("event_id").to_list()
    assert got.height == len(SAMPLED) + 1
    copied = pl.read_parquet(_copies(lake, "jobs_sample"))
    assert fresh["event_id"] not in copied.get_column("event_id").to_list()


def test_a_day_file_swapped_away_after_the_listing_is_read_again(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Today's sample files are listed into the view, kept for its second; one is then replaced
    # under another name (as a compaction or a replay might): the query runs again on the
    # lake's own views and finds it.
    monkeypatch.setattr(sample_months, "REUSE_S", 3600.0)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    n = next(n for n in range(10_000, 20_000) if _in_sample(n))
    write_events(lake, [_job(n) | {"occurred_at": f"{today}T00:00:01Z"}])
    assert _rows(lake, "jobs_sample").height == len(SAMPLED) + 1
    [listed] = (lake / "jobs_sample" / f"date={today}").glob("*.parquet")
    listed.rename(listed.with_name("part-swapped.parquet"))
    assert _rows(lake, "jobs_sample").height == len(SAMPLED) + 1


def test_a_lake_that_cannot_be_written_reads_its_day_files(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollup, "writable", lambda lake: False)
    assert_frame_equal(_rows(lake, "jobs_sample"), _lake_rows(lake, "jobs_sample"))
    assert _copies(lake, "jobs_sample") == []


def test_the_shadow_view_stays_with_its_cursor(lake: Path) -> None:
    _rows(lake, "jobs_sample")
    with views.cursor(lake) as con:
        sample_months.shadow(con, lake, "select count(*) from jobs_sample")
        assert con.execute(TEMP_VIEWS).fetchall() == [("jobs_sample",)]
        shadowed = con.execute("select count(*) from jobs_sample").fetchone()
    with views.cursor(lake) as con:  # another cursor: the lake's view
        assert con.execute(TEMP_VIEWS).fetchall() == []
        assert con.execute("select count(*) from jobs_sample").fetchone() == shadowed


def test_a_view_is_reused_for_a_second(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_months, "REUSE_S", 3600.0)
    before = _rows(lake, "jobs_sample")
    write_events(lake, [next(_job(n) for n in range(10_000, 20_000) if _in_sample(n))])
    assert_frame_equal(_rows(lake, "jobs_sample"), before)  # the files are not listed again
    monkeypatch.setattr(sample_months, "REUSE_S", 0.0)
    assert _rows(lake, "jobs_sample").height == before.height + 1
