"""The "Overview" page: the farm's totals in the range against the period before, jobs and frames
per day, the best and worst workflows by a chosen metric, and the alerts of the range.

A page script: it lays out `queries.overview` and `queries.alerts` results and holds no SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from app import cached, charts, empty, formats, sidebar, tables, urlstate
from queries import alerts, overview
from queries.base import Filters

#: Metric label, column of overview_totals, how to write it, whether a rise is bad.
TOTALS: list[tuple[str, str, Callable[[Any], str], bool]] = [
    ("GPU hours", "gpu_hours", formats.hours, True),
    ("Jobs", "jobs", formats.count, False),
    ("Frames", "frames", formats.count, False),
    ("Success rate", "success_rate", formats.pct, False),
    ("Avg time per frame", "avg_time_per_frame_ms", formats.ms, True),
    ("p95 time per frame", "p95_time_per_frame_ms", formats.ms, True),
    ("Peak VRAM", "peak_vram_mb", formats.mb, True),
]
#: Metrics per row: wide enough for a figure like "12,345,678".
PER_ROW = 4


def page() -> None:
    st.title("Overview")
    filters = sidebar.filters()
    st.caption(f"{filters.start} to {filters.end} (UTC days)")
    # The totals answer "anything in range?" too: no separate probe on this page.
    totals = cached.result(overview.overview_totals, filters)
    if not (totals.item(0, "jobs") or totals.item(0, "failures")):
        empty.explain(filters)
        return
    _totals(filters)
    _volume(filters)
    _ranking(filters)
    _alerts(filters)


def _totals(filters: Filters) -> None:
    now = cached.result(overview.overview_totals, filters).row(0, named=True)
    before = cached.result(overview.overview_totals, filters.previous()).row(0, named=True)
    columns = [c for _ in range(0, len(TOTALS), PER_ROW) for c in st.columns(PER_ROW)]
    for column, (label, key, write, rise_is_bad) in zip(columns, TOTALS, strict=False):
        column.metric(
            label,
            write(now[key]),
            delta=formats.change(now[key], before[key]),
            delta_color="inverse" if rise_is_bad else "normal",
            help=f"Previous {filters.days()} days: {write(before[key])}.",
        )
    rate = now["percentile_sample_rate"]
    sampled = (
        f" Over this large range the p95 is estimated on the lake's 1-in-{rate} job sample."
        if rate > 1
        else ""
    )
    st.caption(
        f"{formats.count(now['failures'])} failed attempts. GPU hours include failed attempts; "
        "per-job measures come from completed jobs. Changes are against the previous "
        f"{filters.days()} days.{sampled}"
    )


def _volume(filters: Filters) -> None:
    st.subheader("Jobs and frames per day")
    daily = cached.result(overview.daily_volume, filters)
    charts.show(charts.zoomable(daily, "date", [("jobs", "Jobs"), ("frames", "Frames")]))
    tables.download(daily, "daily_volume")


def _ranking(filters: Filters) -> None:
    st.subheader("Best and worst workflows")
    metric = urlstate.selectbox(
        "rank_by", "Rank by", list(overview.METRICS), format_func=overview.METRICS.__getitem__
    )
    ranked = cached.result(overview.ranked_workflows, filters, metric, 5)
    if ranked.is_empty():
        st.info(f"No workflow has a value for {overview.METRICS[metric].lower()} in this range.")
        return
    order = "lowest" if metric in overview.LOWER_IS_BETTER else "highest"
    st.caption(f"Best = {order} {overview.METRICS[metric].lower()}.")
    best, worst = st.columns(2)
    for column, group, title in ((best, "top", "Best"), (worst, "bottom", "Worst")):
        rows = ranked.filter(pl.col("rank_group") == group).drop("rank_group")
        with column:
            st.markdown(f"**{title}**")
            tables.table(rows, f"workflows_{group}_{metric}", {"value": _value_column(metric)})


def _value_column(metric: str) -> Any:
    label = overview.METRICS[metric]
    if metric in ("failure_rate",):
        return st.column_config.NumberColumn(label, format="percent")
    return st.column_config.NumberColumn(label, format="%.4g")


def _alerts(filters: Filters) -> None:
    st.subheader("Active alerts")
    active = cached.result(alerts.active_alerts, filters)
    if active.is_empty():
        st.success("No alert was raised in this range.")
        return
    st.caption("Threshold breaches of the range, grouped; see Alerts & thresholds for each one.")
    tables.table(active, "active_alerts")


page()
