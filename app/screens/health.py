"""The "Ingest health" page: what the lake holds per table and day, what ingest last reported,
the newest events and the quarantine. Lays out `queries.health` results; holds no SQL.

A page script: `st.navigation` runs this file on every rerun of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from app import cached, tables
from app.empty import no_lake
from app.state import CACHE_TTL_S, settings
from lake import LakeError, LakeNotFoundError
from lake.tables import TABLES
from queries import health

LABELS = {
    "jobs": "Jobs completed",
    "job_failures": "Jobs failed",
    "job_stages": "Job stages",
    "worker_samples": "Worker samples",
    "reviews": "Reviews",
    "deliveries": "Deliveries",
    "quarantine": "Quarantined",
    "alerts": "Alerts raised",
}

#: One color per table, in stacking order: failures and the quarantine stand out.
COLORS = {
    "jobs": "#4c78a8",
    "job_failures": "#e45756",
    "job_stages": "#9ecae9",
    "worker_samples": "#bab0ac",
    "reviews": "#54a24b",
    "deliveries": "#b279a2",
    "quarantine": "#f58518",
    "alerts": "#eeca3b",
}


@dataclass(frozen=True)
class HealthData:
    totals: pl.DataFrame
    per_day: pl.DataFrame
    events: pl.DataFrame
    reasons: pl.DataFrame
    quarantined: pl.DataFrame


def load() -> HealthData:
    """Every frame of the page, from the cache while the lake is unchanged."""
    return HealthData(
        totals=cached.result(health.table_totals),
        per_day=cached.result(health.rows_per_day, 30),
        events=cached.result(health.latest_events, 20),
        reasons=cached.result(health.quarantine_reasons),
        quarantined=cached.result(health.quarantine, 100),
    )


def page() -> None:
    lake = settings().lake
    st.title("Ingest health")
    st.caption(
        f"Lake `{lake}` · new data shows on the next rerun (results kept {CACHE_TTL_S} s at most)"
    )
    try:
        data = load()
        status = health.ingest_status(lake)
    except LakeNotFoundError:
        no_lake(lake, "does not exist yet")
        return
    except LakeError as e:
        st.error("Cannot read the lake.")
        st.code(str(e), language=None)
        return
    if data.totals.get_column("rows").sum() == 0:
        no_lake(lake, "has no data yet")
        _ingest_metrics(status, None)
        return
    _table_metrics(data.totals)
    last_ingested = data.totals.get_column("latest_ingested_at").max()
    _ingest_metrics(status, last_ingested if isinstance(last_ingested, datetime) else None)
    _rows_per_day(data.per_day, data.totals)
    tables.section(
        "Latest events", "Newest first, across the event tables.", data.events, "latest_events"
    )
    _quarantine(data.reasons, data.quarantined)


def _table_metrics(totals: pl.DataFrame) -> None:
    for column, row in zip(st.columns(len(totals)), totals.iter_rows(named=True), strict=True):
        days = f"{row['days']} days, {row['first_date']} to {row['last_date']}"
        column.metric(
            LABELS.get(row["table"], row["table"]),
            f"{row['rows']:,}",
            help=f"{TABLES[row['table']].doc} {days if row['days'] else 'No rows yet.'}",
        )


def _ingest_metrics(status: dict[str, Any], last_ingested: datetime | None) -> None:
    lag, rate, reported, ingested = st.columns(4)
    if status:
        group, topic = status.get("group"), status.get("topic")
        value = status.get("lag")
        lag.metric(
            "Ingest lag",
            "?" if value is None else f"{value:,} msgs",
            help=f"Messages behind the end of {topic or 'the topic'} for consumer group {group}.",
        )
        value = status.get("events_per_s")
        rate.metric("Ingest rate", "?" if value is None else f"{value:,.1f} events/s")
        updated = status.get("updated_at")
        reported.metric("Status reported", _age(updated), help=f"At {updated} (UTC).")
    else:
        nothing = "No running ingest has reported to this lake (perflake ingest does, every few s)."
        for column, label in ((lag, "Ingest lag"), (rate, "Ingest rate")):
            column.metric(label, "none reported", help=nothing)
        reported.metric("Status reported", "never", help=nothing)
    ingested.metric(
        "Last row ingested",
        _age(last_ingested),
        help=f"Newest ingested_at in any table: {last_ingested or 'none'}.",
    )


def _age(moment: datetime | str | None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return "unknown"
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _rows_per_day(per_day: pl.DataFrame, totals: pl.DataFrame) -> None:
    st.subheader("Rows per day")
    days = per_day.get_column("date").n_unique()
    st.caption(f"Rows per table on the last {days} days with data (UTC days).")
    chart = (
        alt.Chart(per_day.with_columns(pl.col("date").cast(pl.String)))
        .mark_bar()
        .encode(
            # Days as labels, not instants: no time zone can move a bar to the wrong day.
            x=alt.X("date:O", title="Day (UTC)", axis=alt.Axis(labelAngle=0 if days <= 8 else -45)),
            y=alt.Y("sum(rows):Q", title="Rows"),
            color=alt.Color(
                "table:N",
                title="Table",
                scale=alt.Scale(domain=list(COLORS), range=list(COLORS.values())),
            ),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("table:N", title="Table"),
                alt.Tooltip("date:O", title="Day (UTC)"),
                alt.Tooltip("sum(rows):Q", title="Rows", format=","),
            ],
        )
        .transform_calculate(order=f"indexof({list(COLORS)!r}, datum.table)")
        .properties(height=320)
    )
    st.altair_chart(chart, width="stretch")
    tables.download(per_day, "rows_per_day")
    tables.section("Tables", "Totals per table since the lake began.", totals, "table_totals")


def _quarantine(reasons: pl.DataFrame, quarantined: pl.DataFrame) -> None:
    st.subheader("Quarantine")
    if reasons.is_empty():
        st.success("No message has been quarantined.")
        return
    st.caption("Messages that broke the event contract, grouped by the rule they broke.")
    chart = (
        alt.Chart(reasons)
        .mark_bar()
        .encode(
            x=alt.X("messages:Q", title="Messages", axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("rule:N", title=None, sort="-x", axis=alt.Axis(labelLimit=480)),
            tooltip=[
                alt.Tooltip("rule:N", title="Rule"),
                alt.Tooltip("messages:Q", title="Messages", format=","),
                alt.Tooltip(
                    "utcyearmonthdatehoursminutes(last_received_at):T", title="Last received (UTC)"
                ),
            ],
        )
        # A fixed height squeezes a discrete axis in Streamlit: give each rule its own step.
        .properties(height=alt.Step(28))
    )
    st.altair_chart(chart, width="stretch")
    tables.table(reasons, "quarantine_reasons")
    tables.section(
        "Quarantined messages",
        f"The newest {len(quarantined)} messages, with the start of each value.",
        quarantined,
        "quarantine",
    )


page()
