"""The "Workflows" page: one row per workflow, the spread of time per frame and likeness, where
the GPU time goes (project, character, scene type, resolution tier) and the pipeline stages.

A page script: it lays out `queries.workflows` results and holds no SQL.
"""

from __future__ import annotations

from dataclasses import replace

import altair as alt
import polars as pl
import streamlit as st

from app import cached, charts, empty, sidebar, tables, urlstate
from queries import workflows
from queries.base import Filters

MS_PER_HOUR = 3_600_000
HISTOGRAMS = {"time_per_frame_ms": "Time per frame (ms)", "likeness": "Likeness"}
DIMENSION_LABELS = {
    "project_id": "Project",
    "character_id": "Character",
    "scene_type": "Scene type",
    "resolution_tier": "Resolution tier",
}
#: Workflows the histograms show until the user picks: the busiest ones.
HISTOGRAM_WORKFLOWS = 5
NUMBER = st.column_config.NumberColumn(format="%.4g")
PERCENT = st.column_config.NumberColumn(format="percent")


def page() -> None:
    st.title("Workflows")
    filters = sidebar.filters()
    st.caption(f"{filters.start} to {filters.end} (UTC days)")
    if not empty.has_jobs(filters):
        empty.explain(filters)
        return
    summary = _summary(filters)
    _histograms(filters, summary)
    _gpu_time(filters)
    _stages(filters)


def _summary(filters: Filters) -> pl.DataFrame:
    st.subheader("Summary")
    summary = cached.result(workflows.workflow_summary, filters)
    rate = max(summary.get_column("percentile_sample_rate").to_list(), default=1)
    sampled = (
        f" Over this large range p50, p95 and p99 are estimated on the lake's 1-in-{rate} job "
        "sample where percentile_sample_rate says so (a workflow it holds too little of keeps "
        "exact ones); every other figure counts every attempt."
        if rate > 1
        else ""
    )
    st.caption(
        "Times are per completed job; failure rate = failures / (jobs + failures); "
        f"GPU hours include failed attempts.{sampled}"
    )
    numbers = {name: NUMBER for name, dtype in summary.schema.items() if dtype == pl.Float64}
    numbers["failure_rate"] = PERCENT
    tables.table(summary, "workflow_summary", numbers)
    return summary


def _histograms(filters: Filters, summary: pl.DataFrame) -> None:
    st.subheader("Distributions")
    busiest = summary.sort(["jobs", "workflow_id"], descending=[True, False])
    ids = busiest.get_column("workflow_id").to_list()
    shown = urlstate.multiselect(
        "spread",
        "Workflows shown (all share the same bins)",
        ids,
        default=ids[:HISTOGRAM_WORKFLOWS],
    )
    for column, (metric, title) in zip(st.columns(2), HISTOGRAMS.items(), strict=True):
        with column:
            st.markdown(f"**{title}**")
            # Only the shown workflows: they share the bins, and a large range reads less.
            picked = replace(filters, workflows=tuple(shown))
            spread = cached.result(workflows.histogram, picked, metric, 30) if shown else None
            if spread is None or spread.is_empty():
                st.info(f"No completed job of the workflows shown has a {title.lower()} value.")
                continue
            rate = max(spread.get_column("sample_rate").to_list(), default=1)
            if rate > 1:
                st.caption(
                    f"Over this large range: the jobs of the lake's 1-in-{rate} sample, for the "
                    "workflows whose sample_rate says so."
                )
            charts.show(charts.histogram(spread, title))
            tables.download(spread, f"histogram_{metric}")


def _gpu_time(filters: Filters) -> None:
    st.subheader("GPU time")
    st.caption("GPU hours per value, failed attempts included; the share is of all GPU hours.")
    tabs = st.tabs([f"Per {label.lower()}" for label in DIMENSION_LABELS.values()])
    every = cached.result(workflows.gpu_time_by_dimensions, filters)  # one scan for all tabs
    for tab, (dimension, label) in zip(tabs, DIMENSION_LABELS.items(), strict=True):
        with tab:
            spent = every.filter(pl.col("dimension") == dimension).drop("dimension")
            shown = spent.with_columns(pl.col("value").fill_null("(not sent)"))
            chart = charts.bars(
                shown.head(30),
                "value",
                "gpu_hours",
                "GPU hours",
                tooltip=[
                    alt.Tooltip("jobs:Q", title="Jobs", format=","),
                    alt.Tooltip("share:Q", title="Share", format=".1%"),
                ],
            )
            if spent.height > 30:
                st.caption(f"The 30 {label.lower()}s with the most GPU hours of {spent.height}.")
            charts.show(chart)
            tables.table(
                spent,
                f"gpu_time_by_{dimension}",
                {
                    "value": st.column_config.TextColumn(label),
                    "share": PERCENT,
                    "gpu_hours": NUMBER,
                },
            )


def _stages(filters: Filters) -> None:
    st.subheader("Pipeline stages")
    stages = cached.result(workflows.stage_breakdown, filters)
    if stages.is_empty():
        st.info("No job in range reported its pipeline stages.")
        return
    rate = max(stages.get_column("percentile_sample_rate").to_list(), default=1)
    sampled = (
        f" Over this large range p50 and p95 are estimated on the stages of the lake's "
        f"1-in-{rate} job sample, where percentile_sample_rate says so."
        if rate > 1
        else ""
    )
    st.caption(f"Time spent per stage over every completed and failed attempt in range.{sampled}")
    hours = stages.with_columns((pl.col("total_ms") / MS_PER_HOUR).alias("total_hours"))
    chart = charts.bars(
        hours,
        "stage_name",
        "total_hours",
        "Total time (hours)",
        tooltip=[
            alt.Tooltip("share:Q", title="Share", format=".1%"),
            alt.Tooltip("avg_ms:Q", title="Avg (ms)", format=",.0f"),
            alt.Tooltip("p95_ms:Q", title="p95 (ms)", format=",.0f"),
        ],
        fmt=",.1f",
    )
    charts.show(chart)
    numbers = {n: NUMBER for n in ("total_ms", "avg_ms", "p50_ms", "p95_ms")}
    tables.table(stages, "stage_breakdown", numbers | {"share": PERCENT})


page()
