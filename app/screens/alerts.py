"""The "Alerts & thresholds" page: the alerts of the range (counts, grouped and one by one) and
the thresholds that raise them, with the form to create, edit, enable/disable and delete one.

A page script: it lays out `queries.alerts` results and the `app.threshold_form`; no SQL.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import cached, empty, formats, sidebar, tables, threshold_form, urlstate
from app.state import settings
from queries import alerts
from queries.base import Filters

LEVELS = {"all": "All levels", "critical": "Critical", "warning": "Warning"}


def page() -> None:
    st.title("Alerts & thresholds")
    filters = sidebar.filters()
    st.caption(f"{filters.start} to {filters.end} (UTC days)")
    _alerts(filters)
    _thresholds()


def _alerts(filters: Filters) -> None:
    st.subheader("Alerts")
    if not empty.has_jobs(filters):
        empty.explain(filters)
        return
    level = urlstate.selectbox(
        "level", "Level", list(LEVELS), format_func=LEVELS.__getitem__, widget="radio",
        horizontal=True,
    )  # fmt: skip
    raised = cached.result(alerts.alerts, filters, None if level == "all" else level)
    total, critical, warning = st.columns(3)
    levels = raised.get_column("level")
    total.metric("Alerts", formats.count(raised.height))
    critical.metric("Critical", formats.count(int((levels == "critical").sum())))
    warning.metric("Warning", formats.count(int((levels == "warning").sum())))
    if raised.is_empty():
        st.success("No alert was raised in this range: no job crossed an enabled threshold.")
        return
    st.markdown("**Grouped**")
    grouped = cached.result(alerts.active_alerts, filters)
    if level != "all":
        grouped = grouped.filter(pl.col("level") == level)
    st.caption("Alerts per metric, level, workflow and worker, with the last one's time.")
    tables.table(grouped, "active_alerts")
    st.markdown("**Every alert**")
    st.caption("Newest first; value and threshold in the metric's unit.")
    tables.table(raised, "alerts", height=320)


def _thresholds() -> None:
    st.subheader("Thresholds")
    lake = settings().lake
    st.caption(
        "An enabled threshold is checked on every job as it is ingested; the most specific "
        "scope wins (worker over workflow over global). Changes apply to jobs ingested from now on."
    )
    tables.table(alerts.thresholds(lake), "thresholds")
    threshold_form.form(lake)


page()
