"""The report history of the "Reports" page: every run of a schedule (status, attempts, last
error, when sent), failed ones with their error and a "Retry now" button, and the files of a run,
read from the lake's report history only when a download button is clicked.

Knows no SQL: the runs come from `lake.report_runs`.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import streamlit as st

from app import tables
from lake import report_runs
from lake.report_runs import Run
from lake.schedules import ScheduleError
from queries.reports import REPORT_TYPES

_P = "hist:"  # prefix of this section's session keys
COLUMNS = {
    "id": pl.Int64(),
    "report": pl.String(),
    "project": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "status": pl.String(),
    "attempts": pl.Int64(),
    "last_error": pl.String(),
    "sent_at": pl.Datetime("us", "UTC"),
    "next_attempt_at": pl.Datetime("us", "UTC"),
    "schedule_id": pl.Int64(),
    "files": pl.List(pl.String()),
}


def section(lake: Path) -> None:
    """The runs table, each failed run with its error and retry button, and a run's files."""
    runs = report_runs.list_runs(lake)
    st.caption(
        "Every scheduled report built, newest period first; its files stay in the lake's "
        "report history. `perflake scheduler` retries a failed send with backoff."
    )
    notice = st.session_state.pop(_P + "notice", None)
    if notice:
        (st.warning if notice.startswith("Refused") else st.success)(notice)
    if not runs:
        st.info("No scheduled report has run yet.")
        return
    tables.table(run_table(runs), "report_runs")
    for run in runs:
        if run.status == "failed":
            _failed(lake, run)
    _files(lake, [run for run in runs if run.files])


def run_table(runs: list[Run]) -> pl.DataFrame:
    """One row per run: what, its period, status, attempts, last error, times and files."""
    rows = [
        {
            "id": r.id,
            "report": REPORT_TYPES.get(r.kind, r.kind),
            "project": r.project or "all projects",
            "period_start": r.period.start,
            "period_end": r.period.end,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "sent_at": r.sent_at,
            "next_attempt_at": r.next_attempt_at,
            "schedule_id": r.schedule_id,
            "files": list(r.files),
        }
        for r in runs
    ]
    return pl.DataFrame(rows, schema=COLUMNS)


def describe(run: Run) -> str:
    """'Run #3: Performance summary, 2025-06-02 to 2025-06-08'."""
    title = REPORT_TYPES.get(run.kind, run.kind)
    return f"Run #{run.id}: {title}, {run.period.start} to {run.period.end}"


def _failed(lake: Path, run: Run) -> None:
    box = st.container(border=True)
    box.error(f"{describe(run)} failed after {run.attempts} attempt(s): {run.last_error}")
    retry = run.next_attempt_at
    box.caption(
        f"Next automatic attempt at {retry:%Y-%m-%d %H:%M} UTC (while its schedule runs)."
        if retry
        else "No automatic attempt is left: retry it by hand."
    )
    box.button("Retry now", key=f"{_P}retry-{run.id}", on_click=_retry, args=(lake, run.id))


def _retry(lake: Path, run_id: int) -> None:
    try:
        report_runs.retry_now(lake, run_id, datetime.now(UTC))
    except ScheduleError as e:
        st.session_state[_P + "notice"] = f"Refused: {e}"
        return
    st.session_state[_P + "notice"] = (
        f"Run #{run_id} will be tried again at the scheduler's next pass."
    )


def _files(lake: Path, runs: list[Run]) -> None:
    """The files of the chosen run, one download button each."""
    if not runs:
        return
    by_id = {run.id: run for run in runs}
    chosen = st.selectbox(
        "Files of run",
        list(by_id),
        format_func=lambda i: f"{describe(by_id[i])} ({by_id[i].status})",
        key=_P + "run",
    )
    run = by_id[chosen]
    for column, name in zip(st.columns(max(len(run.files), 4)), run.files, strict=False):
        path = report_runs.run_file(lake, run, name)
        if not path.is_file():
            column.caption(f"{name}: no longer in the report history")
            continue
        column.download_button(
            f"Download {name}",
            path.read_bytes,
            file_name=name,
            mime=mimetypes.guess_type(name)[0] or "application/octet-stream",
            key=f"{_P}file-{run.id}-{name}",
            on_click="ignore",
        )
