"""Report runs: a (schedule, period) is claimed once, even by racing processes; only the claimant
moves a run on; abandoned claims expire; retries skip paused and deleted schedules."""

from __future__ import annotations

import multiprocessing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lake.layout import ensure_lake
from lake.report_runs import (
    INTERRUPTED_RENDER,
    INTERRUPTED_SEND,
    claim_period,
    claim_retry,
    claimed_periods,
    earliest_retry,
    expire_leases,
    finish_run,
    get_run,
    list_runs,
    record_files,
    retry_due,
    retry_now,
    run_file,
    start_send,
)
from lake.schedules import (
    Period,
    Schedule,
    ScheduleError,
    delete_schedule,
    get_schedule,
    save_schedule,
    set_paused,
)

T0 = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)
WEEK = Period(date(2025, 6, 2), date(2025, 6, 8))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return ensure_lake(tmp_path / "lake", create=True)


def _schedule(lake: Path, **kw: Any) -> Schedule:
    fields = {"recipients": ("ops@example.com",), "formats": ("csv", "pdf")} | kw
    return save_schedule(lake, Schedule(**fields), datetime(2025, 5, 1, tzinfo=UTC))


def _week(n: int) -> Period:
    start = date(2025, 5, 5) + timedelta(weeks=n)
    return Period(start, start + timedelta(days=6))


def test_a_period_is_claimed_once(lake: Path) -> None:
    s = _schedule(lake, project="proj-aurora")
    run = claim_period(lake, s, WEEK, "a", T0, LEASE)
    assert run is not None
    assert (run.id, run.schedule_id, run.kind, run.project, run.period) == (
        1,
        1,
        "performance",
        "proj-aurora",
        WEEK,
    )
    assert (run.status, run.attempts, run.files, run.recipients, run.formats) == (
        "rendering",
        0,
        (),
        ("ops@example.com",),
        ("csv", "pdf"),
    )
    assert run.due_at == datetime(2025, 6, 9, 8, tzinfo=UTC)
    assert claim_period(lake, s, WEEK, "b", T0, LEASE) is None
    assert claimed_periods(lake, 1) == {WEEK}
    # A monthly period starting the same day is another period.
    month = Period(date(2025, 6, 1), date(2025, 6, 30))
    monthly = save_schedule(lake, replace(s, cadence="monthly", day=1))
    assert claim_period(lake, monthly, month, "a", T0, LEASE) is not None


def _claim_all(barrier: Any, lake: str, owner: str) -> list[int]:
    schedule = get_schedule(Path(lake), 1)
    barrier.wait()
    won = []
    for n in range(12):
        run = claim_period(Path(lake), schedule, _week(n), owner, T0, LEASE)
        if run is not None:
            won.append(n)
    return won


@pytest.mark.slow
def test_racing_processes_claim_each_period_once(lake: Path) -> None:
    _schedule(lake)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        barrier = manager.Barrier(4)
        won = pool.starmap(_claim_all, [(barrier, str(lake), f"p{i}") for i in range(4)])
    assert sorted(n for w in won for n in w) == list(range(12))
    assert len(list_runs(lake)) == 12


def test_only_the_claimant_moves_a_run_on(lake: Path) -> None:
    s = _schedule(lake)
    run = claim_period(lake, s, WEEK, "a", T0, LEASE)
    assert run is not None
    assert not record_files(lake, run.id, "b", ["x.csv"], "subject", "body")
    assert record_files(lake, run.id, "a", ["x.csv", "x.pdf"], "subject", "body")
    assert not start_send(lake, run.id, "b", T0, LEASE)
    assert start_send(lake, run.id, "a", T0, LEASE)
    assert not start_send(lake, run.id, "a", T0, LEASE)  # already sending
    assert finish_run(lake, run.id, "b", T0, sent=True) is None
    done = finish_run(lake, run.id, "a", T0 + timedelta(seconds=3), sent=True)
    assert done is not None
    assert (done.status, done.attempts, done.sent_at, done.files) == (
        "sent",
        1,
        T0 + timedelta(seconds=3),
        ("x.csv", "x.pdf"),
    )
    assert (done.subject, done.body, done.last_error, done.next_attempt_at) == (
        "subject",
        "body",
        None,
        None,
    )
    # A sent run is done: nothing claims it again.
    assert claim_retry(lake, run.id, "a", T0 + timedelta(days=1), LEASE) is None


def test_failed_runs_wait_for_their_retry(lake: Path) -> None:
    s = _schedule(lake)
    run = claim_period(lake, s, WEEK, "a", T0, LEASE)
    assert run is not None
    retry_at = T0 + timedelta(minutes=1)
    failed = finish_run(lake, run.id, "a", T0, "451 try later", retry_at)
    assert failed is not None
    assert (failed.status, failed.attempts, failed.last_error, failed.next_attempt_at) == (
        "failed",
        1,
        "451 try later",
        retry_at,
    )
    assert earliest_retry(lake) == retry_at
    assert retry_due(lake, retry_at - timedelta(microseconds=1)) == []
    assert claim_retry(lake, run.id, "b", retry_at - timedelta(seconds=1), LEASE) is None
    assert [r.id for r in retry_due(lake, retry_at)] == [run.id]
    again = claim_retry(lake, run.id, "b", retry_at, LEASE)
    assert again is not None and again.status == "rendering"
    assert claim_retry(lake, run.id, "c", retry_at, LEASE) is None
    gave_up = finish_run(lake, run.id, "b", retry_at, "451 still", None)
    assert gave_up is not None
    assert (gave_up.attempts, gave_up.next_attempt_at) == (2, None)
    assert retry_due(lake, T0 + timedelta(days=365)) == []
    assert earliest_retry(lake) is None
    # The app's retry button queues it for the next pass.
    queued = retry_now(lake, run.id, T0 + timedelta(days=2))
    assert queued.next_attempt_at == T0 + timedelta(days=2)
    assert [r.id for r in retry_due(lake, T0 + timedelta(days=2))] == [run.id]


def test_retries_skip_paused_and_deleted_schedules(lake: Path) -> None:
    a, b = _schedule(lake), _schedule(lake, kind="cost")
    for s in (a, b):
        assert s.id is not None
        run = claim_period(lake, s, WEEK, "x", T0, LEASE)
        assert run is not None
        finish_run(lake, run.id, "x", T0, "boom", T0)
    assert [r.schedule_id for r in retry_due(lake, T0)] == [1, 2]
    set_paused(lake, 1, True)
    delete_schedule(lake, 2)
    assert retry_due(lake, T0) == []
    assert [r.schedule_id for r in list_runs(lake)] == [2, 1]  # the history keeps both


def test_abandoned_claims_expire(lake: Path) -> None:
    s = _schedule(lake)
    rendering = claim_period(lake, s, _week(0), "gone", T0, LEASE)
    sending = claim_period(lake, s, _week(1), "gone", T0, LEASE)
    fresh = claim_period(lake, s, _week(2), "alive", T0 + LEASE, LEASE)
    assert rendering and sending and fresh
    assert start_send(lake, sending.id, "gone", T0, LEASE)
    assert expire_leases(lake, T0 + LEASE, max_attempts=8) == 0  # a lease ends after its time
    later = T0 + LEASE + timedelta(seconds=1)
    assert expire_leases(lake, later, max_attempts=8) == 2
    r, s_, f = (get_run(lake, run.id) for run in (rendering, sending, fresh))
    assert (r.status, r.attempts, r.last_error, r.next_attempt_at) == (
        "failed",
        1,
        INTERRUPTED_RENDER,
        later,
    )
    # It may have been delivered: no automatic retry.
    assert (s_.status, s_.attempts, s_.last_error, s_.next_attempt_at) == (
        "failed",
        1,
        INTERRUPTED_SEND,
        None,
    )
    assert f.status == "rendering"
    # The expired claimant cannot finish what it no longer holds.
    assert finish_run(lake, sending.id, "gone", later, sent=True) is None


def test_a_crashing_render_gives_up_after_max_attempts(lake: Path) -> None:
    s = _schedule(lake)
    run = claim_period(lake, s, WEEK, "a", T0, LEASE)
    assert run is not None
    at = T0
    for attempt in (1, 2):
        at += LEASE + timedelta(seconds=1)
        expire_leases(lake, at, max_attempts=2)
        assert get_run(lake, run.id).attempts == attempt
        claim_retry(lake, run.id, "a", at, LEASE)
    assert get_run(lake, run.id).next_attempt_at is None


def test_list_runs_newest_first_with_a_limit(lake: Path) -> None:
    s = _schedule(lake)
    for n in (1, 0, 2):
        claim_period(lake, s, _week(n), "a", T0, LEASE)
    assert [r.period for r in list_runs(lake)] == [_week(2), _week(1), _week(0)]
    assert [r.id for r in list_runs(lake, limit=2)] == [3, 1]
    assert list_runs(lake, schedule_id=99) == []


def test_run_files_live_in_the_report_history(lake: Path) -> None:
    s = _schedule(lake)
    run = claim_period(lake, s, WEEK, "a", T0, LEASE)
    assert run is not None
    record_files(lake, run.id, "a", ["r.pdf"], "s", "b")
    run = get_run(lake, run.id)
    assert run_file(lake, run, "r.pdf") == lake / "_reports" / "2025" / "run-1" / "r.pdf"
    for name in ("r.csv", "../r.pdf"):
        with pytest.raises(ScheduleError, match="has no file"):
            run_file(lake, run, name)
    with pytest.raises(ScheduleError, match="only a failed run can be retried"):
        retry_now(lake, run.id, T0)
    with pytest.raises(ScheduleError, match="no report run has id 9"):
        get_run(lake, 9)
