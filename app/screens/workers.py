"""The "Workers" page: each GPU worker's speed against its same-model peers, utilization, frames
per GPU hour and VRAM headroom; underperformers called out first and in red on the ranking.

A page script: it lays out `queries.workers` results and holds no SQL.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from app import cached, charts, empty, formats, sidebar, tables
from queries import workers

COLUMNS = {
    "utilization": st.column_config.NumberColumn("utilization", format="percent"),
    "vram_headroom_pct": st.column_config.NumberColumn("vram headroom", format="percent"),
    "relative_time_per_frame": st.column_config.NumberColumn(
        "relative time per frame",
        format="%.2fx",
        help="Time per frame against the median of same-model peers on the same work (1.00x).",
    ),
    "frames_per_gpu_hour": st.column_config.NumberColumn(format="%.0f"),
    "gpu_hours": st.column_config.NumberColumn(format="%.1f"),
    "avg_vram_peak_mb": st.column_config.NumberColumn(format="%.0f"),
}


def page() -> None:
    st.title("Workers")
    filters = sidebar.filters()
    st.caption(f"{filters.start} to {filters.end} (UTC days)")
    if not empty.has_jobs(filters):
        empty.explain(filters)
        return
    fleet = cached.result(workers.worker_summary, filters)
    if fleet.is_empty():
        empty.explain(filters)
        return
    _headline(fleet)
    _ranking(fleet)
    st.subheader("Summary")
    rate = max(fleet.get_column("percentile_sample_rate").to_list(), default=1)
    sampled = (
        f" Over this large range each worker's median time per frame on matched work is "
        f"estimated on the lake's 1-in-{rate} job sample (relative time per frame within about "
        "0.01 of the exact figure); every other figure counts every job."
        if rate > 1
        else ""
    )
    st.caption(
        "Utilization = generating / (generating + idle) seconds of the worker's samples; "
        "headroom = 1 - highest VRAM peak / VRAM size (empty without VRAM monitoring)." + sampled
    )
    tables.table(fleet, "worker_summary", COLUMNS)


def _headline(fleet: pl.DataFrame) -> None:
    flagged = fleet.filter(pl.col("underperformer"))
    count, utilization, rate, slow = st.columns(4)
    count.metric("Workers", formats.count(fleet.height))
    utilization.metric(
        "Median utilization",
        formats.pct(fleet.get_column("utilization").median()),  # type: ignore[arg-type]
    )
    rate.metric(
        "Median frames per GPU hour",
        formats.count(fleet.get_column("frames_per_gpu_hour").median()),  # type: ignore[arg-type]
    )
    slow.metric("Underperformers", formats.count(flagged.height))
    if flagged.is_empty():
        st.success("No worker is flagged as underperforming in this range.")
        return
    lines = [
        f"- **{row['worker_id']}** ({row['gpu_model'] or 'unknown GPU'}): {row['flag_reason']}"
        for row in flagged.iter_rows(named=True)
    ]
    st.warning("Underperforming workers\n\n" + "\n".join(lines))
    tables.table(flagged, "underperformers", COLUMNS)


def _ranking(fleet: pl.DataFrame) -> None:
    st.subheader("Efficiency ranking")
    st.caption(
        "Time per frame against same-model peers on matched work: bars start at the peers' "
        "median (1.0), right is slower, left faster; underperformers in red."
    )
    ranked = fleet.filter(pl.col("relative_time_per_frame").is_not_null())
    if ranked.is_empty():
        st.info("No worker has same-model peers on matched work in this range.")
        return
    chart = charts.bars(
        ranked,
        "worker_id",
        "relative_time_per_frame",
        "Relative time per frame",
        tooltip=[
            alt.Tooltip("gpu_model:N", title="GPU"),
            alt.Tooltip("efficiency_rank:Q", title="Rank"),
            alt.Tooltip("frames_per_gpu_hour:Q", title="Frames per GPU hour", format=",.0f"),
            alt.Tooltip("utilization:Q", title="Utilization", format=".0%"),
            alt.Tooltip("flag_reason:N", title="Flag"),
        ],
        flag="underperformer",
        fmt=".2f",
        baseline=1.0,
    )
    charts.show(chart)


page()
