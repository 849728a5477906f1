"""The attempt cells and their monthly rollups (queries/cells.py, lake/rollup.py): a cached month
gives the figures its attempts give, and a change to a month's files is seen at once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lake import maintenance, rollup
from lake.tables import STANDARD_SCORES
from queries import cells, overview, timeseries, workflows
from queries.base import Filters, frame
from tests.lakes import write_events
from tests.queries.conftest import FARM_EVENTS, _job, kind_cells

ALL = Filters()
TODAY = datetime.now(UTC).date()
KEYS = ["date", *cells.DIMENSIONS, "completed"]


def _raw_cells(lake: Path, filters: Filters) -> pl.DataFrame:
    """The cells computed from the attempts themselves, with no rollup involved."""
    sql, params = cells.attempts(filters)
    return frame(lake, cells._attempt_cells_sql(sql, "true"), params)


def _cells(lake: Path, filters: Filters) -> pl.DataFrame:
    found = cells.attempt_cells(lake, filters)
    return frame(lake, f"select * from ({found.sql})", found.params, found.tables)


def _same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert_frame_equal(
        a.sort(KEYS, nulls_last=True), b.sort(KEYS, nulls_last=True).select(a.columns)
    )


def _month_files(lake: Path) -> list[Path]:
    return sorted((lake / "_meta" / "rollups" / cells.ROLLUP.name).rglob("*.parquet"))


def _late(event_id: str, at: str, frames: int = 100) -> dict:
    """A valid completed job (the contract's required fields) on wf-b."""
    return _job(event_id, at, "wf-b", "gpu-03", frame_count=frames, total_gpu_time_ms=100_000,
                total_wall_time_ms=120_000, project_id="p2")  # fmt: skip


@pytest.fixture
def farm_copy(tmp_path: Path) -> Path:
    """A writable farm lake of its own (the shared one is read-only for tests)."""
    return write_events(tmp_path / "lake", FARM_EVENTS)


def test_cached_cells_equal_the_cells_of_the_attempts(farm_copy: Path) -> None:
    first = _cells(farm_copy, ALL)
    assert len(_month_files(farm_copy)) == 1  # 2025-06, settled long ago
    _same(first, _raw_cells(farm_copy, ALL))
    _same(_cells(farm_copy, ALL), first)  # read back from the cache
    assert first.get_column("attempts").sum() == 6


@pytest.mark.parametrize(
    "filters",
    [
        Filters(start=date(2025, 6, 3), end=date(2025, 6, 9)),
        Filters(projects=("p2",), resolution_tiers=("1080p",)),
        Filters(workflows=("wf-a",), scene_types=("walk",)),
        Filters(workers=("gpu-01",)),  # not a dimension: computed from the attempts
    ],
)
def test_filtered_cells_equal_the_cells_of_the_filtered_attempts(
    farm_copy: Path, filters: Filters
) -> None:
    _cells(farm_copy, ALL)  # the month is cached
    _same(_cells(farm_copy, filters), _raw_cells(farm_copy, filters))


def test_a_new_file_in_a_cached_month_is_counted_at_once(farm_copy: Path) -> None:
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 4
    before = _month_files(farm_copy)
    write_events(farm_copy, [_late("j9", "2025-06-20T08:00:00Z")])
    totals = overview.overview_totals(farm_copy, ALL).row(0, named=True)
    assert totals["jobs"] == 5
    assert totals["frames"] == 2700 + 100
    after = _month_files(farm_copy)
    assert len(after) == 2 and before[0] in after  # the old one stays out of use, for a grace
    _same(_cells(farm_copy, ALL), _raw_cells(farm_copy, ALL))


def test_a_current_state_is_reused_for_a_second_then_listed_again(
    farm_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollup, "REUSE_S", 60.0)
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 4  # caches the month
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 4  # its state kept
    write_events(farm_copy, [_late("j9", "2025-06-20T08:00:00Z")])
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 4  # a page's queries agree
    monkeypatch.setattr(rollup, "REUSE_S", 0.0)
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 5


def test_a_changed_computation_computes_each_month_again(farm_copy: Path) -> None:
    # The same files, cells computed another way (a release changed the SQL): the month's file
    # made the old way is not read, a new one is made beside it.
    _cells(farm_copy, ALL)
    [old] = _month_files(farm_copy)
    version = cells.ROLLUP.version + " "
    changed = replace(cells.ATTEMPT_CELLS, rollup=replace(cells.ROLLUP, version=version))
    found = cells.cells(farm_copy, ALL, changed)
    current = rollup.state(farm_copy, changed.rollup, None, None, TODAY).current
    assert old not in current.values()
    assert set(_month_files(farm_copy)) == {old, *current.values()}
    _same(frame(farm_copy, f"select * from ({found.sql})", found.params, found.tables),
          _raw_cells(farm_copy, ALL))  # fmt: skip


def test_superseded_month_files_are_removed_after_their_grace(
    farm_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cells(farm_copy, ALL)
    monkeypatch.setattr(rollup, "SUPERSEDED_GRACE_S", 0.0)
    old = _month_files(farm_copy)[0]
    os.utime(old, (1, 1))
    write_events(farm_copy, [_late("j9", "2025-06-20T08:00:00Z")])
    _cells(farm_copy, ALL)
    assert old not in _month_files(farm_copy) and len(_month_files(farm_copy)) == 1


def test_compaction_keeps_the_figures(farm_copy: Path) -> None:
    write_events(farm_copy, [_late("j9", "2025-06-02T18:00:00Z")])
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 5
    before = workflows.workflow_summary(farm_copy, ALL)
    maintenance.compact(farm_copy, today=date(2025, 7, 1))
    assert_frame_equal(workflows.workflow_summary(farm_copy, ALL), before)
    _same(_cells(farm_copy, ALL), _raw_cells(farm_copy, ALL))


def test_todays_attempts_are_read_not_cached(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    today = now.date()
    at = f"{today.isoformat()}T00:00:01Z"
    lake = write_events(tmp_path / "lake", [_late("t1", at, frames=10)], received_at=now)
    hours = 100_000 / 3.6e6
    assert overview.daily_volume(lake, ALL).rows() == [(today, 1, 10, 0, hours)]
    assert _month_files(lake) == []
    write_events(lake, [_late("t2", at.replace(":01Z", ":02Z"), frames=5)], received_at=now)
    assert overview.daily_volume(lake, ALL).rows() == [(today, 2, 15, 0, 2 * hours)]
    assert _month_files(lake) == []


def test_a_lake_that_cannot_be_written_is_read_all_the_same(
    farm_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollup, "writable", lambda lake: False)
    _same(_cells(farm_copy, ALL), _raw_cells(farm_copy, ALL))
    assert _month_files(farm_copy) == []
    series = timeseries.metric_series(farm_copy, ALL, "jobs")
    assert series.get_column("value").sum() == 4


def test_a_failed_cache_write_leaves_the_month_uncached(
    farm_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(rollup, "write_parquet", refuse)
    _same(_cells(farm_copy, ALL), _raw_cells(farm_copy, ALL))
    assert _month_files(farm_copy) == []


def test_retention_removes_the_rollups_of_the_months_it_dropped(farm_copy: Path) -> None:
    write_events(farm_copy, [_late("j9", "2025-07-02T08:00:00Z")])
    _cells(farm_copy, ALL)
    assert [p.parent.name for p in _month_files(farm_copy)] == ["month=2025-06", "month=2025-07"]
    maintenance.expire(farm_copy, keep_days=10, today=date(2025, 7, 5))
    assert [p.parent.name for p in _month_files(farm_copy)] == ["month=2025-07"]
    assert overview.overview_totals(farm_copy, ALL).item(0, "jobs") == 1


def test_threads_building_the_same_month_at_once_agree(farm_copy: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: _cells(farm_copy, ALL), range(4)))
    for cells_seen in found:
        _same(cells_seen, _raw_cells(farm_copy, ALL))
    assert len(_month_files(farm_copy)) == 1
    _same(_cells(farm_copy, ALL), _raw_cells(farm_copy, ALL))


# --- stage cells ------------------------------------------------------------------------------

STAGE_KEYS = ["date", *cells.STAGE_DIMENSIONS]


def _stage_cells(lake: Path, filters: Filters, cached: bool) -> pl.DataFrame:
    return kind_cells(lake, filters, cells.STAGE_CELL_KIND, STAGE_KEYS, cached)


def _stage_files(lake: Path) -> list[Path]:
    return sorted(
        (lake / "_meta" / "rollups" / cells.STAGE_CELL_KIND.rollup.name).rglob("*.parquet")
    )


@pytest.mark.parametrize(
    "filters",
    [
        ALL,
        Filters(start=date(2025, 6, 3), end=date(2025, 6, 9)),
        Filters(workflows=("wf-a",)),
        Filters(workers=("gpu-01",)),  # not a dimension: computed from the stages
    ],
)
def test_cached_stage_cells_equal_the_cells_of_the_stages(
    farm_copy: Path, filters: Filters
) -> None:
    _stage_cells(farm_copy, ALL, cached=True)  # the month is cached
    assert len(_stage_files(farm_copy)) == 1
    got = _stage_cells(farm_copy, filters, cached=True)
    assert_frame_equal(got, _stage_cells(farm_copy, filters, cached=False))
    assert got.height > 0


def test_a_new_stage_file_in_a_cached_month_is_counted_at_once(farm_copy: Path) -> None:
    before = _stage_cells(farm_copy, ALL, cached=True)
    late = _late("j9", "2025-06-20T08:00:00Z") | {
        "pipeline_stages": [{"name": "sample", "duration_ms": 5000}]
    }
    write_events(farm_copy, [late])
    after = _stage_cells(farm_copy, ALL, cached=True)
    assert after.get_column("stages").sum() == before.get_column("stages").sum() + 1
    assert after.get_column("total_ms").sum() == before.get_column("total_ms").sum() + 5000
    assert_frame_equal(after, _stage_cells(farm_copy, ALL, cached=False))


def test_stage_cells_refuse_a_filter_the_stages_lack(farm_copy: Path) -> None:
    for filters in (
        Filters(projects=("p2",)),
        Filters(scene_types=("walk",)),
        Filters(resolution_tiers=("1080p",)),
    ):
        with pytest.raises(ValueError, match="does not apply"):
            cells.stage_cells(farm_copy, filters)


SCORE_KEYS = ["date", *cells.DIMENSIONS, "score"]


def _score_cells(lake: Path, filters: Filters, cached: bool) -> pl.DataFrame:
    return kind_cells(lake, filters, cells.SCORE_CELL_KIND, SCORE_KEYS, cached)


LEVEL_KEYS = ["date", "workflow_id", "name", "value"]


def _level_cells(lake: Path, filters: Filters, cached: bool) -> pl.DataFrame:
    return kind_cells(lake, filters, cells.LEVEL_CELL_KIND, LEVEL_KEYS, cached)


@pytest.mark.parametrize("kind", ["score", "level"])
@pytest.mark.parametrize(
    "filters",
    [
        ALL,
        Filters(start=date(2025, 6, 3), end=date(2025, 6, 9)),
        Filters(workflows=("wf-a",), projects=("p1",)),  # level cells: the project from the jobs
        Filters(workers=("gpu-01",)),  # not a dimension: computed from the jobs
    ],
)
def test_cached_score_and_level_cells_equal_the_cells_of_the_jobs(
    farm_copy: Path, filters: Filters, kind: str
) -> None:
    # Parameters and custom scores on jobs of both workflows, several days, projects, workers.
    write_events(farm_copy, [
        _job(f"x{n}", f"2025-06-{2 + n % 9:02d}T09:00:00Z", ("wf-a", "wf-b")[n % 2],
             f"gpu-0{1 + n % 3}", project_id=f"p{1 + n % 2}", frame_count=10,
             total_gpu_time_ms=1000, params={"steps": 20 + n % 3, "seed": n},
             quality_scores={"likeness": 0.5, "lip_sync": n / 10})
        for n in range(12)
    ])  # fmt: skip
    of = {"score": _score_cells, "level": _level_cells}[kind]
    of(farm_copy, ALL, cached=True)  # the month is cached
    folder = farm_copy / "_meta" / "rollups" / f"{kind}_cells"
    assert len([f for f in folder.rglob("*") if f.suffix == ".parquet"]) == 1
    got = of(farm_copy, filters, cached=True)
    assert_frame_equal(got, of(farm_copy, filters, cached=False))
    assert got.height > 0
    # Only the custom scores: the standard ones are columns of the attempt cells.
    assert kind != "score" or not set(got.get_column("score")) & set(STANDARD_SCORES)


def test_score_cells_add_up_the_custom_scores(farm_copy: Path) -> None:
    # loop_seam: 0.5 on 06-02 (j1) and 0.7 on 06-10; a late job adds 0.9 to 06-10 at once.
    write_events(farm_copy, [_late("j9", "2025-06-10T08:00:00Z") | {
        "quality_scores": {"likeness": 0.5, "loop_seam": 0.9}}])  # fmt: skip
    got = _score_cells(farm_copy, ALL, cached=True)
    per_day = got.group_by("date", "score").agg(pl.col("value_sum").sum(), pl.col("value_n").sum())
    assert sorted(per_day.rows()) == [
        (date(2025, 6, 2), "loop_seam", pytest.approx(0.5), 1),
        (date(2025, 6, 10), "loop_seam", pytest.approx(1.6), 2),
    ]


def test_a_day_past_the_levels_a_day_is_one_row(farm_copy: Path) -> None:
    # 13 jobs of wf-b on 06-20, each its own seed and one of two samplers.
    late = [
        _late(f"s{n}", "2025-06-20T08:00:00Z") | {"params": {"seed": n, "sampler": "ab"[n % 2]}}
        for n in range(cells.LEVELS_PER_DAY + 1)
    ]
    write_events(farm_copy, late)
    got = _level_cells(farm_copy, Filters(start=date(2025, 6, 20), end=date(2025, 6, 20)), True)
    assert got.select("name", "value", "jobs", "many").rows() == [
        ("sampler", "a", 7, False),
        ("sampler", "b", 6, False),
        ("seed", None, 13, True),
    ]
