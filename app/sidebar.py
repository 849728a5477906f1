"""The sidebar every analysis page shares: the date range (presets relative to today, UTC, or
custom days) and the filters by project, workflow, worker, scene type and resolution tier.

Its widgets are bound to the URL (`app.urlstate`) and it returns the `queries.base.Filters` the
page passes to its queries. The choices it offers come from query results; it holds no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl
import streamlit as st

from app import cached, urlstate
from queries import workflows
from queries.base import Filters

#: Range preset -> days it spans, ending today (UTC); None = custom days.
PRESETS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "custom": None}
PRESET_LABELS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days"}
DEFAULT_PRESET = "30d"

#: Filters field -> (URL parameter, sidebar label).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "projects": ("project", "Projects"),
    "workflows": ("workflow", "Workflows"),
    "workers": ("worker", "Workers"),
    "scene_types": ("scene", "Scene types"),
    "resolution_tiers": ("tier", "Resolution tiers"),
}


@dataclass(frozen=True)
class Choices:
    """Values a filter can keep, per `Filters` field, from the whole lake."""

    projects: tuple[str, ...]
    workflows: tuple[str, ...]
    workers: tuple[str, ...]
    scene_types: tuple[str, ...]
    resolution_tiers: tuple[str, ...]


def today() -> date:
    """Today in UTC: the presets end here, as the lake's days are UTC days."""
    return datetime.now(UTC).date()


def filters(dimensions: bool = True) -> Filters:
    """The sidebar's date range and (when `dimensions`) its filters, as `Filters`."""
    bar = st.sidebar
    bar.header("View")
    start, end = _date_range(bar)
    if not dimensions:
        return Filters(start=start, end=end)
    options = choices()
    kept = {
        field: tuple(urlstate.multiselect(name, label, getattr(options, field), container=bar))
        for field, (name, label) in DIMENSIONS.items()
    }
    return Filters(start=start, end=end, **kept)


def _date_range(bar: st.delta_generator.DeltaGenerator) -> tuple[date, date]:
    preset = urlstate.selectbox(
        "range",
        "Date range",
        list(PRESETS),
        DEFAULT_PRESET,
        format_func=lambda p: PRESET_LABELS.get(p, "Custom days"),
        container=bar,
    )
    last = today()
    days = PRESETS[preset]
    if days is not None:
        start = last - timedelta(days=days - 1)
        bar.caption(f"{start} to {last} (UTC days)")
        return start, last
    left, right = bar.columns(2)
    start = urlstate.day("from", "From", last - timedelta(days=29), container=left)
    end = urlstate.day("to", "To", last, container=right)
    if start > end:
        bar.warning(f"From ({start}) is after To ({end}): showing {end} to {start}.")
        start, end = end, start
    return start, end


def choices() -> Choices:
    """Every value in the lake per dimension, sorted (one cached query over the whole lake)."""
    found = cached.result(workflows.filter_choices)
    by = {
        c: tuple(found.filter(pl.col("dimension") == c).get_column("value").to_list())
        for c in workflows.CHOICE_COLUMNS
    }
    return Choices(
        projects=by["project_id"],
        workflows=by["workflow_id"],
        workers=by["worker_id"],
        scene_types=by["scene_type"],
        resolution_tiers=by["resolution_tier"],
    )
