"""Thresholds: every validation rule, the SQLite store (seeded once, even under a race), and the
evaluation of a batch against hand-worked levels, scopes and failure rates."""

from __future__ import annotations

import math
import multiprocessing
import random
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lake import LakeError, views
from lake.alerting import alerts_by_day, batch_alerts, evaluate_jobs, recent_attempts
from lake.layout import ensure_lake, metadata_db
from lake.tables import ALERTS, JOB_FAILURES, JOBS, STANDARD_SCORES
from lake.thresholds import (
    FAILURE_RATE_MIN_ATTEMPTS,
    LEVELS,
    SCOPES,
    Threshold,
    ThresholdError,
    delete_threshold,
    list_thresholds,
    load_enabled,
    save_threshold,
    set_enabled,
    validate,
)
from lake.writer import LakeWriter
from tests.lakes import write_events

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DEFAULT = Threshold(1, "vram_peak_pct", "global", None, 85.0, 95.0, True)


# --- validation --------------------------------------------------------------------------------


def _t(**kw: Any) -> Threshold:
    return Threshold(**({"metric": "vram_peak_pct", "warning": 85.0, "critical": 95.0} | kw))


@pytest.mark.parametrize(
    ("threshold", "field", "message"),
    [
        (_t(metric=""), "metric", "metric: required"),
        (_t(metric="  "), "metric", "metric: required"),
        (
            _t(metric="vram peak!"),
            "metric",
            "metric: must be one of time_per_frame_ms, vram_peak_pct, total_gpu_time_ms, "
            "likeness, face_confidence, motion_quality, boundary_ssim, failure_rate or a quality "
            "score name (letters, digits, _ . : -), got 'vram peak!'",
        ),
        (
            _t(scope="team"),
            "scope",
            "scope: must be one of global, workflow, worker, got 'team'",
        ),
        (_t(scope="workflow"), "scope_id", "scope_id: required for scope workflow"),
        (_t(scope="worker", scope_id=" "), "scope_id", "scope_id: required for scope worker"),
        (
            _t(scope_id="wf-a"),
            "scope_id",
            "scope_id: must be empty for scope global, got 'wf-a'",
        ),
        (
            _t(warning=None, critical=None),
            "warning",
            "warning: set a warning or a critical level (or both)",
        ),
        (
            _t(warning=120),
            "warning",
            "warning: must be a number between 0 and 100 for vram_peak_pct, got 120",
        ),
        (
            _t(warning=-1),
            "warning",
            "warning: must be a number between 0 and 100 for vram_peak_pct, got -1",
        ),
        (
            _t(warning="85"),
            "warning",
            "warning: must be a number between 0 and 100 for vram_peak_pct, got '85'",
        ),
        (
            _t(warning=True),
            "warning",
            "warning: must be a number between 0 and 100 for vram_peak_pct, got True",
        ),
        (
            _t(critical=float("nan")),
            "critical",
            "critical: must be a number between 0 and 100 for vram_peak_pct, got nan",
        ),
        (
            _t(metric="likeness", warning=0.6, critical=1.5),
            "critical",
            "critical: must be a number between 0 and 1 for likeness, got 1.5",
        ),
        (
            _t(metric="failure_rate", warning=5, critical=None),
            "warning",
            "warning: must be a number between 0 and 1 for failure_rate, got 5",
        ),
        (
            _t(metric="time_per_frame_ms", warning=-1, critical=None),
            "warning",
            "warning: must be a number >= 0 for time_per_frame_ms, got -1",
        ),
        (
            _t(metric="sharpness", warning=None, critical=float("inf")),
            "critical",
            "critical: must be a number for sharpness, got inf",
        ),
        (
            _t(warning=85, critical=80),
            "critical",
            "critical: must lie above warning (85) because vram_peak_pct is bad when high, got 80",
        ),
        (
            _t(warning=85, critical=85),
            "critical",
            "critical: must lie above warning (85) because vram_peak_pct is bad when high, got 85",
        ),
        (
            _t(metric="likeness", warning=0.6, critical=0.7),
            "critical",
            "critical: must lie below warning (0.6) because likeness is bad when low, got 0.7",
        ),
        (
            _t(metric="sharpness", warning=-2, critical=-1.5),
            "critical",
            "critical: must lie below warning (-2) because sharpness is bad when low, got -1.5",
        ),
        (_t(enabled="yes"), "enabled", "enabled: must be true or false, got 'yes'"),
    ],
)
def test_validate_names_the_field_and_the_rule(
    threshold: Threshold, field: str, message: str
) -> None:
    with pytest.raises(ThresholdError) as caught:
        validate(threshold)
    assert str(caught.value) == message
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LakeError)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (
            Threshold(None, " vram_peak_pct ", "worker", " gpu-1 ", 85, None),
            Threshold(None, "vram_peak_pct", "worker", "gpu-1", 85.0, None),
        ),
        (
            Threshold(None, "likeness", "global", "", None, 0.4, False),
            Threshold(None, "likeness", "global", None, None, 0.4, False),
        ),
        (
            Threshold(3, "sharpness", "workflow", "wf-a", -1.5, -2),
            Threshold(3, "sharpness", "workflow", "wf-a", -1.5, -2.0),
        ),
        (
            Threshold(None, "failure_rate", warning=0, critical=1),
            Threshold(None, "failure_rate", "global", None, 0.0, 1.0),
        ),
    ],
)
def test_validate_normalises_a_good_threshold(threshold: Threshold, expected: Threshold) -> None:
    got = validate(threshold)
    assert got == expected
    assert all(isinstance(x, float) for x in (got.warning, got.critical) if x is not None)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [("vram_peak_pct", "high"), ("failure_rate", "high"), ("likeness", "low"), ("sharp", "low")],
)
def test_direction_of_a_metric(metric: str, direction: str) -> None:
    assert Threshold(metric=metric).direction == direction


def test_the_module_loads_without_polars_or_duckdb() -> None:
    # The ingest writer imports it for every flush's alerts; its memory is tight (about 45 MB
    # for both). DuckDB comes in only when recent_attempts reads the lake.
    code = "import sys, lake.alerting; print(sorted({'polars', 'duckdb'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


# --- the store ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return ensure_lake(tmp_path / "lake", create=True)


def test_a_new_store_holds_the_defaults_in_wal_mode(store: Path) -> None:
    assert list_thresholds(store) == [DEFAULT]
    with sqlite3.connect(metadata_db(store)) as con:
        assert con.execute("pragma journal_mode").fetchone() == ("wal",)
    con.close()


def test_a_missing_lake_is_named(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="does not exist"):
        list_thresholds(tmp_path / "nowhere")


def test_save_inserts_updates_and_orders(store: Path) -> None:
    worker = save_threshold(store, Threshold(None, "vram_peak_pct", "worker", "gpu-2", 70, 90))
    flow = save_threshold(store, Threshold(None, "vram_peak_pct", "workflow", "wf-a", 80, None))
    like = save_threshold(store, Threshold(None, "likeness", "global", None, 0.6, 0.4, False))
    assert (worker.id, flow.id, like.id) == (2, 3, 4)
    assert worker == Threshold(2, "vram_peak_pct", "worker", "gpu-2", 70.0, 90.0, True)
    updated = save_threshold(store, Threshold(3, "vram_peak_pct", "workflow", "wf-b", 75, 99))
    assert updated == Threshold(3, "vram_peak_pct", "workflow", "wf-b", 75.0, 99.0, True)
    assert list_thresholds(store) == [like, DEFAULT, updated, worker]


def test_save_validates_before_storing(store: Path) -> None:
    with pytest.raises(ThresholdError, match="critical: must lie above warning"):
        save_threshold(store, Threshold(None, "vram_peak_pct", "worker", "gpu-1", 90, 80))
    assert list_thresholds(store) == [DEFAULT]


@pytest.mark.parametrize(
    ("threshold", "field", "message"),
    [
        (
            Threshold(None, "vram_peak_pct", "global", None, 50, 60),
            "scope",
            "scope: a threshold on vram_peak_pct already exists globally; edit that one",
        ),
        (
            Threshold(None, "likeness", "workflow", "wf-a", 0.5, 0.4),
            "scope_id",
            "scope_id: a threshold on likeness already exists for workflow wf-a; edit that one",
        ),
        (
            Threshold(99, "likeness", "workflow", "wf-b", 0.5, 0.4),
            "id",
            "id: no threshold has id 99",
        ),
    ],
)
def test_save_refuses_a_second_threshold_on_the_same_target(
    store: Path, threshold: Threshold, field: str, message: str
) -> None:
    save_threshold(store, Threshold(None, "likeness", "workflow", "wf-a", 0.6, None))
    with pytest.raises(ThresholdError) as caught:
        save_threshold(store, threshold)
    assert (caught.value.field, str(caught.value)) == (field, message)
    assert len(list_thresholds(store)) == 2


def test_delete_and_enable(store: Path) -> None:
    other = save_threshold(store, Threshold(None, "failure_rate", "global", None, 0.1, 0.2))
    assert set_enabled(store, 1, False) == Threshold(
        1, "vram_peak_pct", "global", None, 85, 95, False
    )
    assert load_enabled(store) == [other]
    assert set_enabled(store, 1, True) == DEFAULT
    delete_threshold(store, other.id or 0)
    assert list_thresholds(store) == [DEFAULT]
    for call in (lambda: delete_threshold(store, 7), lambda: set_enabled(store, 7, True)):
        with pytest.raises(ThresholdError, match="id: no threshold has id 7"):
            call()
    with pytest.raises(ThresholdError, match="enabled: must be true or false, got 1"):
        set_enabled(store, 1, 1)  # type: ignore[arg-type]


def test_a_deleted_default_does_not_come_back(store: Path) -> None:
    delete_threshold(store, 1)
    assert list_thresholds(store) == []
    assert load_enabled(store) == []


def test_load_enabled_sees_every_commit_and_a_replaced_file(store: Path) -> None:
    assert load_enabled(store) == [DEFAULT]
    assert load_enabled(store) == [DEFAULT]  # cached: nothing committed since
    set_enabled(store, 1, False)
    assert load_enabled(store) == []
    seen_in_thread: list[list[Threshold]] = []
    thread = threading.Thread(target=lambda: seen_in_thread.append(load_enabled(store)))
    thread.start()
    thread.join()
    assert seen_in_thread == [[]]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{metadata_db(store)}{suffix}").unlink(missing_ok=True)
    assert load_enabled(store) == [DEFAULT]  # a fresh store, seeded again


def _list_after(barrier: Any, lake: str) -> int:
    barrier.wait()
    return len(list_thresholds(Path(lake)))


@pytest.mark.slow
def test_racing_processes_seed_the_defaults_once(tmp_path: Path) -> None:
    lakes = [ensure_lake(tmp_path / f"lake{run}", create=True) for run in range(8)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        for lake in lakes:
            barrier = manager.Barrier(4)
            assert pool.starmap(_list_after, [(barrier, str(lake))] * 4) == [1, 1, 1, 1]
    assert [list_thresholds(lake) for lake in lakes] == [[DEFAULT]] * 8


def test_racing_threads_seed_the_defaults_once(tmp_path: Path) -> None:
    lake = ensure_lake(tmp_path / "lake", create=True)
    barrier = threading.Barrier(8)
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda: counts.append(_list_after(barrier, str(lake))))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [1] * 8
    assert list_thresholds(lake) == [DEFAULT]


# --- evaluation --------------------------------------------------------------------------------


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _job(event_id: str, minute: int, workflow: str = "wf-a", worker: str = "gpu-1", **kw: Any):
    return {
        "event_id": event_id,
        "occurred_at": _at(minute),
        "job_id": f"job-{event_id}",
        "attempt": 1,
        "workflow_id": workflow,
        "worker_id": worker,
        "frame_count": 10,
        "total_gpu_time_ms": 1000,
        "time_per_frame_ms": 100.0,
        "ingested_at": T0,
    } | kw


def _failure(event_id: str, minute: int, workflow: str = "wf-a", worker: str = "gpu-1"):
    return _job(event_id, minute, workflow, worker, error_type="oom")


def _jobs(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=JOBS.schema)


def _failures(*rows: dict) -> pa.Table:
    names = set(JOB_FAILURES.schema.names)
    return pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k in names} for r in rows], schema=JOB_FAILURES.schema
    )


# (event_id, metric, level, value, threshold, threshold_id, scope, scope_id, attempts)
def _rows(alerts: pa.Table) -> list[tuple]:
    columns = [
        "event_id",
        "metric",
        "level",
        "value",
        "threshold",
        "threshold_id",
        "scope",
        "scope_id",
        "attempts",
    ]
    return list(zip(*(alerts.column(c).to_pylist() for c in columns), strict=True))


TPF = [
    Threshold(1, "time_per_frame_ms", "global", None, 100, None),
    Threshold(2, "time_per_frame_ms", "workflow", "wf-a", 200, None),
    Threshold(3, "time_per_frame_ms", "worker", "gpu-1", 300, None),
    # Another metric's thresholds never apply to time per frame.
    Threshold(4, "total_gpu_time_ms", "worker", "gpu-2", 5000, None),
]
PRECEDENCE_JOBS = _jobs(
    _job("a", 1, "wf-a", "gpu-1", time_per_frame_ms=250.0),
    _job("b", 2, "wf-a", "gpu-2", time_per_frame_ms=250.0),
    _job("c", 3, "wf-b", "gpu-2", time_per_frame_ms=150.0),
    _job("d", 4, "wf-b", "gpu-1", time_per_frame_ms=350.0),
)


def test_the_most_specific_scope_wins() -> None:
    got = evaluate_jobs(PRECEDENCE_JOBS, None, TPF)
    assert _rows(got) == [
        # a: the worker's 300 applies (not the workflow's 200): no alert.
        ("b", "time_per_frame_ms", "warning", 250.0, 200.0, 2, "workflow", "wf-a", None),
        ("c", "time_per_frame_ms", "warning", 150.0, 100.0, 1, "global", None, None),
        ("d", "time_per_frame_ms", "warning", 350.0, 300.0, 3, "worker", "gpu-1", None),
    ]
    assert got.schema == ALERTS.schema


def test_a_disabled_threshold_gives_way_to_the_next_scope() -> None:
    thresholds = [*TPF[:2], Threshold(3, "time_per_frame_ms", "worker", "gpu-1", 300, None, False)]
    assert _rows(evaluate_jobs(PRECEDENCE_JOBS, None, thresholds)) == [
        ("a", "time_per_frame_ms", "warning", 250.0, 200.0, 2, "workflow", "wf-a", None),
        ("b", "time_per_frame_ms", "warning", 250.0, 200.0, 2, "workflow", "wf-a", None),
        ("c", "time_per_frame_ms", "warning", 150.0, 100.0, 1, "global", None, None),
        ("d", "time_per_frame_ms", "warning", 350.0, 100.0, 1, "global", None, None),
    ]


@pytest.mark.parametrize(
    ("threshold", "column", "value", "expected"),
    [
        (
            Threshold(1, "time_per_frame_ms", warning=100, critical=200),
            "time_per_frame_ms",
            99.9,
            None,
        ),
        (
            Threshold(1, "time_per_frame_ms", warning=100, critical=200),
            "time_per_frame_ms",
            100.0,
            ("warning", 100.0),
        ),
        (
            Threshold(1, "time_per_frame_ms", warning=100, critical=200),
            "time_per_frame_ms",
            199.0,
            ("warning", 100.0),
        ),
        (
            Threshold(1, "time_per_frame_ms", warning=100, critical=200),
            "time_per_frame_ms",
            200.0,
            ("critical", 200.0),
        ),
        (Threshold(1, "total_gpu_time_ms", critical=5000), "total_gpu_time_ms", 4999, None),
        (
            Threshold(1, "total_gpu_time_ms", critical=5000),
            "total_gpu_time_ms",
            7000,
            ("critical", 5000.0),
        ),
        (Threshold(1, "likeness", warning=0.6, critical=0.4), "likeness", 0.61, None),
        (Threshold(1, "likeness", warning=0.6, critical=0.4), "likeness", 0.6, ("warning", 0.6)),
        (Threshold(1, "likeness", warning=0.6, critical=0.4), "likeness", 0.4, ("critical", 0.4)),
        (Threshold(1, "likeness", warning=0.6, critical=0.4), "likeness", None, None),
        (Threshold(1, "boundary_ssim", warning=0.5), "boundary_ssim", 0.1, ("warning", 0.5)),
    ],
)
def test_levels_are_reached_at_or_beyond_the_limit(
    threshold: Threshold, column: str, value: float | None, expected: tuple | None
) -> None:
    got = evaluate_jobs(_jobs(_job("j", 1, **{column: value})), None, [threshold])
    assert [(r[2], r[4]) for r in _rows(got)] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("peak", "total", "expected"),
    [
        (840, 1000, None),
        (900, 1000, ("warning", 90.0, 85.0)),
        (950, 1000, ("critical", 95.0, 95.0)),
        (None, 1000, None),  # no VRAM monitoring
        (900, None, None),  # GPU memory unknown
    ],
)
def test_vram_peak_pct_against_the_defaults(peak: int | None, total: int | None, expected) -> None:
    jobs = _jobs(_job("j", 1, vram_peak_mb=peak, vram_total_mb=total))
    got = _rows(evaluate_jobs(jobs, None, [DEFAULT]))
    assert [(r[2], r[3], r[4]) for r in got] == ([expected] if expected else [])


def test_custom_scores_come_from_quality_scores_and_are_bad_when_low() -> None:
    jobs = _jobs(
        _job("a", 1, quality_scores=[("sharpness", 0.3), ("likeness", 0.9)], likeness=0.9),
        _job("b", 2, quality_scores=[("likeness", 0.2)], likeness=0.2),
        _job("c", 3, quality_scores=[("sharpness", 0.45)]),
    )
    thresholds = [Threshold(5, "sharpness", "workflow", "wf-a", 0.5, 0.4)]
    assert _rows(evaluate_jobs(jobs, None, thresholds)) == [
        ("a", "sharpness", "critical", 0.3, 0.4, 5, "workflow", "wf-a", None),
        ("c", "sharpness", "warning", 0.45, 0.5, 5, "workflow", "wf-a", None),
    ]


def test_one_alert_per_job_and_metric_with_the_job_context() -> None:
    jobs = _jobs(
        _job(
            "j",
            1,
            likeness=0.1,
            time_per_frame_ms=900.0,
            attempt=2,
            project_id="p-1",
            scene_type="walk",
            resolution_tier="4k",
        )
    )
    thresholds = [
        Threshold(1, "likeness", warning=0.5),
        Threshold(2, "time_per_frame_ms", warning=500),
    ]
    got = evaluate_jobs(jobs, None, thresholds).to_pylist()
    assert [r["metric"] for r in got] == ["likeness", "time_per_frame_ms"]
    assert {
        k: got[0][k]
        for k in (
            "occurred_at",
            "job_id",
            "attempt",
            "workflow_id",
            "worker_id",
            "project_id",
            "scene_type",
            "resolution_tier",
            "ingested_at",
        )
    } == {
        "occurred_at": _at(1),
        "job_id": "job-j",
        "attempt": 2,
        "workflow_id": "wf-a",
        "worker_id": "gpu-1",
        "project_id": "p-1",
        "scene_type": "walk",
        "resolution_tier": "4k",
        "ingested_at": T0,
    }


RATES = [
    Threshold(7, "failure_rate", "global", None, 0.1, 0.3),
    Threshold(8, "failure_rate", "worker", "gpu-9", 0.5, None),
]
# wf-a: 8 completed + 2 failed = 10 attempts, rate 0.2. gpu-9: 1 completed + 1 failed (wf-b).
RATE_JOBS = _jobs(
    *[_job(f"ok{i}", i, "wf-a", "gpu-1") for i in range(8)],
    _job("ok8", 8, "wf-b", "gpu-9"),
)
RATE_FAILURES = _failures(
    _failure("f1", 10, "wf-a", "gpu-1"),
    _failure("f2", 11, "wf-a", "gpu-2"),
    _failure("f3", 12, "wf-b", "gpu-9"),
)


def _history(*rows: tuple[str, str, str, bool]) -> pa.Table:
    names = ["event_id", "workflow_id", "worker_id", "failed"]
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])


def test_failure_rate_over_the_batch_alerts_once_on_the_latest_failure() -> None:
    got = evaluate_jobs(RATE_JOBS, RATE_FAILURES, RATES)
    # wf-a: 2 / 10 reaches the global warning 0.1, on f2 (the later failure). gpu-9 (its own
    # threshold, 1 / 2 = 0.5) has fewer than 10 attempts: no rate yet.
    assert _rows(got) == [("f2", "failure_rate", "warning", 0.2, 0.1, 7, "global", None, 10)]
    assert got.column("job_id").to_pylist() == ["job-f2"]


def test_failure_rate_pools_history_and_counts_an_attempt_once() -> None:
    history = _history(
        ("f1", "wf-a", "gpu-1", True),  # already in the batch: counted once
        ("ok1", "wf-a", "gpu-1", False),  # idem
        *[(f"h{i}", "wf-c", "gpu-9", i < 4) for i in range(8)],  # gpu-9: 4 of 8 failed
    )
    got = evaluate_jobs(RATE_JOBS, RATE_FAILURES, RATES, history)
    # gpu-9: 2 batch + 8 earlier = 10 attempts, 1 + 4 failed: 0.5 reaches its warning 0.5.
    assert _rows(got) == [
        ("f2", "failure_rate", "warning", 0.2, 0.1, 7, "global", None, 10),
        ("f3", "failure_rate", "warning", 0.5, 0.5, 8, "worker", "gpu-9", 10),
    ]


def test_failure_rate_critical_and_nothing_without_failures() -> None:
    failures = _failures(*[_failure(f"f{i}", 20 + i, "wf-a", "gpu-1") for i in range(4)])
    # wf-a: 4 failed of 12 attempts = 0.333... >= 0.3.
    (row,) = _rows(evaluate_jobs(RATE_JOBS, failures, RATES))
    assert row[:3] == ("f3", "failure_rate", "critical")
    assert row[3] == pytest.approx(1 / 3)
    assert row[4:] == (0.3, 7, "global", None, 12)
    assert evaluate_jobs(RATE_JOBS, None, RATES).num_rows == 0


@pytest.mark.parametrize(
    ("jobs", "failures", "thresholds"),
    [
        (None, None, [DEFAULT, *RATES]),
        (PRECEDENCE_JOBS, RATE_FAILURES, []),
        (_jobs(), _failures(), [DEFAULT, *TPF, *RATES]),
        (PRECEDENCE_JOBS, None, [Threshold(1, "sharpness", warning=0.5)]),
    ],
)
def test_nothing_to_alert_is_an_empty_typed_table(jobs, failures, thresholds) -> None:
    got = evaluate_jobs(jobs, failures, thresholds)
    assert got.num_rows == 0
    assert got.schema == ALERTS.schema


def test_a_replayed_batch_gives_the_same_alerts_and_the_lake_keeps_them_once(
    tmp_path: Path,
) -> None:
    jobs = pa.concat_tables([PRECEDENCE_JOBS, RATE_JOBS])
    thresholds = [*TPF, *RATES]
    first = evaluate_jobs(jobs, RATE_FAILURES, thresholds)
    again = evaluate_jobs(jobs, RATE_FAILURES, thresholds)
    # b, c, d as in the precedence test; ok8 (wf-b, gpu-9) at the global 100; wf-a's failure
    # rate 2 / 12 (a, b, ok0-ok7, f1, f2) on f2.
    assert first.column("event_id").to_pylist() == ["b", "c", "d", "ok8", "f2"]
    assert first.equals(again)
    lake = ensure_lake(tmp_path / "lake", create=True)
    for _ in range(2):  # a second writer, as after a restart
        writer = LakeWriter(lake)
        for day, rows in alerts_by_day(again):
            writer.publish(ALERTS, day, rows, "part-x.parquet")
    con = views.connect(lake)
    try:
        counted = views.run(
            con, "select count(*), count(distinct (event_id, metric)) from alerts"
        ).fetchone()
    finally:
        con.close()
    assert counted == (5, 5)


def test_alerts_by_day_splits_on_the_utc_day() -> None:
    late = datetime.fromisoformat("2025-06-02T23:30:00-01:00")  # 00:30 UTC on 06-03
    jobs = _jobs(
        _job("a", 0, occurred_at=datetime(2025, 6, 2, 23, 59, tzinfo=UTC), likeness=0.1),
        _job("b", 0, occurred_at=late, likeness=0.1),
        _job("c", 0, occurred_at=datetime(2025, 6, 3, 1, tzinfo=UTC), likeness=0.1),
    )
    alerts = evaluate_jobs(jobs, None, [Threshold(1, "likeness", warning=0.5)])
    split = [(day, rows.column("event_id").to_pylist()) for day, rows in alerts_by_day(alerts)]
    assert split == [(date(2025, 6, 2), ["a"]), (date(2025, 6, 3), ["b", "c"])]
    assert alerts_by_day(alerts.slice(0, 0)) == []


# --- evaluation against a plain reference, on random batches -----------------------------------

_WORKFLOWS = ["wf-0", "wf-1", "wf-2", "wf-3"]
#: gpu-rare runs a handful of attempts: too few for a failure rate.
_WORKERS = ["gpu-0", "gpu-1", "gpu-2", "gpu-3", "gpu-rare"]
_LIMITS = {  # metric -> (warning levels, how far critical lies beyond warning)
    "time_per_frame_ms": ((150.0, 200.0, 250.0, 300.0), 100.0),
    "total_gpu_time_ms": ((4000.0, 5000.0, 6000.0), 2000.0),
    "vram_peak_pct": ((70.0, 75.0, 80.0, 85.0), 10.0),
    "likeness": ((0.4, 0.5, 0.6), -0.2),
    "boundary_ssim": ((0.4, 0.5, 0.6), -0.2),
    "sharpness": ((0.4, 0.5, 0.6), -0.2),
    "grain": ((0.4, 0.5, 0.6), -0.2),
    "failure_rate": ((0.05, 0.1, 0.15), 0.1),
}


def _score(rng: random.Random) -> float | None:
    """None, NaN, +-inf, a value on a level (tenths) or any value in [0, 1)."""
    kind = rng.random()
    if kind < 0.3:
        return rng.choice([None, math.nan, math.inf, -math.inf])
    return rng.randint(0, 10) / 10 if kind < 0.5 else rng.random()


def _random_attempt(rng: random.Random, event_id: str, failed: bool) -> dict:
    worker = "gpu-rare" if rng.random() < 0.02 else rng.choice(_WORKERS[:-1])
    kw: dict[str, Any] = {
        "attempt": rng.randint(1, 3),
        "project_id": rng.choice([None, "p-1", "p-2"]),
        "scene_type": rng.choice([None, "walk", "idle"]),
        "resolution_tier": rng.choice([None, "720p", "4k"]),
        "ingested_at": rng.choice([None, T0]),
    }
    # Few distinct minutes: ties on occurred_at, broken by event_id.
    row = _job(event_id, rng.randint(0, 40), rng.choice(_WORKFLOWS), worker, **kw)
    if failed:
        return row | {"error_type": "oom"}
    return row | {
        "time_per_frame_ms": rng.choice(
            [math.nan, math.inf, rng.uniform(50, 500), rng.randrange(50, 501, 50)]
        ),
        "total_gpu_time_ms": rng.choice([rng.randint(1000, 9000), rng.randrange(1000, 9001, 1000)]),
        # Of 10000 MB, a multiple of 500 MB is a level exactly.
        "vram_peak_mb": rng.choice([None, rng.randint(0, 24576), rng.randrange(0, 10001, 500)]),
        "vram_total_mb": rng.choice([None, 0, -1, 10000, 16384, 24576]),
        "likeness": _score(rng),
        "boundary_ssim": _score(rng),
        "quality_scores": rng.choice(
            [
                None,
                [],
                [("sharpness", _score(rng))],
                [("grain", _score(rng)), ("sharpness", _score(rng))],
                [("sharpness", _score(rng)), ("sharpness", _score(rng))],  # the first counts
            ]
        ),
    }


def _random_thresholds(rng: random.Random) -> list[Threshold]:
    """Thresholds in every scope (one per metric and target, as the store keeps), some disabled."""
    targets = {(m, "global", None) for m in _LIMITS}
    targets |= {(rng.choice(list(_LIMITS)), "workflow", rng.choice(_WORKFLOWS)) for _ in range(12)}
    targets |= {(rng.choice(list(_LIMITS)), "worker", rng.choice(_WORKERS)) for _ in range(12)}
    targets.add(("failure_rate", "worker", "gpu-rare"))
    thresholds = []
    for id_, (metric, scope, scope_id) in enumerate(sorted(targets, key=str), start=1):
        levels, beyond = _LIMITS[metric]
        warning = rng.choice(levels)
        critical = rng.choice([None, *[round(warning + beyond, 2)] * 3])
        if critical is not None and rng.random() < 0.2:
            warning = None
        enabled = rng.random() < 0.85
        thresholds.append(Threshold(id_, metric, scope, scope_id, warning, critical, enabled))
    return thresholds


def _reference(
    jobs: list[dict], failures: list[dict], thresholds: list[Threshold], history: list[dict]
) -> list[dict]:
    """The alerts as evaluate_jobs's docstring states them, row by row."""
    enabled = [t for t in thresholds if t.enabled]

    def applied(metric: str, row: dict) -> Threshold | None:
        for scope, member in (("worker", row["worker_id"]), ("workflow", row["workflow_id"])):
            for t in enabled:
                if (t.metric, t.scope, t.scope_id) == (metric, scope, member):
                    return t
        return next((t for t in enabled if (t.metric, t.scope) == (metric, "global")), None)

    def alert(row: dict, metric: str, value: float, attempts: int | None) -> dict | None:
        t = applied(metric, row)
        if t is None:
            return None
        high = t.direction == "high"
        for level, limit in (("critical", t.critical), ("warning", t.warning)):
            if limit is not None and (value >= limit if high else value <= limit):
                context = {c: row.get(c) for c in ALERTS.schema.names}
                return context | {
                    "metric": metric,
                    "level": level,
                    "value": value,
                    "threshold": limit,
                    "threshold_id": t.id,
                    "scope": t.scope,
                    "scope_id": t.scope_id,
                    "attempts": attempts,
                }
        return None

    def value(job: dict, metric: str) -> float | None:
        if metric == "vram_peak_pct":
            peak, total = job.get("vram_peak_mb"), job.get("vram_total_mb")
            return None if peak is None or not total or total <= 0 else peak * 100 / total
        if metric in ("time_per_frame_ms", "total_gpu_time_ms", *STANDARD_SCORES):
            return None if job.get(metric) is None else float(job[metric])
        return next((v for k, v in job.get("quality_scores") or [] if k == metric), None)

    found = []
    for job in jobs:
        for metric in sorted({t.metric for t in enabled} - {"failure_rate"}):
            v = value(job, metric)
            if v is not None and math.isfinite(v):
                found.append(alert(job, metric, v, None))

    pool: dict[str, tuple[str, str, bool]] = {}
    for rows, failed in ((failures, True), (jobs, False)):
        for r in rows:
            pool.setdefault(r["event_id"], (r["workflow_id"], r["worker_id"], failed))
    for h in history:
        pool.setdefault(h["event_id"], (h["workflow_id"], h["worker_id"], h["failed"]))
    latest: dict[tuple[int | None, str], dict] = {}
    for f in failures:
        t = applied("failure_rate", f)
        if t is not None:
            key = (t.id, f["worker_id"] if t.scope == "worker" else f["workflow_id"])
            if key not in latest or (f["occurred_at"], f["event_id"]) > (
                latest[key]["occurred_at"],
                latest[key]["event_id"],
            ):
                latest[key] = f
    for (id_, member), f in latest.items():
        by_worker = next(t for t in enabled if t.id == id_).scope == "worker"
        outcomes = [
            failed for wf, wk, failed in pool.values() if (wk if by_worker else wf) == member
        ]
        if len(outcomes) >= FAILURE_RATE_MIN_ATTEMPTS:
            found.append(alert(f, "failure_rate", sum(outcomes) / len(outcomes), len(outcomes)))
    alerts = [a for a in found if a is not None]
    return sorted(alerts, key=lambda a: (a["occurred_at"], a["event_id"], a["metric"]))


def _in_chunks(table: pa.Table, rng: random.Random) -> pa.Table:
    """The table in a few chunks of random sizes, as ingest concatenates a batch's tables."""
    cuts = sorted(rng.sample(range(1, table.num_rows), 3))
    bounds = zip([0, *cuts], [*cuts, table.num_rows], strict=True)
    return pa.concat_tables(table.slice(start, end - start) for start, end in bounds)


@pytest.mark.parametrize("seed", range(8))
def test_evaluate_jobs_equals_a_plain_reference_on_random_batches(seed: int) -> None:
    rng = random.Random(seed)
    jobs = [_random_attempt(rng, f"j{i:03}", False) for i in range(rng.randint(200, 400))]
    failures = [_random_attempt(rng, f"f{i:03}", True) for i in range(rng.randint(40, 80))]
    # A replayed failure that a job already carries: the failure is kept, the job not counted.
    failures.append(rng.choice(jobs) | {"error_type": "oom"})
    history = [
        {
            "event_id": f"h{i:03}",
            "workflow_id": rng.choice(_WORKFLOWS),
            "worker_id": rng.choice(_WORKERS[:-1]),
            "failed": rng.random() < 0.3,
        }
        for i in range(rng.randint(0, 150))
    ]
    # History overlapping the batch (counted once, as the batch has it) and itself.
    for row in (
        rng.sample(jobs, 10) + rng.sample(failures, 5) + rng.sample(history, min(5, len(history)))
    ):
        history.append(
            {
                "event_id": row["event_id"],
                "workflow_id": rng.choice(_WORKFLOWS),
                "worker_id": rng.choice(_WORKERS),
                "failed": rng.random() < 0.5,
            }
        )
    rng.shuffle(history)
    thresholds = _random_thresholds(rng)
    with_history = seed % 4 != 0
    expected = _reference(jobs, failures, thresholds, history if with_history else [])
    got = evaluate_jobs(
        _in_chunks(_jobs(*jobs), rng),
        _in_chunks(_failures(*failures), rng),
        thresholds,
        pa.Table.from_pylist(history) if with_history else None,
    )
    assert got.schema == ALERTS.schema
    assert got.to_pylist() == expected
    # The batch is worth comparing on: both levels, every scope, rates and vram percentages.
    assert {a["level"] for a in expected} == set(LEVELS)
    assert {a["scope"] for a in expected} == set(SCOPES)
    assert {"failure_rate", "vram_peak_pct", "sharpness"} <= {a["metric"] for a in expected}


def _event(kind: str, event_id: str, minute: int, workflow: str, worker: str) -> dict:
    event = {
        "event_type": kind,
        "event_id": event_id,
        "occurred_at": _at(minute).isoformat(),
        "job_id": f"job-{event_id}",
        "workflow_id": workflow,
        "worker_id": worker,
    }
    if kind == "job.failed":
        return event | {"error_type": "oom"}
    return event | {"frame_count": 10, "total_gpu_time_ms": 1000}


@pytest.fixture
def history_lake(tmp_path: Path) -> Path:
    """Attempts around a failure at T0 + 60 min on wf-a / gpu-1."""
    return write_events(
        tmp_path / "lake",
        [
            _event("job.completed", "in-wf", 10, "wf-a", "gpu-5"),  # same workflow
            _event("job.failed", "in-worker", 30, "wf-z", "gpu-1"),  # same worker
            _event("job.completed", "edge", 0, "wf-a", "gpu-1"),  # exactly one hour before
            _event("job.completed", "too-old", -1, "wf-a", "gpu-1"),
            _event("job.completed", "too-late", 61, "wf-a", "gpu-1"),
            _event("job.completed", "other", 40, "wf-z", "gpu-7"),
        ],
    )


def test_recent_attempts_share_a_workflow_or_worker_within_the_window(history_lake: Path) -> None:
    failures = _failures(_failure("f", 60, "wf-a", "gpu-1"))
    got = recent_attempts(history_lake, failures).sort_by("event_id").to_pylist()
    assert got == [
        {"event_id": "edge", "workflow_id": "wf-a", "worker_id": "gpu-1", "failed": False},
        {"event_id": "in-wf", "workflow_id": "wf-a", "worker_id": "gpu-5", "failed": False},
        {"event_id": "in-worker", "workflow_id": "wf-z", "worker_id": "gpu-1", "failed": True},
    ]
    assert recent_attempts(history_lake, _failures()).num_rows == 0


def test_batch_alerts_use_the_stored_thresholds_and_the_lake_history(history_lake: Path) -> None:
    save_threshold(history_lake, Threshold(None, "failure_rate", "worker", "gpu-1", 0.2, 0.5))
    jobs = _jobs(
        *[_job(f"ok{i}", 50 + i, "wf-a", "gpu-1") for i in range(6)],
        _job("hot", 59, vram_peak_mb=960, vram_total_mb=1000),
    )
    failures = _failures(_failure("f", 60, "wf-a", "gpu-1"))
    # gpu-1: 7 batch jobs + f + edge + in-worker from the lake = 10 attempts, 2 failed: 0.2.
    assert _rows(batch_alerts(history_lake, jobs, failures)) == [
        ("hot", "vram_peak_pct", "critical", 96.0, 95.0, 1, "global", None, None),
        ("f", "failure_rate", "warning", 0.2, 0.2, 2, "worker", "gpu-1", 10),
    ]
