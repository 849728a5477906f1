"""Schedules: every validation rule, periods and due times worked out by hand (week and month
boundaries, zones, DST gaps and overlaps, catch-up), and the store shared with thresholds."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from lake.layout import ensure_lake, metadata_db
from lake.schedules import (
    Period,
    Schedule,
    ScheduleError,
    delete_schedule,
    describe,
    due_at,
    due_periods,
    get_schedule,
    list_schedules,
    local_to_utc,
    next_due,
    period_of,
    save_schedule,
    set_paused,
    validate,
)
from lake.thresholds import list_thresholds

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _s(**kw: Any) -> Schedule:
    return Schedule(**({"recipients": ("ops@example.com",)} | kw))


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        (
            _s(kind="speed"),
            "kind",
            "kind: must be one of performance, delivery, throughput, utilization, quality, cost, "
            "reviewers, got 'speed'",
        ),
        (_s(recipients=()), "recipients", "recipients: at least one e-mail address is required"),
        (
            _s(recipients=" , ;"),
            "recipients",
            "recipients: at least one e-mail address is required",
        ),
        (_s(recipients="ops"), "recipients", "recipients: not an e-mail address: 'ops'"),
        (
            _s(recipients="ops@example.com, lead@@example.com"),
            "recipients",
            "recipients: not an e-mail address: 'lead@@example.com'",
        ),
        (
            _s(recipients=["ops@example"]),
            "recipients",
            "recipients: not an e-mail address: 'ops@example'",
        ),
        (
            _s(recipients=["a..b@example.com"]),
            "recipients",
            "recipients: not an e-mail address: 'a..b@example.com'",
        ),
        (
            _s(recipients=["ops@-example.com"]),
            "recipients",
            "recipients: not an e-mail address: 'ops@-example.com'",
        ),
        (_s(cadence="daily"), "cadence", "cadence: must be weekly or monthly, got 'daily'"),
        (
            _s(day=7),
            "day",
            "day: must be a weekday (monday..sunday, or 0-6 with Monday=0), got 7",
        ),
        (
            _s(day="someday"),
            "day",
            "day: must be a weekday (monday..sunday, or 0-6 with Monday=0), got 'someday'",
        ),
        (
            _s(day=-1),
            "day",
            "day: must be a weekday (monday..sunday, or 0-6 with Monday=0), got -1",
        ),
        (
            _s(cadence="monthly", day=0),
            "day",
            "day: must be a day of the month 1-28 or 'last' (29-31 do not exist in every month), got 0",
        ),
        (
            _s(cadence="monthly", day=31),
            "day",
            "day: must be a day of the month 1-28 or 'last' (29-31 do not exist in every month), got 31",
        ),
        (
            _s(cadence="monthly", day="monday"),
            "day",
            "day: must be a day of the month 1-28 or 'last' (29-31 do not exist in every month), got 'monday'",
        ),
        (_s(time="24:00"), "time", "time: must be a time of day HH:MM (00:00-23:59), got '24:00'"),
        (_s(time="8am"), "time", "time: must be a time of day HH:MM (00:00-23:59), got '8am'"),
        (_s(time="12:60"), "time", "time: must be a time of day HH:MM (00:00-23:59), got '12:60'"),
        (
            _s(zone="Mars/Olympus"),
            "zone",
            "zone: must be an IANA time zone such as Europe/Paris or UTC, got 'Mars/Olympus'",
        ),
        (
            _s(zone="../etc/passwd"),
            "zone",
            "zone: must be an IANA time zone such as Europe/Paris or UTC, got '../etc/passwd'",
        ),
        (_s(formats=()), "formats", "formats: choose at least one of csv, json, pdf"),
        (
            _s(formats=["pdf", "xlsx"]),
            "formats",
            "formats: must be among csv, json, pdf, got 'xlsx'",
        ),
        (_s(paused="yes"), "paused", "paused: must be true or false, got 'yes'"),
    ],
)
def test_invalid_schedules_are_refused_with_the_reason(
    schedule: Schedule, field: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as e:
        validate(schedule)
    assert (e.value.field, str(e.value)) == (field, message)
    assert isinstance(e.value, ValueError)


def test_validate_normalises() -> None:
    s = validate(
        Schedule(
            kind="delivery",
            project="  proj-aurora ",
            day="Fri",
            time=" 7:05",
            zone="Europe/Paris",
            # A form's text box and a multiselect's list are taken as they come.
            recipients="ops@example.com; Lead@Example.com,  ops@EXAMPLE.com\nqa+perf@studio.co.uk",  # type: ignore[arg-type]
            formats=["PDF", "csv", "pdf"],  # type: ignore[arg-type]
        )
    )
    assert (s.project, s.day, s.time, s.formats) == ("proj-aurora", 4, "07:05", ("csv", "pdf"))
    assert s.recipients == ("ops@example.com", "Lead@Example.com", "qa+perf@studio.co.uk")
    assert validate(_s(project="  ")).project is None
    assert validate(_s(cadence="monthly", day="LAST")).day == "last"
    assert validate(_s(cadence="monthly", day="28")).day == 28
    assert validate(_s(time=time(18, 45))).time == "18:45"


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (_s(day=0, zone="Europe/Paris"), "weekly on Monday at 08:00 Europe/Paris"),
        (_s(cadence="monthly", day=1, time="09:30"), "monthly on day 1 at 09:30 UTC"),
        (_s(cadence="monthly", day="last"), "monthly on the last day at 08:00 UTC"),
    ],
)
def test_describe(schedule: Schedule, words: str) -> None:
    assert describe(validate(schedule)) == words


# --- periods and due times ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "day", "period"),
    [
        ("weekly", date(2025, 6, 8), Period(date(2025, 6, 2), date(2025, 6, 8))),  # a Sunday
        ("weekly", date(2025, 6, 9), Period(date(2025, 6, 9), date(2025, 6, 15))),  # a Monday
        ("weekly", date(2025, 12, 31), Period(date(2025, 12, 29), date(2026, 1, 4))),
        ("monthly", date(2024, 2, 10), Period(date(2024, 2, 1), date(2024, 2, 29))),
        ("monthly", date(2025, 12, 31), Period(date(2025, 12, 1), date(2025, 12, 31))),
    ],
)
def test_period_of(cadence: str, day: date, period: Period) -> None:
    assert period_of(cadence, day) == period


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


JUNE_WEEK = Period(date(2025, 6, 2), date(2025, 6, 8))


@pytest.mark.parametrize(
    ("schedule", "period", "due"),
    [
        # Monday 08:00 CEST (+2) after the week.
        (_s(day=0, zone="Europe/Paris"), JUNE_WEEK, _utc(2025, 6, 9, 6, 0)),
        # Sunday 23:30 PDT (-7) is Monday 06:30 UTC: a week later in local days than in UTC.
        (_s(day=6, time="23:30", zone="America/Los_Angeles"), JUNE_WEEK, _utc(2025, 6, 16, 6, 30)),
        # Monday 07:00 NZST (+12) is Sunday 19:00 UTC, the last day of the period in UTC.
        (_s(day=0, time="07:00", zone="Pacific/Auckland"), JUNE_WEEK, _utc(2025, 6, 8, 19, 0)),
        # The 1st 09:00 EST (-5) after January.
        (
            _s(cadence="monthly", day=1, time="09:00", zone="America/New_York"),
            Period(date(2025, 1, 1), date(2025, 1, 31)),
            _utc(2025, 2, 1, 14, 0),
        ),
        # The last day of February, in a common and in a leap year.
        (
            _s(cadence="monthly", day="last", time="18:00"),
            Period(date(2025, 1, 1), date(2025, 1, 31)),
            _utc(2025, 2, 28, 18, 0),
        ),
        (
            _s(cadence="monthly", day="last", time="18:00"),
            Period(date(2024, 1, 1), date(2024, 1, 31)),
            _utc(2024, 2, 29, 18, 0),
        ),
        # December's run is in January of the next year; IST is +5:30.
        (
            _s(cadence="monthly", day=28, time="12:00", zone="Asia/Kolkata"),
            Period(date(2025, 12, 1), date(2025, 12, 31)),
            _utc(2026, 1, 28, 6, 30),
        ),
        # The same wall-clock time on either side of Paris's spring change: CET +1, CEST +2.
        (
            _s(cadence="monthly", day=1, zone="Europe/Paris"),
            Period(date(2025, 2, 1), date(2025, 2, 28)),
            _utc(2025, 3, 1, 7, 0),
        ),
        (
            _s(cadence="monthly", day=1, zone="Europe/Paris"),
            Period(date(2025, 3, 1), date(2025, 3, 31)),
            _utc(2025, 4, 1, 6, 0),
        ),
        # 02:30 does not exist on 2025-03-30 in Berlin (02:00 -> 03:00): it moves forward by the
        # gap to 03:30 CEST.
        (
            _s(day=6, time="02:30", zone="Europe/Berlin"),
            Period(date(2025, 3, 17), date(2025, 3, 23)),
            _utc(2025, 3, 30, 1, 30),
        ),
        # Same in New York on 2025-03-09: 03:30 EDT (-4).
        (
            _s(day=6, time="02:30", zone="America/New_York"),
            Period(date(2025, 2, 24), date(2025, 3, 2)),
            _utc(2025, 3, 9, 7, 30),
        ),
        # 02:30 happens twice on 2025-10-26 in Berlin (03:00 -> 02:00): the first, in CEST.
        (
            _s(day=6, time="02:30", zone="Europe/Berlin"),
            Period(date(2025, 10, 13), date(2025, 10, 19)),
            _utc(2025, 10, 26, 0, 30),
        ),
    ],
)
def test_due_at(schedule: Schedule, period: Period, due: datetime) -> None:
    assert due_at(validate(schedule), period) == due


def test_local_to_utc_gap_and_overlap() -> None:
    assert local_to_utc(date(2025, 3, 30), "02:00", "Europe/Berlin") == _utc(2025, 3, 30, 1, 0)
    assert local_to_utc(date(2025, 3, 30), "03:00", "Europe/Berlin") == _utc(2025, 3, 30, 1, 0)
    assert local_to_utc(date(2025, 10, 26), "02:59", "Europe/Berlin") == _utc(2025, 10, 26, 0, 59)
    assert local_to_utc(date(2025, 10, 26), "03:00", "Europe/Berlin") == _utc(2025, 10, 26, 2, 0)


def _active(since: datetime, **kw: Any) -> Schedule:
    return validate(_s(**kw, active_since=since))


def test_due_periods_at_a_week_boundary() -> None:
    s = _active(_utc(2025, 6, 1), day=0, time="08:00")
    before = due_periods(s, _utc(2025, 6, 9, 7, 59, 59))
    assert before == [Period(date(2025, 5, 26), date(2025, 6, 1))]
    assert due_periods(s, _utc(2025, 6, 9, 8, 0)) == [*before, JUNE_WEEK]


def test_due_periods_at_a_month_boundary_in_a_zone() -> None:
    # June 1st 00:00 in Paris is May 31st 22:00 UTC.
    s = _active(_utc(2025, 5, 15), cadence="monthly", day=1, time="00:00", zone="Europe/Paris")
    assert due_periods(s, _utc(2025, 5, 31, 21, 59, 59)) == []
    assert due_periods(s, _utc(2025, 5, 31, 22, 0)) == [Period(date(2025, 5, 1), date(2025, 5, 31))]


def test_catch_up_after_downtime_lists_each_missed_period_once() -> None:
    # Active from Thursday May 1st noon; due on Wednesdays 09:00; the scheduler comes back on
    # Thursday June 5th. April 30th's run (week Apr 21-27) was due before the schedule existed.
    s = _active(_utc(2025, 5, 1, 12), day="wednesday", time="09:00")
    assert due_periods(s, _utc(2025, 6, 5, 12)) == [
        Period(date(2025, 4, 28), date(2025, 5, 4)),
        Period(date(2025, 5, 5), date(2025, 5, 11)),
        Period(date(2025, 5, 12), date(2025, 5, 18)),
        Period(date(2025, 5, 19), date(2025, 5, 25)),
        Period(date(2025, 5, 26), date(2025, 6, 1)),
    ]


def test_due_periods_start_at_active_since_inclusive() -> None:
    due = _utc(2025, 6, 9, 8)
    assert due_periods(_active(due, day=0), due) == [JUNE_WEEK]
    assert due_periods(_active(due + timedelta(microseconds=1), day=0), due) == []
    assert due_periods(_active(T0, day=0, paused=True), _utc(2025, 7, 1)) == []
    assert due_periods(validate(_s()), _utc(2025, 7, 1)) == []  # never stored: not active


def test_the_spring_forward_run_is_due_once_while_the_clock_steps_through_the_night() -> None:
    s = _active(_utc(2025, 3, 24), day=6, time="02:30", zone="Europe/Berlin")
    counts = {}
    at = _utc(2025, 3, 29, 23)
    while at <= _utc(2025, 3, 30, 4):
        counts[at] = len(due_periods(s, at))
        at += timedelta(minutes=10)
    assert {n for n in counts.values()} == {0, 1}
    assert min(at for at, n in counts.items() if n == 1) == _utc(2025, 3, 30, 1, 30)


def test_next_due() -> None:
    s = _active(T0, day=0, zone="Europe/Paris")
    assert next_due(s, _utc(2025, 6, 9, 5, 59)) == _utc(2025, 6, 9, 6, 0)
    assert next_due(s, _utc(2025, 6, 9, 6, 0)) == _utc(2025, 6, 16, 6, 0)  # strictly after
    assert next_due(_active(T0, paused=True), T0) is None
    # Not before active_since: a schedule made on Monday 09:00 first runs the next Monday.
    later = _active(_utc(2025, 6, 9, 9), day=0, time="08:00")
    assert next_due(later, _utc(2025, 6, 1)) == _utc(2025, 6, 16, 8, 0)


# --- the store ---------------------------------------------------------------------------------


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return ensure_lake(tmp_path / "lake", create=True)


def test_saved_schedules_come_back_as_stored(lake: Path) -> None:
    a = save_schedule(lake, _s(recipients="a@example.com,b@example.com", zone="Asia/Tokyo"), T0)
    b = save_schedule(lake, _s(cadence="monthly", day="last", formats="json"), T0)
    assert (a.id, b.id) == (1, 2)
    assert a == Schedule(
        1,
        "performance",
        None,
        "weekly",
        0,
        "08:00",
        "Asia/Tokyo",
        ("a@example.com", "b@example.com"),
        ("pdf",),
        False,
        T0,
        T0,
        T0,
    )
    assert list_schedules(lake) == [a, b]
    assert get_schedule(lake, 2).day == "last"


def test_edits_move_active_since_only_when_the_timing_changes(lake: Path) -> None:
    s = save_schedule(lake, _s(), T0)
    t1, t2, t3, t4 = (T0 + timedelta(days=n) for n in (1, 2, 3, 4))
    s = save_schedule(lake, replace(s, recipients=("new@example.com",)), t1)
    assert (s.recipients, s.active_since, s.updated_at) == (("new@example.com",), T0, t1)
    s = save_schedule(lake, replace(s, time="09:00"), t2)
    assert s.active_since == t2
    s = set_paused(lake, 1, True, t3)
    assert (s.paused, s.active_since) == (True, t2)
    s = set_paused(lake, 1, False, t4)
    assert (s.paused, s.active_since) == (False, t4)  # what was due while paused is not caught up
    assert s.created_at == T0


def test_delete_and_missing_ids(lake: Path) -> None:
    save_schedule(lake, _s(), T0)
    delete_schedule(lake, 1)
    assert list_schedules(lake) == []
    for call in (
        lambda: delete_schedule(lake, 1),
        lambda: get_schedule(lake, 1),
        lambda: set_paused(lake, 1, True),
        lambda: save_schedule(lake, _s(id=1)),
    ):
        with pytest.raises(ScheduleError, match=r"^id: no schedule has id 1$"):
            call()
    assert list_schedules(lake) == []


def test_an_invalid_schedule_writes_nothing(lake: Path) -> None:
    save_schedule(lake, _s(), T0)
    with pytest.raises(ScheduleError, match="recipients"):
        save_schedule(lake, _s(id=1, recipients="nobody"))
    assert list_schedules(lake)[0].recipients == ("ops@example.com",)


def test_the_store_is_shared_with_thresholds_in_wal_mode(lake: Path) -> None:
    save_schedule(lake, _s(), T0)
    assert [t.metric for t in list_thresholds(lake)] == ["vram_peak_pct"]  # seeded default
    assert len(list_schedules(lake)) == 1
    with closing(sqlite3.connect(metadata_db(lake))) as con:
        assert con.execute("pragma journal_mode").fetchone() == ("wal",)
