"""The job sample (lake/sample.py): which jobs, written by ingest and by the backfill, and the
queries that read it over large ranges (queries.base.job_source)."""

from __future__ import annotations

import shutil
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from app.cli import main
from lake import sample
from lake.layout import partition_days
from queries import base, compare, correlations, timeseries, workflows
from queries.base import Filters, frame
from tests.lakes import write_events

DAYS = ("2025-06-01", "2025-06-02", "2025-06-03")
JOBS = 480


def _job(n: int) -> dict:
    steps = (20, 30)[n % 2]
    return {
        "event_type": "job.completed",
        "event_id": f"ev-{n:04d}",
        "occurred_at": f"{DAYS[n % 3]}T10:{n % 60:02d}:00Z",
        "job_id": f"job-{n}",
        "workflow_id": "wf-a",
        "worker_id": f"gpu-{n % 4}",
        "frame_count": 10,
        "total_gpu_time_ms": 1000 + n,
        "quality_scores": {"likeness": (n % 10) / 10, "lip_sync": (n % 7) / 7},
        "params": {"steps": steps, "cfg_scale": 5 + n % 5},
    }


def _sampled_ids(ids: list[str]) -> list[str]:
    return [i for i in ids if zlib.crc32(i.encode()) % sample.SAMPLE_RATE == 0]


EVENTS = [_job(n) for n in range(JOBS)]
IDS = [e["event_id"] for e in EVENTS]
SAMPLED = _sampled_ids(IDS)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("sample") / "lake", EVENTS)


def _ids(lake: Path, table: str) -> list[str]:
    rows = frame(lake, f"select event_id from {table} order by event_id")
    return rows.get_column("event_id").to_list()


def test_in_sample_is_crc32_of_the_event_id_modulo_16() -> None:
    ids = [f"event-{n}" for n in range(16_000)]
    got = sample.in_sample(pa.array(ids)).to_pylist()
    assert [i for i, kept in zip(ids, got, strict=True) if kept] == _sampled_ids(ids)
    assert 800 < sum(got) < 1200  # about 1 in 16
    chunked = pa.chunked_array([ids[:10], ids[10:20]])
    assert sample.in_sample(chunked).to_pylist() == got[:20]
    # A job's stages repeat its event id: each row gets its id's answer.
    assert sample.in_sample(pa.array(ids[:50] * 3)).to_pylist() == got[:50] * 3


def test_ingest_writes_the_sampled_jobs_whole(lake: Path) -> None:
    assert SAMPLED and len(SAMPLED) < JOBS / 8
    assert _ids(lake, "jobs_sample") == SAMPLED
    columns = "* exclude (ingested_at)"
    in_jobs = frame(
        lake,
        f"select {columns} from jobs where event_id in (select event_id from jobs_sample) order by event_id",
    )
    in_sample = frame(lake, f"select {columns} from jobs_sample order by event_id")
    assert in_sample.drop("params", "params_num", "quality_scores").equals(
        in_jobs.drop("params", "params_num", "quality_scores")
    )


def test_a_replay_adds_no_sampled_row(tmp_path: Path) -> None:
    lake = write_events(tmp_path / "lake", EVENTS[:100])
    write_events(lake, EVENTS[:100])
    assert _ids(lake, "jobs_sample") == _sampled_ids(IDS[:100])


def test_backfill_writes_the_days_without_a_sample_once(lake: Path, tmp_path: Path) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    shutil.rmtree(copy / "jobs_sample" / "date=2025-06-02")
    assert partition_days(copy, "jobs_sample") == [date(2025, 6, 1), date(2025, 6, 3)]
    second_day = [i for i in SAMPLED if int(i[3:]) % 3 == 1]
    assert sample.backfill(copy) == len(second_day)
    assert _ids(copy, "jobs_sample") == SAMPLED
    assert sample.backfill(copy) == 0


def test_compact_backfills_a_lake_written_before_the_sample(lake: Path, tmp_path, capsys) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    shutil.rmtree(copy / "jobs_sample")
    assert main(["compact", "--lake", str(copy)]) == 0
    assert f"job sample: {len(SAMPLED)} rows written" in capsys.readouterr().out
    assert _ids(copy, "jobs_sample") == SAMPLED


def test_job_source_takes_the_sample_from_the_threshold_on(lake, tmp_path, monkeypatch) -> None:
    everything = Filters()
    assert base.job_source(lake, everything, JOBS) == ("jobs", 1)  # far below 200k jobs
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", JOBS)
    assert base.job_source(lake, everything, JOBS) == ("jobs_sample", sample.SAMPLE_RATE)
    assert base.job_source(lake, everything, JOBS - 1) == ("jobs", 1)
    # A sample far short of 1 in 16 of the jobs (a lake from before it) is not used.
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    shutil.rmtree(copy / "jobs_sample" / "date=2025-06-02")
    assert base.job_source(copy, everything, JOBS) == ("jobs", 1)


def test_the_counts_that_pick_a_source_are_reused_for_a_second(lake, tmp_path, monkeypatch) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    monkeypatch.setattr(base, "ROWS_REUSE_S", 60.0)
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", JOBS)
    assert base.job_source(copy, Filters()) == ("jobs_sample", sample.SAMPLE_RATE)
    write_events(copy, [_job(n) for n in range(JOBS, JOBS + 20)])
    assert base._rows(copy, Filters(), "jobs") == JOBS  # a page's queries see one count
    monkeypatch.setattr(base, "ROWS_REUSE_S", 0.0)
    assert base._rows(copy, Filters(), "jobs") == JOBS + 20


def test_custom_score_trends_count_every_job_over_a_large_range(lake: Path, monkeypatch) -> None:
    # The score cells add up every job's map: a range the sample would serve counts them all.
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    got = timeseries.quality_trends(lake, Filters(), "month")  # one period: June 2025
    by_score = {r["score"]: r for r in got.iter_rows(named=True)}
    for score in ("lip_sync", "likeness"):
        values = [e["quality_scores"][score] for e in EVENTS]
        assert by_score[score]["jobs"] == JOBS
        assert by_score[score]["value"] == pytest.approx(sum(values) / JOBS)


def test_configurations_over_the_sample_count_sampled_jobs(lake: Path, monkeypatch) -> None:
    exact = correlations.top_configurations(lake, Filters(), min_jobs=1, by="likeness", n=20)
    assert exact.get_column("sample_rate").unique().to_list() == [1]
    assert exact.get_column("jobs").sum() == JOBS
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    got = correlations.top_configurations(lake, Filters(), min_jobs=1, by="likeness", n=20)
    assert got.get_column("sample_rate").unique().to_list() == [16]
    assert got.get_column("jobs").sum() == len(SAMPLED)
    sampled = [e for e in EVENTS if e["event_id"] in SAMPLED]
    expected: dict[str, list[float]] = {}
    for e in sampled:
        key = f"cfg_scale={e['params']['cfg_scale']}, steps={e['params']['steps']}"
        expected.setdefault(key, []).append(e["quality_scores"]["likeness"])
    assert {r["params"]: r["value"] for r in got.iter_rows(named=True)} == pytest.approx(
        {k: sum(v) / len(v) for k, v in expected.items()}
    )


def test_correlations_and_scatter_over_the_sample(lake: Path, monkeypatch) -> None:
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    found = correlations.correlations(lake, Filters())
    assert set(found.get_column("n")) == {len(SAMPLED)}
    points = correlations.scatter(lake, Filters(), "wf-a", "steps", "lip_sync")
    assert sorted(points.get_column("job_id")) == sorted(f"job-{int(i[3:])}" for i in SAMPLED)
    assert points.schema == pl.Schema(
        {"job_id": pl.String(), "param_value": pl.Float64(), "score_value": pl.Float64()}
    )


def test_correlations_read_the_sample_where_it_holds_max_jobs_of_every_workflow(
    lake: Path, monkeypatch
) -> None:
    # 480 jobs of wf-a, far below SAMPLE_FROM_ROWS. With MAX_JOBS 31 a workflow keeps more than
    # the 480 / 16 = 30 its sample holds: every job is read. With MAX_JOBS 30 the sample holds
    # as many as are kept, and is read.
    monkeypatch.setattr(correlations, "MAX_JOBS", JOBS // sample.SAMPLE_RATE + 1)
    assert correlations.jobs_source(lake, Filters())[1:] == ("jobs", 1)
    monkeypatch.setattr(correlations, "MAX_JOBS", JOBS // sample.SAMPLE_RATE)
    found = correlations.correlations(lake, Filters())
    assert set(found.get_column("n")) <= set(range(1, len(SAMPLED) + 1))
    assert correlations.jobs_source(lake, Filters())[1:] == ("jobs_sample", sample.SAMPLE_RATE)
    # The scatter of the workflow reads the same jobs.
    points = correlations.scatter(lake, Filters(), "wf-a", "steps", "lip_sync")
    assert set(points.get_column("job_id")) <= {f"job-{int(i[3:])}" for i in SAMPLED}


def _sql_read_by(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every `frame` call `module` makes from now on, in order."""
    read: list[str] = []
    real_frame = module.frame

    def frame_spy(lake_: Path, sql: str, params: Any = (), **kwargs: Any) -> pl.DataFrame:
        read.append(sql)
        return real_frame(lake_, sql, params, **kwargs)

    monkeypatch.setattr(module, "frame", frame_spy)
    return read


def test_the_two_histograms_of_a_range_count_the_sample_once(lake: Path, monkeypatch) -> None:
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    monkeypatch.setattr(base, "MIN_GROUP_SAMPLE", 1)
    monkeypatch.setattr(base, "ROWS_REUSE_S", 60.0)
    read = _sql_read_by(workflows, monkeypatch)
    spread = workflows.histogram(lake, Filters(), "time_per_frame_ms", bins=4)
    likeness = workflows.histogram(lake, Filters(), "likeness", bins=4)
    assert sum(sql.lstrip().startswith("select workflow_id, count(") for sql in read) == 1
    assert set(spread.get_column("sample_rate")) == set(likeness.get_column("sample_rate")) == {16}


def test_compare_draws_very_big_groups_from_the_sample(lake, tmp_path, monkeypatch) -> None:
    # Groups of 160 (06-01) and 320 jobs: with MAX_JOBS 10, both hold 16 x 10 or more.
    monkeypatch.setattr(compare, "MAX_JOBS", 10)
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    read = _sql_read_by(compare, monkeypatch)
    split = date(2025, 6, 2)
    got = compare.compare_periods(lake, Filters(), "wf-a", split, match_on=())
    assert any("from jobs_sample" in sql and "hash(event_id) %" in sql for sql in read)
    likeness = got.filter(pl.col("metric") == "avg_likeness").row(0, named=True)
    assert 0 < likeness["n_b"] <= len([i for i in SAMPLED if int(i[3:]) % 3 == 0])
    # Failure rates count every attempt, sample or not.
    rates = got.filter(pl.col("metric") == "failure_rate").row(0, named=True)
    assert (rates["n_a"], rates["n_b"]) == (320, 160)
    # A group whose days the sample lacks (06-01's, here) keeps every group on the jobs.
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    shutil.rmtree(copy / "jobs_sample" / "date=2025-06-01")
    read.clear()
    compare.compare_periods(copy, Filters(), "wf-a", split, match_on=())
    drawn = [sql for sql in read if "hash(event_id) %" in sql]
    assert drawn and all("from jobs\n" in sql for sql in drawn)


def _with_stages(n: int) -> dict:
    stages = [
        {"name": "load_model", "duration_ms": 100 + n % 50},
        {"name": "sample", "duration_ms": 1000 + (n * 37) % 900},
    ]
    return _job(n) | {"pipeline_stages": stages, "time_per_frame_ms": 100 + (n * 13) % 400}


STAGED = [_with_stages(n) for n in range(JOBS)]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("staged") / "lake", STAGED)


def test_ingest_writes_the_stages_of_the_sampled_attempts(staged: Path) -> None:
    got = frame(staged, "select event_id, stage_index from job_stages_sample order by all")
    assert got.rows() == [(i, k) for i in SAMPLED for k in (0, 1)]


def _quantile(values: list[float], q: float) -> float:
    """quantile_cont: linear between the closest ranks."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    low = int(pos)
    return xs[low] + (pos - low) * (xs[min(low + 1, len(xs) - 1)] - xs[low])


def test_percentiles_and_histograms_over_the_sample(staged: Path, monkeypatch) -> None:
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    monkeypatch.setattr(base, "MIN_GROUP_SAMPLE", 1)
    sampled = [e for e in STAGED if e["event_id"] in SAMPLED]
    summary = workflows.workflow_summary(staged, Filters()).row(0, named=True)
    tpf = [e["time_per_frame_ms"] for e in sampled]
    assert summary["percentile_sample_rate"] == 16
    assert summary["p95_time_per_frame_ms"] == pytest.approx(_quantile(tpf, 0.95))
    assert summary["p50_time_per_frame_ms"] == pytest.approx(_quantile(tpf, 0.5))
    # Everything else counts every job.
    assert summary["jobs"] == JOBS
    every = [e["time_per_frame_ms"] for e in STAGED]
    assert summary["avg_time_per_frame_ms"] == pytest.approx(sum(every) / JOBS)
    assert summary["max_time_per_frame_ms"] == max(every)

    stages = workflows.stage_breakdown(staged, Filters())
    row = stages.filter(pl.col("stage_name") == "sample").row(0, named=True)
    durations = [e["pipeline_stages"][1]["duration_ms"] for e in sampled]
    assert row["percentile_sample_rate"] == 16
    assert row["p95_ms"] == pytest.approx(_quantile(durations, 0.95))
    assert row["stages"] == JOBS
    assert row["total_ms"] == sum(e["pipeline_stages"][1]["duration_ms"] for e in STAGED)
    # Over a range this large the counts and totals come from the stage cells, cached once.
    assert list((staged / "_meta" / "rollups" / "stage_cells").rglob("*.parquet"))
    assert_frame_equal(workflows.stage_breakdown(staged, Filters()), stages)

    spread = workflows.histogram(staged, Filters(), "time_per_frame_ms", bins=4)
    assert spread.get_column("sample_rate").unique().to_list() == [16]
    assert spread.get_column("jobs").sum() == len(sampled)
    assert spread.get_column("bin_start").min() == min(tpf)


def test_a_missing_stage_sample_keeps_the_percentiles_exact(staged, tmp_path, monkeypatch) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(staged, copy)
    shutil.rmtree(copy / "job_stages_sample")
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    monkeypatch.setattr(base, "MIN_GROUP_SAMPLE", 1)
    stages = workflows.stage_breakdown(copy, Filters())
    assert stages.get_column("percentile_sample_rate").unique().to_list() == [1]
    row = stages.filter(pl.col("stage_name") == "sample").row(0, named=True)
    every = [e["pipeline_stages"][1]["duration_ms"] for e in STAGED]
    assert row["p95_ms"] == pytest.approx(_quantile(every, 0.95))
    # ... until compaction writes it.
    assert main(["compact", "--lake", str(copy)]) == 0
    resampled = workflows.stage_breakdown(copy, Filters())
    assert resampled.get_column("percentile_sample_rate").unique().to_list() == [16]


def test_backfill_completes_a_day_whose_sample_is_partial(lake: Path, tmp_path: Path) -> None:
    # A day ingested before the sample existed, then one late sampled job after: its sample
    # folder exists but holds one row. The backfill counts, and completes it.
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    shutil.rmtree(copy / "jobs_sample")
    day_two = [e for e in EVENTS if e["event_id"] in SAMPLED and e["occurred_at"][:10] == DAYS[1]]
    write_events(copy, day_two[-1:])  # one sampled job, on 06-02
    assert len(_ids(copy, "jobs_sample")) == 1
    assert sample.backfill(copy) == len(SAMPLED) - 1
    assert _ids(copy, "jobs_sample") == SAMPLED
    assert sample.backfill(copy) == 0


def test_a_group_the_sample_holds_too_little_of_keeps_exact_percentiles(
    staged: Path, tmp_path: Path, monkeypatch
) -> None:
    # wf-a is big enough for the sample (MIN_GROUP_SAMPLE 10: it holds 32); wf-rare's 5 jobs
    # are not in it at all, and keep exact percentiles, a histogram and a custom score trend.
    unsampled = (
        n for n in range(10_000, 10**6) if f"ev-{n:04d}" not in _sampled_ids([f"ev-{n:04d}"])
    )
    rare = [
        _with_stages(next(unsampled))
        | {"workflow_id": "wf-rare", "time_per_frame_ms": 900 + k, "quality_scores": {"rare": 0.5}}
        for k in range(5)
    ]
    lake = tmp_path / "lake"
    shutil.copytree(staged, lake)
    write_events(lake, rare)
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    monkeypatch.setattr(base, "MIN_GROUP_SAMPLE", 10)
    summary = workflows.workflow_summary(lake, Filters())
    by_id = {r["workflow_id"]: r for r in summary.iter_rows(named=True)}
    assert by_id["wf-a"]["percentile_sample_rate"] == 16
    assert by_id["wf-rare"]["percentile_sample_rate"] == 1
    assert by_id["wf-rare"]["p50_time_per_frame_ms"] == 902.0
    assert by_id["wf-rare"]["p95_time_per_frame_ms"] == pytest.approx(
        _quantile([900, 901, 902, 903, 904], 0.95)
    )
    spread = workflows.histogram(lake, Filters(), "time_per_frame_ms", bins=4)
    rates = dict(spread.group_by("workflow_id").agg(pl.col("sample_rate").first()).rows())
    assert rates == {"wf-a": 16, "wf-rare": 1}
    assert spread.filter(pl.col("workflow_id") == "wf-rare").get_column("jobs").sum() == 5
    # The stages of the rare jobs' attempts: too few in the stage sample, exact.
    stages = workflows.stage_breakdown(lake, Filters())
    assert set(stages.get_column("percentile_sample_rate")) == {16}  # wf-a's stages dominate


def test_compare_checks_the_sample_of_each_compared_group(tmp_path: Path, monkeypatch) -> None:
    # Versions v1, v2, v3 on three days; v1's day has no sample (yet). Over the two compared
    # versions the sample looks complete when v3's day is counted in: each group is checked.
    def job(n: int) -> dict:
        day = 1 + n % 3
        return _job(n) | {"occurred_at": f"2025-06-0{day}T10:00:00Z", "workflow_version": f"v{day}"}

    lake = write_events(tmp_path / "lake", [job(n) for n in range(1200)])
    shutil.rmtree(lake / "jobs_sample" / "date=2025-06-01")
    monkeypatch.setattr(compare, "MAX_JOBS", 10)
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    got = compare.compare_versions(lake, Filters(), "wf-a", "v1", "v2", match_on=())
    likeness = got.filter(pl.col("metric") == "avg_likeness").row(0, named=True)
    assert likeness["n_a"] > 0 and likeness["n_b"] > 0  # drawn from the jobs, not an empty sample
