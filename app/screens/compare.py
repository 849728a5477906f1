"""The "Compare" page: two or more workflows side by side (each against the first), or one
workflow before and after a date, or two of its versions; the trade-offs in sentences first,
then every metric with its difference, confidence interval and verdict.

A page script: it lays out `queries.compare` results and holds no SQL.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import streamlit as st

from app import cached, empty, sidebar, tables, urlstate
from queries import compare, statistics, workflows
from queries.base import Filters

SIDE_BY_SIDE = ["metric", "a", "b", "pct_diff", "ci_low", "ci_high", "verdict"]
MODES = {
    "workflows": "Workflows side by side",
    "periods": "One workflow, before and after a date",
    "versions": "One workflow, two versions",
}


def page() -> None:
    st.title("Compare")
    filters = sidebar.filters()
    st.caption(f"{filters.start} to {filters.end} (UTC days)")
    if not empty.has_jobs(filters):
        empty.explain(filters)
        return
    # Busiest first: the default comparison is between the two workflows with the most jobs.
    ids = cached.result(workflows.workflow_jobs, filters).get_column("workflow_id").to_list()
    mode = urlstate.selectbox(
        "mode", "Compare", list(MODES), format_func=MODES.__getitem__, horizontal=True,
        widget="radio",
    )  # fmt: skip
    if mode == "workflows":
        _workflows(filters, ids)
    elif mode == "periods":
        _periods(filters, ids)
    else:
        _versions(filters, ids)


def _workflows(filters: Filters, ids: list[str]) -> None:
    chosen = urlstate.multiselect(
        "compare", "Workflows (the first is the one the others are compared against)", ids,
        default=ids[:2],
    )  # fmt: skip
    if len(chosen) < 2:
        st.info("Pick two or more workflows to compare.")
        return
    comparison = cached.result(compare.compare_workflows, filters, tuple(chosen))
    _show(comparison, "compare_" + "_vs_".join(chosen))


def _periods(filters: Filters, ids: list[str]) -> None:
    left, right = st.columns(2)
    workflow = urlstate.selectbox("compare_workflow", "Workflow", ids, container=left)
    assert filters.start is not None and filters.end is not None
    middle = filters.start + timedelta(days=(filters.end - filters.start).days // 2 + 1)
    split = urlstate.day("split", "Split day (the first day 'since')", middle, container=right)
    comparison = cached.result(compare.compare_periods, filters, workflow, split)
    _show(comparison, f"compare_{workflow}_split_{split}")


def _versions(filters: Filters, ids: list[str]) -> None:
    workflow = urlstate.selectbox("compare_workflow", "Workflow", ids)
    # Typed, not picked: no query lists a workflow's versions yet.
    left, right = st.columns(2)
    version_a = urlstate.text("version_a", "Version A (workflow_version)", container=left).strip()
    version_b = urlstate.text("version_b", "Version B, the baseline", container=right).strip()
    if not version_a or not version_b:
        st.info(f"Type two workflow_version values of {workflow} to compare.")
        return
    if version_a == version_b:
        st.info("Type two different versions.")
        return
    comparison = cached.result(compare.compare_versions, filters, workflow, version_a, version_b)
    _show(comparison, f"compare_{workflow}_{version_a}_vs_{version_b}")


def _show(comparison: pl.DataFrame, name: str) -> None:
    if comparison.is_empty():
        st.info("Nothing to compare: no job on one side in this range.")
        return
    with st.container(border=True):
        st.markdown("#### Trade-offs")
        for sentence in compare.tradeoff_sentences(comparison):
            st.markdown(f"- **{sentence}**")
    tests = comparison.height
    st.caption(
        "a vs b per metric, on matched work: pct_diff = (a - b) / b. Each of the "
        f"{tests} tests runs at {statistics.test_alpha(tests):.2%} (Bonferroni), so the "
        "chance of any false claim in this comparison stays at or below 5%; the interval is "
        "at that level, and 'no clear difference' means it includes 0."
    )
    signed = st.column_config.NumberColumn(format="%+.1f%%")
    number = st.column_config.NumberColumn(format="%.4g")
    columns = {"pct_diff": signed, "ci_low": signed, "ci_high": signed, "a": number, "b": number}
    columns["p_value"] = st.column_config.NumberColumn(format="%.1e")
    # The verdict beside the difference it judges; the pair's names last.
    shown = comparison.select(*SIDE_BY_SIDE, pl.exclude(SIDE_BY_SIDE))
    tables.table(shown, name, columns)


page()
