"""The "Reports" page: a report of a chosen type, period (this week, this month, last quarter or
custom days) and project, previewed as the PDF reads (key figures against the previous period,
the summary, charts and tables) with its CSV, JSON and PDF built only when a button is clicked;
the schedules that e-mail it; and the history of what the scheduler built and sent.

A page script: it lays out `queries.reports.build_report` and `app.exports`, with the
schedules in `app.schedule_form` and the history in `app.report_history`; no SQL.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import partial

import streamlit as st

from app import (
    cached,
    charts,
    exports,
    pdf,
    report_history,
    schedule_form,
    sidebar,
    tables,
    urlstate,
)
from app.formats import NONE
from app.state import settings
from queries.reports import REPORT_TYPES, Report, build_report

PRESETS = {
    "week": "This week",
    "month": "This month",
    "quarter": "Last quarter",
    "custom": "Custom days",
}
#: Changes shown without an arrow.
UNCHANGED = ("no change", "+0.0%", "-0.0%", "+0.0 pts", "-0.0 pts")
#: Key figures per row of metrics.
PER_ROW = 5
_P = "rep:"  # prefix of this page's session keys
#: Markdown marks a summary sentence must show as written (a "$" would start a formula).
_MARKS = re.compile(r"([\\`*_$~\[\]<>|#])")


def page() -> None:
    st.title("Reports")
    lake = settings().lake
    projects = sidebar.choices().projects
    report, scheduled, history = st.tabs(["Report", "Schedules", "History"])
    with report:
        _report(projects)
    with scheduled:
        schedule_form.section(lake, projects)
    with history:
        report_history.section(lake)


def period(preset: str, today: date) -> tuple[date, date] | None:
    """The UTC days of `preset` as of `today`: this week from Monday, this month from the 1st,
    or the previous full calendar quarter; None for custom days."""
    if preset == "week":
        return today - timedelta(days=today.weekday()), today
    if preset == "month":
        return today.replace(day=1), today
    if preset == "quarter":
        this_quarter = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        end = this_quarter - timedelta(days=1)
        return date(end.year, end.month - 2, 1), end
    return None


def _report(projects: tuple[str, ...]) -> None:
    kind_at, preset_at, project_at = st.columns(3)
    kind = urlstate.selectbox(
        "report", "Report", list(REPORT_TYPES), format_func=REPORT_TYPES.__getitem__,
        container=kind_at,
    )  # fmt: skip
    preset = urlstate.selectbox(
        "period", "Period", list(PRESETS), "month", format_func=PRESETS.__getitem__,
        container=preset_at,
    )  # fmt: skip
    project = urlstate.selectbox(
        "report_project", "Project", ["", *projects], format_func=lambda p: p or "All projects",
        container=project_at,
    )  # fmt: skip
    start, end = period(preset, sidebar.today()) or _custom_days()
    built: Report = cached.result(build_report, kind, start, end, project or None)
    _downloads(built)
    _preview(built)


def _custom_days() -> tuple[date, date]:
    last = sidebar.today()
    left, right, _ = st.columns([1, 1, 1])
    start = urlstate.day("report_from", "From", last - timedelta(days=29), container=left)
    end = urlstate.day("report_to", "To", last, container=right)
    if start > end:
        st.warning(f"From ({start}) is after To ({end}): showing {end} to {start}.")
        start, end = end, start
    return start, end


def _downloads(report: Report) -> None:
    """One button per format; each builds its file when clicked (a PDF takes a few seconds)."""
    buttons = st.columns(len(exports.FORMATS) + 3)
    for column, fmt in zip(buttons, exports.FORMATS, strict=False):
        column.download_button(
            f"Download {fmt.upper()}",
            partial(exports.export, report, fmt),
            file_name=exports.file_name(report, fmt),
            mime=exports.media_type(report, fmt),
            key=f"{_P}export-{fmt}",
            on_click="ignore",
            type="primary" if fmt == "pdf" else "secondary",
            help=f"Builds the {fmt.upper()} file when clicked.",
        )


def _preview(report: Report) -> None:
    scope = f"project {report.filters['project']}" if report.filters.get("project") else ""
    st.subheader(f"{report.title}{f', {scope}' if scope else ''}")
    first, last = report.data_range
    held = f"the lake holds data from {first} to {last}" if first else "the lake holds no data"
    st.caption(
        f"{report.start} to {report.end} (UTC days) against {report.previous_start} to "
        f"{report.previous_end}; {held}."
    )
    _figures(report)
    st.markdown("\n".join(f"- {_plain(line)}" for line in report.summary))
    for name, frame in report.tables.items():
        st.markdown(f"**{pdf.label(name)}**")
        for chart in report.charts:
            if chart.table == name and frame.height:
                built = exports.report_chart(report, chart)
                charts.show(built.properties(title=chart.title, width="container"))
        if frame.is_empty():
            st.caption("No rows in this period.")
        tables.table(frame, name)


def _plain(text: str) -> str:
    """`text` escaped for Markdown, so it shows as written."""
    return _MARKS.sub(r"\\\1", text)


def _figures(report: Report) -> None:
    """Each key figure with its change against the previous period (grey: up is not always
    better)."""
    h = report.headline
    keys = [k for k in h if not k.endswith(("_previous", "_change_pct"))]
    for at in range(0, len(keys), PER_ROW):
        for column, key in zip(st.columns(PER_ROW), keys[at : at + PER_ROW], strict=False):
            before = f"{key}_previous"
            change = pdf.change(key, h) if before in h else NONE
            column.metric(
                pdf.label(key),
                pdf.figure(key, h[key]),
                None if change == NONE else change,
                delta_color="off",
                delta_arrow="off" if change in UNCHANGED else "auto",
                help=f"{report.previous_start} to {report.previous_end}: "
                f"{pdf.figure(key, h.get(before))}",
            )


page()
