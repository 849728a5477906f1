"""Empty states that say why: a missing or empty lake, a range with no data (and the days the lake
does hold), or filters that exclude every job. Pages ask `has_jobs` and show `explain`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import streamlit as st

from app import cached
from app.state import settings
from queries import health, overview
from queries.base import FILTER_COLUMNS, Filters

#: The tables whose days are "the lake's data" for the analysis pages.
JOB_TABLES = ("jobs", "job_failures")


def no_lake(lake: Path, what: str) -> None:
    """The lake folder is missing (`what` = "does not exist yet") or holds nothing yet."""
    st.info(
        f"The lake at `{lake}` {what}: run `make run` or `perflake ingest --lake {lake}` "
        "to fill it."
    )


def has_jobs(filters: Filters) -> bool:
    """Whether any job completed or failed within `filters`."""
    return bool(cached.result(overview.has_attempts, filters).item(0, "found"))


def extent() -> tuple[date, date] | None:
    """First and last UTC day with a job or a failure anywhere in the lake (None: none yet)."""
    totals = cached.result(health.table_totals)
    days = totals.filter(totals.get_column("table").is_in(JOB_TABLES) & (totals["rows"] > 0))
    if days.is_empty():
        return None
    first: date = days.get_column("first_date").min()  # type: ignore[assignment]
    last: date = days.get_column("last_date").max()  # type: ignore[assignment]
    return first, last


def reason(filters: Filters) -> str:
    """Why `filters` keep no job: no data at all, none in the range, or the filters."""
    lake = settings().lake
    held = extent()
    if held is None:
        return f"The lake at `{lake}` has no jobs yet: run `make run` or `perflake ingest --lake {lake}` to fill it."
    span = f"{filters.start} to {filters.end}"
    unfiltered = Filters(start=filters.start, end=filters.end)
    if not has_jobs(unfiltered):
        return f"No data in range {span}; the lake holds data from {held[0]} to {held[1]}."
    kept = [
        f"{field.replace('_', ' ')}: {', '.join(getattr(filters, field))}"
        for field in FILTER_COLUMNS
        if getattr(filters, field)
    ]
    return (
        f"The filters exclude every job from {span} ({'; '.join(kept)}): "
        "clear or widen them in the sidebar."
    )


def explain(filters: Filters) -> None:
    """Show why the page is empty for `filters`."""
    st.info(reason(filters))
