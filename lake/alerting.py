"""Alerts: the enabled thresholds of lake/thresholds.py applied to a batch of new jobs and failed
attempts, for ingest to call on every flush.

`evaluate_jobs` is pure (Arrow in, Arrow out) and reads neither the lake nor the store;
`batch_alerts` feeds it both. pyarrow only: the ingest writer process imports this, and Polars
and DuckDB would cost it about 45 MB (DuckDB comes in only when a failure rate needs the lake's
recent attempts). Nothing here imports `queries` or Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from lake.tables import ALERTS, JOB_FAILURES, JOBS, STANDARD_SCORES
from lake.thresholds import (
    FAILURE_RATE_MIN_ATTEMPTS,
    FAILURE_RATE_WINDOW,
    Threshold,
    direction,
    load_enabled,
)

#: Columns of a job or failure that an alert carries along.
_CONTEXT = [
    "event_id",
    "occurred_at",
    "job_id",
    "attempt",
    "workflow_id",
    "worker_id",
    "project_id",
    "scene_type",
    "resolution_tier",
    "ingested_at",
]
#: Metrics that are a typed column of a job, read as they are.
_COLUMN_METRICS = ("time_per_frame_ms", "total_gpu_time_ms", *STANDARD_SCORES)
_ATTEMPTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("workflow_id", pa.string()),
        ("worker_id", pa.string()),
        ("failed", pa.bool_()),
    ]
)
#: An array, or a column of a table: what pyarrow.compute takes and gives.
_Values: TypeAlias = pa.Array | pa.ChunkedArray


def evaluate_jobs(
    jobs: pa.Table | None,
    failures: pa.Table | None,
    thresholds: Sequence[Threshold],
    history: pa.Table | None = None,
) -> pa.Table:
    """One row per alert (ALERTS schema) raised by a batch of new jobs and failed attempts.

    Pure: the same inputs give the same rows, keyed (event_id, metric), so a replayed batch
    adds nothing. Per metric the most specific enabled threshold applies: the worker's, else the
    workflow's, else the global one. A value at or beyond a level reaches it (>= when high is
    bad, <= when low is bad); a row holds the worse level reached.

    Job metrics are read from completed jobs (`jobs`, JOBS schema): time_per_frame_ms,
    total_gpu_time_ms, vram_peak_pct (vram_peak_mb * 100 / vram_total_mb; none without either),
    and quality scores (the typed standard columns, any other name from quality_scores).

    failure_rate is evaluated when a failed attempt arrives (`failures`, JOB_FAILURES schema):
    failures / attempts over the batch's attempts (completed and failed) plus `history` (earlier
    attempts: event_id, workflow_id, worker_id, failed; see `recent_attempts`), of the failure's
    worker for a worker threshold, else of its workflow, and only with at least
    FAILURE_RATE_MIN_ATTEMPTS attempts. One alert per threshold and worker or workflow, on the
    batch's latest failure there (by occurred_at, then event_id).
    """
    jobs = JOBS.schema.empty_table() if jobs is None else jobs
    failures = JOB_FAILURES.schema.empty_table() if failures is None else failures
    metrics = sorted({t.metric for t in thresholds if t.enabled} - {"failure_rate"})
    parts = [_job_alerts(jobs, metric, _limits(thresholds, metric)) for metric in metrics]
    rates = _limits(thresholds, "failure_rate")
    if rates and failures.num_rows:
        parts.append(_failure_rate_alerts(jobs, failures, history, rates))
    found = pa.concat_tables(
        [ALERTS.schema.empty_table()]
        + [p.select(ALERTS.schema.names).cast(ALERTS.schema) for p in parts]
    )
    return found.sort_by([(c, "ascending") for c in ("occurred_at", "event_id", "metric")])


def _limits(thresholds: Sequence[Threshold], metric: str) -> list[Threshold]:
    """The enabled thresholds of `metric`: the rows of a metric refer to one by its index here."""
    return [t for t in thresholds if t.enabled and t.metric == metric]


def _job_values(jobs: pa.Table, metric: str) -> pa.ChunkedArray:
    """Per job, its value of `metric` as a float (null where the job has none)."""
    if metric == "vram_peak_pct":
        total = jobs.column("vram_total_mb")
        known = pc.if_else(pc.greater(total, 0), total, pa.scalar(None, total.type))
        # safe=False: past 2**53 an integer rounds to the nearest float instead of failing.
        peak = pc.cast(pc.multiply(jobs.column("vram_peak_mb"), 100), pa.float64(), safe=False)
        return pc.divide(peak, pc.cast(known, pa.float64(), safe=False))
    if metric in _COLUMN_METRICS:
        return pc.cast(jobs.column(metric), pa.float64(), safe=False)
    return pc.map_lookup(jobs.column("quality_scores"), metric, "first").cast(pa.float64())


def _resolve(rows: pa.Table, limits: list[Threshold]) -> pa.ChunkedArray:
    """Per row, the index in `limits` (one metric's) of the threshold that applies: the row's
    worker's, else its workflow's, else the global one; null where none does."""

    def scoped(scope: str, column: str) -> pa.ChunkedArray:
        indexes = [i for i, t in enumerate(limits) if t.scope == scope]
        ids = pa.array([limits[i].scope_id for i in indexes], pa.string())
        found = pc.index_in(rows.column(column), value_set=ids, skip_nulls=True)
        return pc.take(pa.array(indexes, pa.int64()), found)

    everywhere = next((i for i, t in enumerate(limits) if t.scope == "global"), None)
    return pc.coalesce(
        scoped("worker", "worker_id"),
        scoped("workflow", "workflow_id"),
        pa.scalar(everywhere, pa.int64()),
    )


def _field(limits: list[Threshold], name: str, type_: pa.DataType, chosen: _Values) -> _Values:
    """Per row, field `name` of the threshold at index `chosen` in `limits` (null for none)."""
    return pc.take(pa.array([getattr(t, name) for t in limits], type_), chosen)


def _reached(
    rows: pa.Table,
    metric: str,
    values: _Values,
    limits: list[Threshold],
    chosen: _Values,
    attempts: _Values | None = None,
) -> pa.Table:
    """The rows whose finite value reaches a level of their threshold (`chosen`: an index in
    `limits`), as alert columns: the rows' context, metric, value, the worse level reached and
    its limit, the threshold's id and scope, attempts (null when not given)."""
    warning = _field(limits, "warning", pa.float64(), chosen)
    critical = _field(limits, "critical", pa.float64(), chosen)
    at = pc.greater_equal if direction(metric) == "high" else pc.less_equal
    on_critical = pc.fill_null(at(values, critical), False)
    on_warning = pc.fill_null(at(values, warning), False)
    finite = pc.fill_null(pc.is_finite(values), False)
    columns = {
        "metric": pa.repeat(metric, rows.num_rows),
        "value": values,
        "level": pc.if_else(on_critical, "critical", "warning"),
        "threshold": pc.if_else(on_critical, critical, warning),
        "threshold_id": _field(limits, "id", pa.int64(), chosen),
        "scope": _field(limits, "scope", pa.string(), chosen),
        "scope_id": _field(limits, "scope_id", pa.string(), chosen),
        "attempts": pa.nulls(rows.num_rows, pa.int64()) if attempts is None else attempts,
    }
    found = rows.select(_CONTEXT)
    for name, column in columns.items():
        found = found.append_column(name, column)
    return found.filter(pc.and_(finite, pc.or_(on_critical, on_warning)))


def _job_alerts(jobs: pa.Table, metric: str, limits: list[Threshold]) -> pa.Table:
    """One row per job whose value of `metric` reaches a level of the threshold applied."""
    return _reached(jobs, metric, _job_values(jobs, metric), limits, _resolve(jobs, limits))


def _one_per(rows: pa.Table, keys: list[str], which: str) -> pa.Table:
    """The first (`which` "min") or last ("max") row of `rows` per distinct `keys`."""
    rows = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
    kept = rows.group_by(keys, use_threads=False).aggregate([("_row", which)])
    return rows.take(kept.column(f"_row_{which}")).drop_columns("_row")


def _attempts(table: pa.Table, failed: bool) -> pa.Table:
    rows = table.select(["event_id", "workflow_id", "worker_id"])
    return rows.append_column("failed", pa.repeat(pa.scalar(failed), rows.num_rows))


def _rates(jobs: pa.Table, failures: pa.Table, history: pa.Table | None) -> pa.Table:
    """One row per worker and per workflow (_by, _member) of the pooled attempts: `attempts`
    and `_failed`, the failures among them."""
    tables = [_attempts(failures, True), _attempts(jobs, False)]
    if history is not None:
        tables.append(history.select(_ATTEMPTS_SCHEMA.names))
    pool = pa.concat_tables(t.cast(_ATTEMPTS_SCHEMA) for t in tables)
    # An attempt already published (a replay, or history overlapping the batch) counts once.
    pool = _one_per(pool, ["event_id"], "min")
    failed = pc.cast(pc.fill_null(pool.column("failed"), False), pa.int64())
    pool = pool.set_column(pool.schema.get_field_index("failed"), "failed", failed)
    parts = []
    for by, column in (("worker", "worker_id"), ("workflow", "workflow_id")):
        counted = pool.group_by(column, use_threads=False).aggregate(
            [([], "count_all"), ("failed", "sum")]
        )
        parts.append(
            pa.table(
                {
                    "_by": pa.repeat(by, counted.num_rows),
                    "_member": counted.column(column),
                    "attempts": counted.column("count_all"),
                    "_failed": counted.column("failed_sum"),
                }
            )
        )
    return pa.concat_tables(parts)


def _failure_rate_alerts(
    jobs: pa.Table, failures: pa.Table, history: pa.Table | None, limits: list[Threshold]
) -> pa.Table:
    """One row per (threshold, worker or workflow) whose failure rate reaches a level, on the
    batch's latest failure there; `limits` are the failure_rate thresholds."""
    chosen = _resolve(failures, limits)
    by_worker = pc.equal(_field(limits, "scope", pa.string(), chosen), "worker")
    found = failures.select(_CONTEXT).append_column("_threshold", chosen)
    found = found.append_column("_by", pc.if_else(by_worker, "worker", "workflow"))
    members = pc.if_else(by_worker, failures.column("worker_id"), failures.column("workflow_id"))
    found = found.append_column("_member", members).filter(pc.is_valid(chosen))
    found = found.sort_by([("occurred_at", "ascending"), ("event_id", "ascending")])
    found = _one_per(found, ["_threshold", "_member"], "max")
    found = found.join(
        _rates(jobs, failures, history), ["_by", "_member"], join_type="inner", use_threads=False
    )
    found = found.filter(pc.greater_equal(found.column("attempts"), FAILURE_RATE_MIN_ATTEMPTS))
    rates = pc.divide(
        pc.cast(found.column("_failed"), pa.float64()),
        pc.cast(found.column("attempts"), pa.float64()),
    )
    chosen = found.column("_threshold")
    return _reached(found, "failure_rate", rates, limits, chosen, found.column("attempts"))


def recent_attempts(
    lake: Path, failures: pa.Table, window: timedelta = FAILURE_RATE_WINDOW
) -> pa.Table:
    """One row per attempt in the lake (event_id, workflow_id, worker_id, failed) that shares a
    workflow or worker with a failure of `failures`, from `window` before its earliest failure to
    its latest: the history `evaluate_jobs` pools with the batch for failure rates."""
    if failures.num_rows == 0:
        return _ATTEMPTS_SCHEMA.empty_table()
    start = pc.min(failures.column("occurred_at")).as_py() - window
    end = pc.max(failures.column("occurred_at")).as_py()
    workflows = pc.unique(failures.column("workflow_id")).to_pylist()
    workers = pc.unique(failures.column("worker_id")).to_pylist()
    params = [start.date(), end.date(), start, end, workflows, workers]
    # Imported here: DuckDB costs the ingest writer, which imports this module, about 20 MB,
    # and only a watched failure rate needs the lake.
    from lake import views

    with closing(views.connect(lake)) as con:
        rows = views.run(con, RECENT_ATTEMPTS, params * 2).fetchall()
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * 4
    return pa.table(list(columns), schema=_ATTEMPTS_SCHEMA)


RECENT_ATTEMPTS_PART = """select event_id, workflow_id, worker_id, {failed} as failed
from {view}
where date between ? and ?
    and occurred_at between ? and ?
    and (list_contains(?::varchar[], workflow_id) or list_contains(?::varchar[], worker_id))"""
RECENT_ATTEMPTS = (
    RECENT_ATTEMPTS_PART.format(failed="true", view="job_failures")
    + "\nunion all\n"
    + RECENT_ATTEMPTS_PART.format(failed="false", view="jobs")
)


def batch_alerts(lake: Path, jobs: pa.Table | None, failures: pa.Table | None) -> pa.Table:
    """One row per alert (ALERTS schema) for a batch: the lake's enabled thresholds, and its
    recent attempts when a failure rate is watched, applied by `evaluate_jobs`."""
    thresholds = load_enabled(lake)
    history = None
    if failures is not None and any(t.metric == "failure_rate" for t in thresholds):
        history = recent_attempts(lake, failures)
    return evaluate_jobs(jobs, failures, thresholds, history)


def alerts_by_day(alerts: pa.Table) -> list[tuple[date, pa.Table]]:
    """The alerts split per UTC day of occurred_at (the partition the writer publishes to)."""
    if alerts.num_rows == 0:
        return []
    days = pc.cast(alerts.column("occurred_at"), pa.date32())
    return [
        (day, alerts.filter(pc.equal(days, pa.scalar(day, pa.date32()))))
        for day in sorted(pc.unique(days).to_pylist())
    ]
