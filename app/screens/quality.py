"""The "Quality" page: any metric over time by day, week or month with its moving average, every
quality score's trend (custom ones included), how parameters correlate with scores per workflow
(with a scatter of one parameter against one score), and the best and worst configurations.

A page script: it lays out `queries.timeseries` and `queries.correlations` results; no SQL.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl
import streamlit as st

from app import cached, charts, empty, sidebar, tables, urlstate
from queries import correlations, timeseries, workflows
from queries.base import Filters

MIN_JOBS = (1, 2, 3, 5, 10, 20, 50)
#: Configurations shown among the best, and among the worst.
CONFIGURATIONS = 5


def page() -> None:
    st.title("Quality")
    filters = sidebar.filters()
    st.caption(f"{filters.start} to {filters.end} (UTC days)")
    if not empty.has_jobs(filters):
        empty.explain(filters)
        return
    grain = urlstate.selectbox("grain", "Periods", list(timeseries.GRAINS), "day")
    _metric_series(filters, grain)
    _quality_trends(filters, grain)
    st.subheader("Parameters, per workflow")
    busiest = cached.result(workflows.workflow_jobs, filters).filter(pl.col("jobs") > 0)
    if busiest.is_empty():
        st.info("No job completed in range: only failures, which send no parameters or scores.")
        return
    workflow = urlstate.selectbox(
        "quality_workflow", "Workflow", busiest.get_column("workflow_id").to_list()
    )
    _correlations(filters, workflow)
    _configurations(filters, workflow)


def _metric_series(filters: Filters, grain: str) -> None:
    st.subheader("A metric over time")
    metric = urlstate.selectbox(
        "metric",
        "Metric",
        list(timeseries.METRICS),
        "avg_time_per_frame_ms",
        format_func=timeseries.METRICS.__getitem__,
    )
    series = cached.result(timeseries.metric_series, filters, metric, grain)
    label = timeseries.METRICS[metric]
    st.caption(f"{label} per {grain}; dashed: moving average. Drag on the strip to zoom.")
    charts.show(charts.series_with_average(series, "period", "value", "moving_avg", label))
    tables.download(series, f"series_{metric}_{grain}")


def _quality_trends(filters: Filters, grain: str) -> None:
    st.subheader("Quality scores")
    trends = cached.result(timeseries.quality_trends, filters, grain)
    if trends.is_empty():
        st.info("No completed job in range sent a quality score.")
        return
    st.caption(
        f"Average of every score sent, custom ones included, per {grain}; dashed: moving average."
    )
    chart = charts.series_with_average(
        trends, "period", "value", "moving_avg", "Average score", color="score"
    )
    charts.show(chart)
    tables.download(trends, f"quality_trends_{grain}")


def _correlations(filters: Filters, workflow: str) -> None:
    st.markdown("**Correlation of each numeric parameter with each score**")
    # This workflow's alone: a busy one reads the job sample, and the others are not computed.
    found = cached.result(correlations.correlations, replace(filters, workflows=(workflow,)))
    rows = found.filter(pl.col("workflow_id") == workflow)
    if rows.is_empty():
        st.info(
            f"No numeric parameter and quality score of {workflow} were sent together by "
            f"{correlations.MIN_PAIRS} or more jobs in range."
        )
        return
    st.caption("Pearson (linear) and Spearman (rank) correlation, strongest first.")
    tables.table(rows, f"correlations_{workflow}")
    strongest = rows.row(0, named=True)
    left, right = st.columns(2)
    params = rows.get_column("param").unique(maintain_order=True).to_list()
    scores = rows.get_column("score").unique(maintain_order=True).to_list()
    param = urlstate.selectbox("param", "Parameter", params, strongest["param"], container=left)
    score = urlstate.selectbox("score", "Score", scores, strongest["score"], container=right)
    points = cached.result(correlations.scatter, filters, workflow, param, score)
    if points.is_empty():
        st.info(f"No job of {workflow} in range has both {param} and {score}.")
        return
    charts.show(charts.scatter(points, "param_value", "score_value", param, score))
    tables.download(points, f"scatter_{workflow}_{param}_{score}")


def _configurations(filters: Filters, workflow: str) -> None:
    st.markdown("**Best and worst configurations**")
    left, right = st.columns(2)
    by = urlstate.selectbox(
        "config_by", "Rank by", list(correlations.TOP_BY), "likeness", container=left
    )
    min_jobs = urlstate.selectbox(
        "min_jobs", "Jobs per configuration, at least", MIN_JOBS, 5, container=right
    )
    ranked = cached.result(correlations.top_configurations, filters, min_jobs, by, CONFIGURATIONS)
    rate = max(ranked.get_column("sample_rate").to_list(), default=1)
    ranked = ranked.filter(pl.col("workflow_id") == workflow).drop("workflow_id", "sample_rate")
    counted = "jobs" if rate == 1 else f"jobs of the 1-in-{rate} job sample"
    if ranked.is_empty():
        st.info(
            f"No parameter combination of {workflow} ran {min_jobs} or more {counted} in range."
        )
        return
    better = "higher" if correlations.TOP_BY[by] else "lower"
    sample_note = (
        f" Over this large range each combination is counted in the lake's 1-in-{rate} job "
        "sample: `jobs` are sampled jobs."
        if rate > 1
        else ""
    )
    st.caption(
        f"The parameters that take few values, combined; average {by} per combination "
        f"({better} is better).{sample_note}"
    )
    best, worst = st.columns(2)
    for column, group, title in ((best, "top", "Best"), (worst, "bottom", "Worst")):
        with column:
            st.markdown(f"**{title}**")
            rows = ranked.filter(pl.col("rank_group") == group).drop("rank_group")
            tables.table(rows, f"configurations_{workflow}_{group}_{by}")


page()
