"""Ingest-health queries: rows per table and day, table totals, latest events and the quarantine.

Reads the lake only through `lake.views` (and the ingest status through `lake.layout`); knows
nothing of Streamlit. Table and column names are identifiers, not values: they go through
`queries.base.quoted`, which takes only names on the lake's declared allowlist.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from lake import views
from lake.layout import partition_days, read_meta
from lake.tables import TABLES
from queries.base import column, frame, quoted

#: The tables ingest fills; the samples of lake/sample.py are copies and left out.
SHOWN = [name for name, table in TABLES.items() if table.sample_of is None]

#: Event tables, the event type that fills each, and the column that names its subject.
EVENT_TABLES: dict[str, tuple[str, str]] = {
    "jobs": ("job.completed", "job_id"),
    "job_failures": ("job.failed", "job_id"),
    "worker_samples": ("worker.sample", "worker_id"),
    "reviews": ("review.completed", "review_id"),
    "deliveries": ("character.delivered", "character_id"),
}

#: Characters of a quarantined message's value shown in `preview`.
PREVIEW_CHARS = 200


ROWS_PER_DAY_PART = 'select ? as "table", date, count(*) as rows from {view} group by date'
ROWS_PER_DAY = """
with counts as (
{parts}
),
recent as (
    select distinct date
    from counts
    order by date desc
    limit ?
)
select counts."table", counts.date, counts.rows
from counts
semi join recent using (date)
order by counts.date, counts."table"
"""


def rows_per_day(lake: Path, days: int = 30) -> pl.DataFrame:
    """One row per table (but the samples) and day: rows per table on each of the last `days` days with data.

    A day is kept when any table has rows on it; a table with no rows on a kept day has no row.
    """
    if days < 1:
        raise ValueError(f"days: must be >= 1, got {days}")
    parts = "\nunion all\n".join(
        ROWS_PER_DAY_PART.format(view=quoted(name, TABLES)) for name in SHOWN
    )
    return frame(lake, ROWS_PER_DAY.format(parts=parts), [*SHOWN, days])


TABLE_ROWS_PART = "select ? as position, count(*) as rows from {view}"
TABLE_ROWS = """
select rows
from (
{parts}
)
order by position
"""
TOTALS_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.String(),
    "rows": pl.Int64(),
    "days": pl.Int64(),
    "first_date": pl.Date(),
    "last_date": pl.Date(),
    "latest_ingested_at": pl.Datetime("us", "UTC"),
}


def table_totals(lake: Path) -> pl.DataFrame:
    """One row per table but the samples, in declaration order: rows, days with rows, first and last day, and
    when a row was last ingested (null dates for a table with no rows yet).

    Rows come from a count DuckDB answers from the file footers; days from the partition
    folders that hold files; the last ingestion from the newest files only
    (`lake.views.newest_ingested_at`): no column of a year-long lake is scanned.
    """
    parts = "\nunion all\n".join(
        TABLE_ROWS_PART.format(view=quoted(name, TABLES)) for name in SHOWN
    )
    rows = frame(lake, TABLE_ROWS.format(parts=parts), list(range(len(SHOWN))))
    out = []
    for name, count in zip(SHOWN, rows.get_column("rows").to_list(), strict=True):
        files = views.table_files(lake, name)
        days = sorted({day for day, _, _ in files}) if count else []
        latest = views.newest_ingested_at(files) if count else None
        first, last = (days[0], days[-1]) if days else (None, None)
        out.append((name, count, len(days), first, last, latest))
    return pl.DataFrame(out, schema=TOTALS_SCHEMA, orient="row")


LATEST_EVENTS_PART = """(select ? as event_type, event_id, occurred_at, ingested_at,
    {subject} as subject
from {view}
where {since}
order by occurred_at desc, event_id
limit ?)"""
LATEST_EVENTS = """
select event_type, event_id, occurred_at, ingested_at, subject
from (
{parts}
)
order by occurred_at desc, event_id
"""


def latest_events(lake: Path, limit: int = 20) -> pl.DataFrame:
    """One row per event, newest `occurred_at` first, across the event tables (ties by event_id).

    `subject` is what the event is about: the job, worker, review or character.

    A table's newest events lie in its newest day folder (a day is the UTC date of
    `occurred_at`), so each table is read from that day alone, and in full only when that day
    holds fewer than `limit` events: a few files instead of the whole lake.
    """
    if limit < 1:
        raise ValueError(f"limit: must be >= 1, got {limit}")
    newest = {name: partition_days(lake, name)[-1:] for name in EVENT_TABLES}
    found = _latest(lake, limit, {name: days[0] for name, days in newest.items() if days})
    per_type = found.group_by("event_type").len()
    counts = dict(zip(per_type["event_type"].to_list(), per_type["len"].to_list(), strict=True))
    short = [
        name
        for name, (event_type, _) in EVENT_TABLES.items()
        if newest[name] and counts.get(event_type, 0) < limit
    ]
    if short:
        rest = _latest(lake, limit, {}, only=short)
        found = pl.concat(
            [
                found.filter(
                    ~pl.col("event_type").is_in([EVENT_TABLES[name][0] for name in short])
                ),
                rest,
            ]
        )
    return found.sort(["occurred_at", "event_id"], descending=[True, False], nulls_last=True).head(
        limit
    )


def _latest(
    lake: Path, limit: int, since: dict[str, date], only: list[str] | None = None
) -> pl.DataFrame:
    """Each table's `limit` newest events (from day `since[table]` on, when given)."""
    parts, params = [], []
    for name, (event_type, subject) in EVENT_TABLES.items():
        if only is not None and name not in only:
            continue
        day = since.get(name)
        parts.append(
            LATEST_EVENTS_PART.format(
                view=quoted(name, TABLES),
                subject=column(name, subject),
                since="date >= ?" if day else "true",
            )
        )
        params += [event_type, *([day] if day else []), limit]
    return frame(lake, LATEST_EVENTS.format(parts="\nunion all\n".join(parts)), params)


QUARANTINE = """
select received_at, topic, kafka_partition, kafka_offset, reason, event_type, event_id, value
from quarantine
order by received_at desc, topic, kafka_partition, kafka_offset desc
limit ?
"""


def quarantine(lake: Path, limit: int = 100) -> pl.DataFrame:
    """One row per quarantined message, newest first, with a `preview` of its value.

    The preview is the first 200 characters of the value as UTF-8 (bad bytes replaced); null for
    a message without a value.
    """
    if limit < 1:
        raise ValueError(f"limit: must be >= 1, got {limit}")
    rows = frame(lake, QUARANTINE, [limit])
    previews = [_preview(v) for v in rows.get_column("value").to_list()]
    return rows.drop("value").with_columns(pl.Series("preview", previews, dtype=pl.String))


def _preview(value: bytes | None) -> str | None:
    if value is None:
        return None
    # A character takes at most 4 bytes: the first 4 * PREVIEW_CHARS bytes hold the preview.
    return value[: 4 * PREVIEW_CHARS].decode("utf-8", errors="replace")[:PREVIEW_CHARS]


# A reason reads "<field>: <rule>, got <value>"; reasons without a value may end in a driver's
# detail in parentheses. Cutting either off leaves the rule, the same for every value.
QUARANTINE_REASONS = r"""
select rule, count(*) as messages, max(received_at) as last_received_at
from (
    select regexp_replace(reason, '(, got .*| \(.*\))$', '', 's') as rule, received_at
    from quarantine
)
group by rule
order by messages desc, last_received_at desc, rule
"""


def quarantine_reasons(lake: Path) -> pl.DataFrame:
    """One row per reason rule (the reason without the value it got): messages, last received.

    Most messages first; ties by the most recently received.
    """
    return frame(lake, QUARANTINE_REASONS, [])


def ingest_status(lake: Path) -> dict[str, Any]:
    """What the running ingest last reported for this lake ({} if it never did).

    Keys as the consumer writes them: group, topic, lag, events_per_s, records, quarantined and
    updated_at (ISO 8601, UTC).
    """
    status = read_meta(Path(lake)).get("ingest")
    return dict(status) if isinstance(status, dict) else {}
