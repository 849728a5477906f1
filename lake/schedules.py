"""Report schedules: their rules, their periods and due times, and their SQLite store.

The store is the lake's `_meta/perflake.sqlite` (shared with lake/thresholds.py, own tables):
WAL mode, a busy timeout and one `BEGIN IMMEDIATE` transaction per change. It also holds the
`report_runs` table that lake/report_runs.py owns. The period and due-time arithmetic is pure.
Nothing here imports `queries` or Streamlit.
"""

from __future__ import annotations

import calendar
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lake import LakeError
from lake.layout import metadata_db
from lake.store import BUSY_TIMEOUT_S, use_wal
from lake.store import connect as store_connect

#: The report types of `queries.reports.REPORT_TYPES` (lake cannot import queries; a test keeps
#: the two equal).
REPORT_KINDS = (
    "performance",
    "delivery",
    "throughput",
    "utilization",
    "quality",
    "cost",
    "reviewers",
)
CADENCES = ("weekly", "monthly")
#: Export formats, as `app.exports.FORMATS` (a test keeps the two equal).
FORMATS = ("csv", "json", "pdf")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: Seconds a writer waits for another process's transaction before giving up.

# Pragmatic address rule: local part of the usual atom characters and dots, a dotted domain.
_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_SPLIT = re.compile(r"[\s,;]+")


class ScheduleError(LakeError, ValueError):
    """A schedule breaks a rule; `field` names the field, the message the rule and the value."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


class ScheduleStoreError(LakeError):
    """The schedule store could not be read or written."""


@dataclass(frozen=True)
class Schedule:
    """A report sent every week or month: its type, filter, timing, recipients and formats.

    `day` is a weekday 0-6 (Monday=0) for weekly schedules, a day of month 1-28 or "last" for
    monthly ones. `validate` also takes recipients and formats as one comma- or space-separated
    string, a day as a weekday name or a digit string, and a `datetime.time`. Periods due before `active_since` are never run: it is set when the schedule
    is created, resumed, or its cadence, day, time or zone change (the store sets it).
    """

    id: int | None = None
    kind: str = "performance"
    project: str | None = None
    cadence: str = "weekly"
    day: int | str = 0
    time: str = "08:00"
    zone: str = "UTC"
    recipients: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("pdf",)
    paused: bool = False
    active_since: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Period(NamedTuple):
    """The days a run covers, both included."""

    start: date
    end: date


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return [w for w in _SPLIT.split(value) if w]
    return [str(w).strip() for w in value or () if str(w).strip()]


def _day(cadence: str, value: Any) -> int | str:
    text = str(value).strip().lower() if not isinstance(value, bool) else ""
    if cadence == "weekly":
        names = {name: i for i, name in enumerate(WEEKDAYS)} | {
            name[:3]: i for i, name in enumerate(WEEKDAYS)
        }
        if text in names:
            return names[text]
        if text.isdigit() and int(text) < 7:
            return int(text)
        raise ScheduleError(
            "day", f"must be a weekday (monday..sunday, or 0-6 with Monday=0), got {value!r}"
        )
    if text == "last":
        return "last"
    if text.isdigit() and 1 <= int(text) <= 28:
        return int(text)
    raise ScheduleError(
        "day",
        f"must be a day of the month 1-28 or 'last' (29-31 do not exist in every month), "
        f"got {value!r}",
    )


def _time(value: Any) -> str:
    if isinstance(value, time):
        return f"{value.hour:02d}:{value.minute:02d}"
    match = _TIME.fullmatch(str(value).strip())
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return f"{int(match[1]):02d}:{match[2]}"
    raise ScheduleError("time", f"must be a time of day HH:MM (00:00-23:59), got {value!r}")


def _zone(value: Any) -> str:
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            "zone", f"must be an IANA time zone such as Europe/Paris or UTC, got {value!r}"
        ) from None
    return name


def validate(schedule: Schedule) -> Schedule:
    """The schedule, normalised (stripped, deduplicated, canonical day and time); ScheduleError
    names the first broken rule."""
    s = schedule
    if s.kind not in REPORT_KINDS:
        raise ScheduleError("kind", f"must be one of {', '.join(REPORT_KINDS)}, got {s.kind!r}")
    project = s.project.strip() if isinstance(s.project, str) else s.project
    if project is not None and not isinstance(project, str):
        raise ScheduleError("project", f"must be a project id or empty, got {s.project!r}")
    if s.cadence not in CADENCES:
        raise ScheduleError("cadence", f"must be weekly or monthly, got {s.cadence!r}")
    recipients: dict[str, str] = {}
    for address in _words(s.recipients):
        if len(address) > 254 or not _ADDRESS.fullmatch(address):
            raise ScheduleError("recipients", f"not an e-mail address: {address!r}")
        recipients.setdefault(address.lower(), address)
    if not recipients:
        raise ScheduleError("recipients", "at least one e-mail address is required")
    formats = [f.lower() for f in _words(s.formats)]
    if not formats:
        raise ScheduleError("formats", f"choose at least one of {', '.join(FORMATS)}")
    for f in formats:
        if f not in FORMATS:
            raise ScheduleError("formats", f"must be among {', '.join(FORMATS)}, got {f!r}")
    if not isinstance(s.paused, bool):
        raise ScheduleError("paused", f"must be true or false, got {s.paused!r}")
    return replace(
        s,
        project=project or None,
        day=_day(s.cadence, s.day),
        time=_time(s.time),
        zone=_zone(s.zone),
        recipients=tuple(recipients.values()),
        formats=tuple(f for f in FORMATS if f in formats),
    )


def describe(schedule: Schedule) -> str:
    """The timing in words: 'weekly on Monday at 08:00 Europe/Paris'."""
    s = schedule
    if s.cadence == "weekly":
        when = f"on {WEEKDAYS[int(s.day)].title()}"
    else:
        when = "on the last day" if s.day == "last" else f"on day {s.day}"
    return f"{s.cadence} {when} at {s.time} {s.zone}"


# --- periods and due times ---------------------------------------------------------------------


def local_to_utc(day: date, at: str, zone: str) -> datetime:
    """The UTC instant of wall-clock time `at` (HH:MM) on `day` in `zone`.

    A time that does not exist (skipped by a spring-forward change) moves forward by the gap
    (02:30 on a 02:00->03:00 night is 03:30); an ambiguous one (repeated by a fall-back change)
    is its first occurrence. Both follow from fold=0 in PEP 495.
    """
    hour, minute = (int(x) for x in at.split(":"))
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone), fold=0)
    return local.astimezone(UTC)


def period_of(cadence: str, day: date) -> Period:
    """The period holding `day`: its week Monday..Sunday, or its calendar month."""
    if cadence == "weekly":
        start = day - timedelta(days=day.weekday())
        return Period(start, start + timedelta(days=6))
    last = calendar.monthrange(day.year, day.month)[1]
    return Period(day.replace(day=1), day.replace(day=last))


def due_at(schedule: Schedule, period: Period) -> datetime:
    """When the run of `period` is due (UTC): the schedule's day and time, in its zone, in the
    week or month after the period."""
    after = period.end + timedelta(days=1)
    if schedule.cadence == "weekly":
        day = after + timedelta(days=int(schedule.day))
    elif schedule.day == "last":
        day = period_of("monthly", after).end
    else:
        day = after.replace(day=int(schedule.day))
    return local_to_utc(day, schedule.time, schedule.zone)


def _periods_from(schedule: Schedule, since: datetime) -> Iterator[tuple[Period, datetime]]:
    """(period, due time) for every period due at or after `since`, oldest first, forever."""
    local = since.astimezone(ZoneInfo(schedule.zone)).date()
    # A period is due during the next one, so the one before `since`'s may still be due after it.
    period = period_of(schedule.cadence, period_of(schedule.cadence, local).start - timedelta(1))
    while True:
        due = due_at(schedule, period)
        if due >= since:
            yield period, due
        period = period_of(schedule.cadence, period.end + timedelta(days=1))


def due_periods(schedule: Schedule, now: datetime) -> list[Period]:
    """One per period due in [active_since, now], oldest first: what a scheduler that was down
    since the schedule became active must catch up (paused schedules have none)."""
    if schedule.paused or schedule.active_since is None:
        return []
    pending = _periods_from(schedule, schedule.active_since)
    return [period for period, _ in takewhile(lambda found: found[1] <= now, pending)]


def next_due(schedule: Schedule, now: datetime) -> datetime | None:
    """The first due time after `now` (UTC), or None when paused."""
    if schedule.paused:
        return None
    since = max(now, schedule.active_since or now)
    return next(due for _, due in _periods_from(schedule, since) if due > now)


# --- the store ---------------------------------------------------------------------------------

_SCHEMA = (
    """create table if not exists schedules (
    id integer primary key,
    kind text not null,
    project text,
    cadence text not null,
    day text not null,
    time text not null,
    zone text not null,
    recipients text not null,
    formats text not null,
    paused integer not null default 0,
    active_since text not null,
    created_at text not null,
    updated_at text not null
)""",
    # One row per (schedule, period) ever claimed: the key that makes a second send impossible.
    # schedule_id stays when its schedule is deleted, so the history keeps its runs.
    """create table if not exists report_runs (
    id integer primary key,
    schedule_id integer not null,
    kind text not null,
    project text,
    period_start text not null,
    period_end text not null,
    due_at text not null,
    recipients text not null,
    formats text not null,
    status text not null,
    attempts integer not null default 0,
    last_error text,
    files text not null default '[]',
    subject text,
    body text,
    owner text,
    lease_until text,
    next_attempt_at text,
    created_at text not null,
    sent_at text,
    unique (schedule_id, period_start, period_end)
)""",
    "create index if not exists report_runs_retry on report_runs (status, next_attempt_at)",
)
_SCHEDULE_COLUMNS = (
    "id, kind, project, cadence, day, time, zone, recipients, formats, paused, active_since, "
    "created_at, updated_at"
)
_SELECT_SCHEDULES = f"select {_SCHEDULE_COLUMNS} from schedules {{where}} order by id"
_INSERT_SCHEDULE = """insert into schedules (kind, project, cadence, day, time, zone, recipients,
    formats, paused, active_since, created_at, updated_at)
values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_UPDATE_SCHEDULE = """update schedules
set kind = ?, project = ?, cadence = ?, day = ?, time = ?, zone = ?, recipients = ?, formats = ?,
    paused = ?, active_since = ?, updated_at = ?
where id = ?"""
#: Fields whose change moves the due times: periods due before the change are not caught up.
_TIMING = ("cadence", "day", "time", "zone")


def iso(at: datetime) -> str:
    """A UTC timestamp as the store writes it (fixed width, so text order is time order)."""
    if at.tzinfo is None:
        raise ValueError(f"a time zone is required, got naive {at!r}")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _utc(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _open(lake: Path) -> sqlite3.Connection:
    """A connection to the lake's store, with the schedule tables created once."""
    con = store_connect(lake, ScheduleStoreError, "the schedule store")
    try:
        found = con.execute(
            "select count(*) from sqlite_master where name in ('schedules', 'report_runs_retry')"
        ).fetchone()[0]
        if found != 2:
            use_wal(con, BUSY_TIMEOUT_S)
            with con:
                con.execute("begin immediate")
                for statement in _SCHEMA:
                    con.execute(statement)
    except sqlite3.Error as e:
        con.close()
        raise ScheduleStoreError(
            f"cannot prepare the schedule store {metadata_db(lake)}: {e}"
        ) from e
    return con


@contextmanager
def store(lake: Path, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection; with `write`, inside one BEGIN IMMEDIATE transaction committed at the end."""
    with closing(_open(lake)) as con:
        try:
            if write:
                with con:
                    con.execute("begin immediate")
                    yield con
            else:
                yield con
        except sqlite3.Error as e:
            raise ScheduleStoreError(f"schedule store of {lake}: {e}") from e


def _schedule(row: tuple[Any, ...]) -> Schedule:
    id_, kind, project, cadence, day, at, zone, recipients, formats, paused, *times = row
    return Schedule(
        id_,
        kind,
        project,
        cadence,
        day if day == "last" else int(day),
        at,
        zone,
        tuple(json.loads(recipients)),
        tuple(json.loads(formats)),
        bool(paused),
        *(_utc(t) for t in times),
    )


def _get(con: sqlite3.Connection, id: int) -> Schedule:
    rows = con.execute(_SELECT_SCHEDULES.format(where="where id = ?"), [id]).fetchall()
    if not rows:
        raise ScheduleError("id", f"no schedule has id {id}")
    return _schedule(rows[0])


def list_schedules(lake: Path) -> list[Schedule]:
    """One per schedule, by id (creation order)."""
    with store(lake) as con:
        return [_schedule(r) for r in con.execute(_SELECT_SCHEDULES.format(where="")).fetchall()]


def get_schedule(lake: Path, id: int) -> Schedule:
    """Schedule `id`; ScheduleError if there is none."""
    with store(lake) as con:
        return _get(con, id)


def save_schedule(lake: Path, schedule: Schedule, now: datetime | None = None) -> Schedule:
    """The schedule as stored: inserted when its id is None, else updated by id."""
    s = validate(schedule)
    at = iso(now or datetime.now(UTC))
    values = [
        s.kind,
        s.project,
        s.cadence,
        str(s.day),
        s.time,
        s.zone,
        json.dumps(list(s.recipients)),
        json.dumps(list(s.formats)),
        int(s.paused),
    ]
    with store(lake, write=True) as con:
        if s.id is None:
            id_ = con.execute(_INSERT_SCHEDULE, [*values, at, at, at]).lastrowid
            assert id_ is not None
        else:
            old = _get(con, s.id)
            moved = any(getattr(old, f) != getattr(s, f) for f in _TIMING)
            resumed = old.paused and not s.paused
            since = at if moved or resumed else iso(old.active_since or datetime.now(UTC))
            con.execute(_UPDATE_SCHEDULE, [*values, since, at, s.id])
            id_ = s.id
        return _get(con, id_)


def set_paused(lake: Path, id: int, paused: bool, now: datetime | None = None) -> Schedule:
    """Schedule `id` paused or resumed, as stored; periods due while paused are not caught up."""
    if not isinstance(paused, bool):
        raise ScheduleError("paused", f"must be true or false, got {paused!r}")
    with store(lake) as con:
        old = _get(con, id)
    return save_schedule(lake, replace(old, paused=paused), now)


def delete_schedule(lake: Path, id: int) -> None:
    """Remove schedule `id` (its runs and files stay in the history); ScheduleError if none."""
    with store(lake, write=True) as con:
        if not con.execute("delete from schedules where id = ?", [id]).rowcount:
            raise ScheduleError("id", f"no schedule has id {id}")
