"""Runs of report schedules: claiming a (schedule, period) once, its files, its sends and retries.

A run moves rendering -> sending -> sent, or to failed (retried at `next_attempt_at`, or never
when that is empty). Claiming inserts the run's row, unique per (schedule, period), in one
transaction, so two schedulers never both run a period; every later step checks the claimant
(`owner`), so a scheduler whose lease was taken over cannot send. A run found in `sending` past
its lease may have been delivered: it becomes failed without an automatic retry. The table lives
in the store of lake/schedules.py. Nothing here imports `queries` or Streamlit.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from lake.layout import report_run_dir
from lake.schedules import Period, Schedule, ScheduleError, due_at, iso, store

RUN_STATUSES = ("rendering", "sending", "sent", "failed")
#: The error of a run whose scheduler stopped while sending (it is not retried automatically).
INTERRUPTED_SEND = (
    "the scheduler stopped during the send; not retried automatically because the e-mail may "
    "have been delivered (retry it by hand)"
)
INTERRUPTED_RENDER = "the scheduler stopped while building the files"


@dataclass(frozen=True)
class Run:
    """One (schedule, period): what was sent to whom, its files, attempts and last error."""

    id: int
    schedule_id: int
    kind: str
    project: str | None
    period: Period
    due_at: datetime
    recipients: tuple[str, ...]
    formats: tuple[str, ...]
    status: str
    attempts: int
    last_error: str | None
    files: tuple[str, ...]
    subject: str | None
    body: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None


_COLUMNS = """r.id, r.schedule_id, r.kind, r.project, r.period_start, r.period_end, r.due_at,
    r.recipients, r.formats, r.status, r.attempts, r.last_error, r.files, r.subject, r.body,
    r.created_at,
    r.sent_at, r.next_attempt_at"""
_SELECT = f"select {_COLUMNS} from report_runs as r {{where}} order by r.due_at desc, r.id desc"
_INSERT = """insert into report_runs (schedule_id, kind, project, period_start, period_end, due_at,
    recipients, formats, status, owner, lease_until, created_at)
values (?, ?, ?, ?, ?, ?, ?, ?, 'rendering', ?, ?, ?)
on conflict (schedule_id, period_start, period_end) do nothing"""
_RETRY_DUE = f"""select {_COLUMNS}
from report_runs as r
join schedules as s on s.id = r.schedule_id
where r.status = 'failed'
    and r.next_attempt_at <= ?
    and s.paused = 0
order by r.next_attempt_at, r.id"""
_CLAIM_RETRY = """update report_runs
set status = 'rendering', owner = ?, lease_until = ?
where id = ? and status = 'failed' and next_attempt_at <= ?"""
_RECORD_FILES = """update report_runs
set files = ?, subject = ?, body = ?
where id = ? and owner = ? and status = 'rendering'"""
_START_SEND = """update report_runs
set status = 'sending', lease_until = ?
where id = ? and owner = ? and status = 'rendering'"""
_FINISH = """update report_runs
set status = ?, attempts = attempts + 1, last_error = ?, sent_at = ?, next_attempt_at = ?,
    owner = null, lease_until = null
where id = ? and owner = ? and status in ('rendering', 'sending')"""
_EXPIRE = """update report_runs
set status = 'failed', attempts = attempts + 1, last_error = ?,
    next_attempt_at = case when attempts + 1 < ? then ? end, owner = null, lease_until = null
where status = ? and lease_until < ?"""


def _run(row: tuple[Any, ...]) -> Run:
    (id_, schedule_id, kind, project, start, end, due, recipients, formats, status, attempts,
     error, files, subject, body, created, sent, next_at) = row  # fmt: skip
    return Run(
        id_,
        schedule_id,
        kind,
        project,
        Period(date.fromisoformat(start), date.fromisoformat(end)),
        datetime.fromisoformat(due),
        tuple(json.loads(recipients)),
        tuple(json.loads(formats)),
        status,
        attempts,
        error,
        tuple(json.loads(files)),
        subject,
        body,
        datetime.fromisoformat(created),
        datetime.fromisoformat(sent) if sent else None,
        datetime.fromisoformat(next_at) if next_at else None,
    )


def _get(con: sqlite3.Connection, id: int) -> Run:
    rows = con.execute(_SELECT.format(where="where r.id = ?"), [id]).fetchall()
    if not rows:
        raise ScheduleError("run", f"no report run has id {id}")
    return _run(rows[0])


def list_runs(lake: Path, limit: int = 100, schedule_id: int | None = None) -> list[Run]:
    """One per run, newest period first (then newest run), at most `limit`."""
    where, params = (
        ("where r.schedule_id = ?", [schedule_id]) if schedule_id is not None else ("", [])
    )
    with store(lake) as con:
        rows = con.execute(_SELECT.format(where=where) + " limit ?", [*params, limit]).fetchall()
    return [_run(r) for r in rows]


def get_run(lake: Path, id: int) -> Run:
    """Run `id`; ScheduleError if there is none."""
    with store(lake) as con:
        return _get(con, id)


def claimed_periods(lake: Path, schedule_id: int) -> set[Period]:
    """One per period of the schedule that has a run, whatever its status."""
    with store(lake) as con:
        rows = con.execute(
            "select period_start, period_end from report_runs where schedule_id = ?",
            [schedule_id],
        ).fetchall()
    return {Period(date.fromisoformat(a), date.fromisoformat(b)) for a, b in rows}


def claim_period(
    lake: Path, schedule: Schedule, period: Period, owner: str, now: datetime, lease: timedelta
) -> Run | None:
    """The new run of (schedule, period), claimed by `owner`; None when it already has a run."""
    assert schedule.id is not None
    values = [
        schedule.id,
        schedule.kind,
        schedule.project,
        period.start.isoformat(),
        period.end.isoformat(),
        iso(due_at(schedule, period)),
        json.dumps(list(schedule.recipients)),
        json.dumps(list(schedule.formats)),
        owner,
        iso(now + lease),
        iso(now),
    ]
    with store(lake, write=True) as con:
        inserted = con.execute(_INSERT, values)
        if not inserted.rowcount:
            return None
        assert inserted.lastrowid is not None
        return _get(con, inserted.lastrowid)


def retry_due(lake: Path, now: datetime) -> list[Run]:
    """One per failed run whose next attempt is due, of a schedule that exists and runs; the
    longest waiting first."""
    with store(lake) as con:
        return [_run(r) for r in con.execute(_RETRY_DUE, [iso(now)]).fetchall()]


def claim_retry(lake: Path, run_id: int, owner: str, now: datetime, lease: timedelta) -> Run | None:
    """Failed run `run_id` claimed by `owner` for another attempt; None if another took it."""
    with store(lake, write=True) as con:
        if not con.execute(_CLAIM_RETRY, [owner, iso(now + lease), run_id, iso(now)]).rowcount:
            return None
        return _get(con, run_id)


def record_files(
    lake: Path, run_id: int, owner: str, files: list[str], subject: str, body: str
) -> bool:
    """Record the run's file names and its e-mail; False when `owner` no longer holds the run."""
    with store(lake, write=True) as con:
        changed = con.execute(_RECORD_FILES, [json.dumps(files), subject, body, run_id, owner])
        return bool(changed.rowcount)


def start_send(lake: Path, run_id: int, owner: str, now: datetime, lease: timedelta) -> bool:
    """Mark the run as sending; False (send nothing) when `owner` no longer holds it."""
    with store(lake, write=True) as con:
        return bool(con.execute(_START_SEND, [iso(now + lease), run_id, owner]).rowcount)


def finish_run(
    lake: Path,
    run_id: int,
    owner: str,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
    sent: bool = False,
) -> Run | None:
    """The run after an attempt: sent (error may note refused recipients), or failed with its
    error and next attempt (None: no more). None when `owner` no longer held it."""
    status = "sent" if sent else "failed"
    values = [
        status,
        error,
        iso(now) if sent else None,
        None if sent or retry_at is None else iso(retry_at),
        run_id,
        owner,
    ]
    with store(lake, write=True) as con:
        if not con.execute(_FINISH, values).rowcount:
            return None
        return _get(con, run_id)


def expire_leases(lake: Path, now: datetime, max_attempts: int) -> int:
    """Runs left by a scheduler that stopped: rendering ones fail and are retried now (while
    under `max_attempts`), sending ones fail without a retry (see INTERRUPTED_SEND). Returns how
    many changed."""
    at = iso(now)
    with store(lake, write=True) as con:
        rendering = [INTERRUPTED_RENDER, max_attempts, at, "rendering", at]
        count = con.execute(_EXPIRE, rendering).rowcount
        count += con.execute(_EXPIRE, [INTERRUPTED_SEND, 0, None, "sending", at]).rowcount
    return count


def earliest_retry(lake: Path) -> datetime | None:
    """When the next automatic retry of a failed run is due, if any is planned."""
    with store(lake) as con:
        found = con.execute(
            "select min(next_attempt_at) from report_runs where status = 'failed'"
        ).fetchone()[0]
    return datetime.fromisoformat(found) if found else None


def retry_now(lake: Path, run_id: int, now: datetime) -> Run:
    """Failed run `run_id` queued for an attempt at the scheduler's next pass (the app's retry)."""
    with store(lake, write=True) as con:
        run = _get(con, run_id)
        if run.status != "failed":
            raise ScheduleError(
                "run", f"only a failed run can be retried; run {run_id} is {run.status}"
            )
        con.execute("update report_runs set next_attempt_at = ? where id = ?", [iso(now), run_id])
        return _get(con, run_id)


def run_dir(lake: Path, run: Run) -> Path:
    """The folder of the run's files in the lake's report history."""
    return report_run_dir(lake, run.period.start, run.id)


def run_file(lake: Path, run: Run, name: str) -> Path:
    """The path of file `name` of `run`; ScheduleError when the run has no such file."""
    if name not in run.files:
        raise ScheduleError("file", f"run {run.id} has no file {name!r}")
    return run_dir(lake, run) / name
