"""The schedules of the "Reports" page: their table, the picker of the one to edit, its Pause /
Resume and Delete buttons, and the form to create or edit one.

Changes run in widget callbacks, before the page is drawn, so the table above the form already
shows them. A refused schedule (`lake.schedules.ScheduleError`) leaves the form as typed and shows
the reason under the field it names. Knows no SQL: the store is `lake.schedules`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import polars as pl
import streamlit as st

from app import tables
from lake import schedules
from lake.schedules import Schedule, ScheduleError
from queries.reports import REPORT_TYPES

NEW = 0  # the "edit" choice that starts a new schedule
_P = "sch:"  # prefix of this form's session keys
FIELDS = ("kind", "project", "cadence", "day", "time", "zone", "recipients", "formats")
ZONES = ("UTC", *sorted(available_timezones() - {"UTC"}))
DAY_HELP = (
    "Weekly: a weekday (Monday..Sunday). Monthly: a day of the month 1-28, or 'last' for the "
    "month's last day."
)
COLUMNS = {
    "id": pl.Int64(),
    "report": pl.String(),
    "project": pl.String(),
    "timing": pl.String(),
    "recipients": pl.String(),
    "formats": pl.String(),
    "state": pl.String(),
    "next_due": pl.Datetime("us", "UTC"),
}


def section(lake: Path, projects: Sequence[str]) -> None:
    """The schedules table, then the picker, its buttons and the form."""
    known = {s.id: s for s in schedules.list_schedules(lake) if s.id is not None}
    st.caption(
        "A schedule e-mails its report for the previous full week (Monday to Sunday) or "
        "calendar month, on its day and time in its zone, while `perflake scheduler` runs."
    )
    tables.table(schedule_table(known.values(), datetime.now(UTC)), "report_schedules")
    form(lake, known, projects)


def schedule_table(found: Iterable[Schedule], now: datetime) -> pl.DataFrame:
    """One row per schedule: report, project, timing in words, recipients, state, next due."""
    rows = [
        {
            "id": s.id,
            "report": REPORT_TYPES.get(s.kind, s.kind),
            "project": s.project or "all projects",
            "timing": schedules.describe(s),
            "recipients": ", ".join(s.recipients),
            "formats": ", ".join(s.formats),
            "state": "paused" if s.paused else "active",
            "next_due": schedules.next_due(s, now),
        }
        for s in found
    ]
    return pl.DataFrame(rows, schema=COLUMNS)


def form(lake: Path, known: dict[int, Schedule], projects: Sequence[str]) -> None:
    """The picker of the schedule to edit, its buttons and the form."""
    editing = st.session_state.get(_P + "editing")
    if editing is None or (editing != NEW and editing not in known):
        # First show (or the one edited was deleted elsewhere): a blank new schedule.
        st.session_state[_P + "editing"] = NEW
        _fill(None)
    editing = st.selectbox(
        "Schedule",
        [NEW, *known],
        format_func=lambda i: "New schedule" if i == NEW else _label(known[i]),
        key=_P + "editing",
        on_change=lambda: _fill(known.get(st.session_state[_P + "editing"])),
    )
    _notice()
    if editing != NEW:
        _buttons(lake, known[editing])
    with st.form("schedule", border=True):
        _fields(projects)
        st.form_submit_button(
            "Save" if editing != NEW else "Create",
            type="primary",
            key=_P + "save",
            on_click=_save,
            args=(lake, known.get(editing)),
        )


def _label(s: Schedule) -> str:
    scope = s.project or "all projects"
    state = " (paused)" if s.paused else ""
    return f"#{s.id} {REPORT_TYPES.get(s.kind, s.kind)}, {scope}, {schedules.describe(s)}{state}"


def _buttons(lake: Path, s: Schedule) -> None:
    pause, delete, _ = st.columns([1, 1, 4])
    pause.button(
        "Resume" if s.paused else "Pause",
        key=_P + "pause",
        on_click=_act,
        args=(_pause, lake, s.id, not s.paused),
    )
    delete.button("Delete", key=_P + "delete", on_click=_act, args=(_delete, lake, s.id))


def _fields(projects: Sequence[str]) -> None:
    """The form's widgets; the project list keeps a stored project the lake does not show."""
    errors: dict[str, str] = st.session_state.get(_P + "errors", {})
    left, right = st.columns(2)
    left.selectbox(
        "Report", list(REPORT_TYPES), format_func=REPORT_TYPES.__getitem__, key=_P + "kind"
    )
    typed = st.session_state.get(_P + "project") or ""
    options = ["", *projects, *([typed] if typed and typed not in projects else [])]
    right.selectbox(
        "Project", options, format_func=lambda p: p or "All projects", key=_P + "project"
    )
    _error(errors, "kind", "project")
    cadence, day, at, zone = st.columns([1, 1, 1, 2])
    cadence.radio("Cadence", schedules.CADENCES, key=_P + "cadence", horizontal=True)
    day.text_input("Day", key=_P + "day", help=DAY_HELP)
    at.time_input("Time", key=_P + "time", step=300)
    zone.selectbox("Time zone", ZONES, key=_P + "zone")
    _error(errors, "cadence", "day", "time", "zone")
    st.text_area(
        "Recipients",
        key=_P + "recipients",
        height=68,
        help="E-mail addresses, separated by commas, spaces or new lines.",
    )
    _error(errors, "recipients")
    st.multiselect("Formats", schedules.FORMATS, key=_P + "formats")
    _error(errors, "formats", "paused", "id")


def _error(errors: dict[str, str], *fields: str) -> None:
    for field in fields:
        if field in errors:
            st.error(errors[field])


def _fill(s: Schedule | None) -> None:
    """Put `s` (or a blank new schedule) into the form's widgets."""
    s = s or Schedule()
    state = st.session_state
    state[_P + "kind"] = s.kind
    state[_P + "project"] = s.project or ""
    state[_P + "cadence"] = s.cadence
    day = s.day
    state[_P + "day"] = schedules.WEEKDAYS[int(day)].title() if s.cadence == "weekly" else str(day)
    hour, minute = (int(x) for x in s.time.split(":"))
    state[_P + "time"] = time(hour, minute)
    state[_P + "zone"] = s.zone
    state[_P + "recipients"] = ", ".join(s.recipients)
    state[_P + "formats"] = list(s.formats)
    state[_P + "errors"] = {}


def _save(lake: Path, old: Schedule | None) -> None:
    s = st.session_state
    at: time | None = s.get(_P + "time")
    typed = Schedule(
        id=old.id if old else None,
        kind=s.get(_P + "kind", ""),
        project=s.get(_P + "project") or None,
        cadence=s.get(_P + "cadence", ""),
        day=s.get(_P + "day", ""),
        time=f"{at:%H:%M}" if at else "",
        zone=s.get(_P + "zone", ""),
        recipients=tuple(re.split(r"[\s,;]+", s.get(_P + "recipients", ""))),
        formats=tuple(s.get(_P + "formats", ())),
        paused=old.paused if old else False,
    )
    try:
        saved = schedules.save_schedule(lake, typed)
    except ScheduleError as e:
        s[_P + "errors"] = {e.field: str(e)}
        return
    s[_P + "notice"] = f"Saved {_label(saved)}."
    s[_P + "editing"] = saved.id
    _fill(saved)


def _act(action: Callable[..., str], lake: Path, id: int, *args: Any) -> None:
    try:
        st.session_state[_P + "notice"] = action(lake, id, *args)
    except ScheduleError as e:
        st.session_state[_P + "notice"] = f"Refused: {e}"


def _pause(lake: Path, id: int, paused: bool) -> str:
    schedules.set_paused(lake, id, paused)
    if paused:
        return f"Schedule #{id} paused: nothing is sent until it is resumed."
    return f"Schedule #{id} resumed: periods due while it was paused are not caught up."


def _delete(lake: Path, id: int) -> str:
    schedules.delete_schedule(lake, id)
    st.session_state[_P + "editing"] = NEW
    _fill(None)
    return f"Deleted schedule #{id}; its runs and files stay in the history."


def _notice() -> None:
    notice = st.session_state.pop(_P + "notice", None)
    if notice:
        (st.warning if notice.startswith("Refused") else st.success)(notice)
