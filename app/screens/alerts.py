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
    grouped = cached.result(alerts.active_alerts, filters)
    if level != "all":
        grouped = grouped.filter(pl.col("level") == level)
    counts = grouped.group_by("level").agg(pl.col("alerts").sum())
    per_level = dict(zip(counts["level"].to_list(), counts["alerts"].to_list(), strict=True))
    total, critical, warning = st.columns(3)
    total.metric("Alerts", formats.count(sum(per_level.values())))
    critical.metric("Critical", formats.count(per_level.get("critical", 0)))
    warning.metric("Warning", formats.count(per_level.get("warning", 0)))
    if not per_level:
        st.success("No alert was raised in this range: no job crossed an enabled threshold.")
        return
    st.markdown("**Grouped**")
    st.caption("Alerts per metric, level, workflow and worker, with the last one's time.")
    tables.table(grouped, "active_alerts")
    raised = cached.result(alerts.alerts, filters, None if level == "all" else level, alerts.LISTED)
    st.markdown(
        "**Every alert**"
        if raised.height == sum(per_level.values())
        else f"**The newest {formats.count(raised.height)} alerts**"
    )
    st.caption(
        "Newest first; value and threshold in the metric's unit. "
        "`perflake query alerts` lists every alert of a range."
    )
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
