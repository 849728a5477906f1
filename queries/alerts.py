"""Alert queries: the alerts ingest recorded, grouped for a watch list, and the thresholds behind
them.

Reads the `alerts` view and the lake's threshold store (through `lake.thresholds`); knows nothing
of Streamlit.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lake.thresholds import LEVELS, list_thresholds
from queries.base import Filters, frame

#: Alerts the app lists one by one at most (its counts come from `active_alerts`).
LISTED = 1000

ALERTS = """
select occurred_at, level, metric, value, threshold, scope, scope_id, workflow_id, worker_id,
    job_id
from alerts
where {where}
    and level in ({levels})
order by occurred_at desc, event_id, metric
{limit}
"""


def alerts(
    lake: Path, filters: Filters, level: str | None = None, limit: int | None = None
) -> pl.DataFrame:
    """One row per alert in range, newest first (ties by event and metric).

    `level` keeps only 'warning' or 'critical' alerts (None: both); `limit` keeps the newest
    that many (None: all; `active_alerts` counts them all).
    """
    if level is not None and level not in LEVELS:
        raise ValueError(f"level: must be one of {', '.join(LEVELS)} or none, got {level!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit: must be >= 1, got {limit}")
    levels = LEVELS if level is None else (level,)
    where, params = filters.where("alerts")
    sql = ALERTS.format(
        where=where, levels=", ".join("?" * len(levels)), limit="limit ?" if limit else ""
    )
    return frame(lake, sql, [*params, *levels, *([limit] if limit else [])], within=filters)


ACTIVE_ALERTS = """
select metric, level, workflow_id, worker_id, count(*) as alerts, max(occurred_at) as last_at
from alerts
where {where}
group by metric, level, workflow_id, worker_id
order by level = 'critical' desc, last_at desc, metric, workflow_id, worker_id
"""


def active_alerts(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per metric, level, workflow and worker with alerts in range: how many, and the
    last one's time. Critical first, then the most recent."""
    where, params = filters.where("alerts")
    return frame(lake, ACTIVE_ALERTS.format(where=where), params, within=filters)


THRESHOLD_SCHEMA = pl.Schema(
    {
        "id": pl.Int64(),
        "metric": pl.String(),
        "bad_when": pl.String(),
        "scope": pl.String(),
        "scope_id": pl.String(),
        "warning": pl.Float64(),
        "critical": pl.Float64(),
        "enabled": pl.Boolean(),
    }
)


def thresholds(lake: Path) -> pl.DataFrame:
    """One row per stored threshold, enabled or not, ordered by metric, scope (global, workflow,
    worker) and scope_id; `bad_when` is 'high' or 'low'."""
    rows = [
        (t.id, t.metric, t.direction, t.scope, t.scope_id, t.warning, t.critical, t.enabled)
        for t in list_thresholds(lake)
    ]
    return pl.DataFrame(rows, schema=THRESHOLD_SCHEMA, orient="row")
