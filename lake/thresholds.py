"""Alert thresholds: their rules, their SQLite store in the lake, and their evaluation on a batch.

The store (`_meta/perflake.sqlite`) is shared by the app and ingest: WAL mode, a busy timeout and
one `BEGIN IMMEDIATE` transaction per change. `evaluate_jobs` is pure (Arrow in, Arrow out) and
reads neither the lake nor the store; `batch_alerts` feeds it both, for ingest to call on every
flush. Nothing here imports `queries` or Streamlit.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from lake import LakeError
from lake.layout import ensure_lake, metadata_db
from lake.store import BUSY_TIMEOUT_S, use_wal
from lake.store import connect as store_connect
from lake.tables import ALERTS, JOB_FAILURES, JOBS, STANDARD_SCORES

#: Metric -> the direction that is bad. Any other score name in quality_scores is allowed too,
#: and is bad when low.
THRESHOLD_METRICS: dict[str, str] = {
    "time_per_frame_ms": "high",
    "vram_peak_pct": "high",
    "total_gpu_time_ms": "high",
    **dict.fromkeys(STANDARD_SCORES, "low"),
    "failure_rate": "high",
}
SCOPES = ("global", "workflow", "worker")
LEVELS = ("warning", "critical")
#: The thresholds a new lake starts with: VRAM peak at 85% / 95% of the worker's memory.
DEFAULTS: tuple[tuple[str, float, float], ...] = (("vram_peak_pct", 85.0, 95.0),)
#: A failure rate needs this many attempts behind it before it may alert.
FAILURE_RATE_MIN_ATTEMPTS = 10
#: How far before a batch's failures `recent_attempts` looks for earlier attempts.
FAILURE_RATE_WINDOW = timedelta(hours=1)
#: Seconds a writer waits for another process's transaction before giving up.

_SCORE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# Closed ranges of values per metric; metrics not listed take any number >= 0, custom scores any.
_RANGES: dict[str, tuple[float, float]] = {
    "vram_peak_pct": (0.0, 100.0),
    "failure_rate": (0.0, 1.0),
    **dict.fromkeys(STANDARD_SCORES, (0.0, 1.0)),
}


class ThresholdError(LakeError, ValueError):
    """A threshold breaks a rule; `field` names the field, the message the rule and the value."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


class ThresholdStoreError(LakeError):
    """The threshold store could not be read or written."""


@dataclass(frozen=True)
class Threshold:
    """Warning and critical levels of one metric for everything, one workflow or one worker."""

    id: int | None = None
    metric: str = ""
    scope: str = "global"
    scope_id: str | None = None
    warning: float | None = None
    critical: float | None = None
    enabled: bool = True

    @property
    def direction(self) -> str:
        return direction(self.metric)


def direction(metric: str) -> str:
    """'high' or 'low': which way `metric` is bad (custom quality scores are bad when low)."""
    return THRESHOLD_METRICS.get(metric, "low")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else str(x)


def _level(metric: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    low, high = _RANGES.get(
        metric, (0.0, math.inf) if metric in THRESHOLD_METRICS else (-math.inf, math.inf)
    )
    if ok and low <= value <= high:
        return float(value)
    if math.isinf(low):
        rule = "a number"
    elif math.isinf(high):
        rule = f"a number >= {_num(low)}"
    else:
        rule = f"a number between {_num(low)} and {_num(high)}"
    raise ThresholdError(name, f"must be {rule} for {metric}, got {value!r}")


def validate(threshold: Threshold) -> Threshold:
    """The threshold, normalised (stripped names, float levels); ThresholdError names a broken rule."""
    t = threshold
    metric = t.metric.strip() if isinstance(t.metric, str) else ""
    if not metric:
        raise ThresholdError("metric", "required")
    if metric not in THRESHOLD_METRICS and not _SCORE_NAME.fullmatch(metric):
        known = ", ".join(THRESHOLD_METRICS)
        raise ThresholdError(
            "metric",
            f"must be one of {known} or a quality score name (letters, digits, _ . : -), "
            f"got {t.metric!r}",
        )
    if t.scope not in SCOPES:
        raise ThresholdError("scope", f"must be one of {', '.join(SCOPES)}, got {t.scope!r}")
    scope_id = t.scope_id.strip() if isinstance(t.scope_id, str) else t.scope_id
    if t.scope == "global" and scope_id:
        raise ThresholdError("scope_id", f"must be empty for scope global, got {t.scope_id!r}")
    if t.scope != "global" and not (isinstance(scope_id, str) and scope_id):
        raise ThresholdError("scope_id", f"required for scope {t.scope}")
    warning = _level(metric, "warning", t.warning)
    critical = _level(metric, "critical", t.critical)
    if warning is None and critical is None:
        raise ThresholdError("warning", "set a warning or a critical level (or both)")
    bad = direction(metric)
    if warning is not None and critical is not None:
        beyond = critical > warning if bad == "high" else critical < warning
        if not beyond:
            side = "above" if bad == "high" else "below"
            raise ThresholdError(
                "critical",
                f"must lie {side} warning ({_num(warning)}) because {metric} is bad when {bad}, "
                f"got {_num(critical)}",
            )
    if not isinstance(t.enabled, bool):
        raise ThresholdError("enabled", f"must be true or false, got {t.enabled!r}")
    return replace(t, metric=metric, scope_id=scope_id or None, warning=warning, critical=critical)


# --- the store -------------------------------------------------------------------------------

_SCHEMA_VERSION = 1
_SCHEMA = (
    """create table if not exists thresholds (
    id integer primary key,
    metric text not null,
    scope text not null,
    scope_id text,
    warning real,
    critical real,
    enabled integer not null default 1,
    updated_at text not null
)""",
    # One threshold per metric and scope; a global one has a null scope_id.
    """create unique index if not exists thresholds_target
    on thresholds (metric, scope, ifnull(scope_id, ''))""",
    # Names of the seeds applied, so a deleted default does not come back.
    "create table if not exists seeds (name text primary key, applied_at text not null)",
)
_SEED = "insert or ignore into seeds (name, applied_at) values ('defaults-1', ?)"
_INSERT = """insert into thresholds (metric, scope, scope_id, warning, critical, enabled, updated_at)
values (?, ?, ?, ?, ?, ?, ?)"""
_UPDATE = """update thresholds
set metric = ?, scope = ?, scope_id = ?, warning = ?, critical = ?, enabled = ?, updated_at = ?
where id = ?"""
_SELECT = """select id, metric, scope, scope_id, warning, critical, enabled
from thresholds
{where}
order by metric, case scope when 'global' then 0 when 'workflow' then 1 else 2 end, scope_id, id"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _open(lake: Path) -> sqlite3.Connection:
    """A connection to the lake's store, its schema created and its defaults seeded once."""
    con = store_connect(lake, ThresholdStoreError, "the threshold store")
    try:
        if con.execute("pragma user_version").fetchone()[0] != _SCHEMA_VERSION:
            use_wal(con, BUSY_TIMEOUT_S)
            with con:
                con.execute("begin immediate")
                for statement in _SCHEMA:
                    con.execute(statement)
                if con.execute(_SEED, [_now()]).rowcount:
                    for metric, warning, critical in DEFAULTS:
                        con.execute(_INSERT, [metric, "global", None, warning, critical, 1, _now()])
                con.execute(f"pragma user_version = {_SCHEMA_VERSION}")
    except sqlite3.Error as e:
        con.close()
        raise ThresholdStoreError(
            f"cannot prepare the threshold store {metadata_db(lake)}: {e}"
        ) from e
    return con


@contextmanager
def _store(lake: Path) -> Iterator[sqlite3.Connection]:
    with closing(_open(lake)) as con:
        try:
            yield con
        except sqlite3.Error as e:
            raise ThresholdStoreError(f"threshold store of {lake}: {e}") from e


def _threshold(row: tuple[Any, ...]) -> Threshold:
    id_, metric, scope, scope_id, warning, critical, enabled = row
    return Threshold(id_, metric, scope, scope_id, warning, critical, bool(enabled))


def _select(
    con: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()
) -> list[Threshold]:
    return [_threshold(r) for r in con.execute(_SELECT.format(where=where), params).fetchall()]


def list_thresholds(lake: Path) -> list[Threshold]:
    """One per threshold: ordered by metric, then global, workflow, worker scope, then scope_id."""
    with _store(lake) as con:
        return _select(con)


def save_threshold(lake: Path, threshold: Threshold) -> Threshold:
    """The threshold as stored: inserted when its id is None, else updated by id."""
    t = validate(threshold)
    values = [t.metric, t.scope, t.scope_id, t.warning, t.critical, int(t.enabled), _now()]
    with _store(lake) as con:
        try:
            with con:
                if t.id is None:
                    id_ = con.execute(_INSERT, values).lastrowid
                else:
                    if not con.execute(_UPDATE, [*values, t.id]).rowcount:
                        raise ThresholdError("id", f"no threshold has id {t.id}")
                    id_ = t.id
        except sqlite3.IntegrityError as e:
            where = "globally" if t.scope == "global" else f"for {t.scope} {t.scope_id}"
            raise ThresholdError(
                "scope" if t.scope == "global" else "scope_id",
                f"a threshold on {t.metric} already exists {where}; edit that one",
            ) from e
        return _select(con, "where id = ?", [id_])[0]


def delete_threshold(lake: Path, id: int) -> None:
    """Remove threshold `id`; ThresholdError if there is none."""
    with _store(lake) as con, con:
        if not con.execute("delete from thresholds where id = ?", [id]).rowcount:
            raise ThresholdError("id", f"no threshold has id {id}")


def set_enabled(lake: Path, id: int, enabled: bool) -> Threshold:
    """Threshold `id` with its enabled flag set, as stored."""
    if not isinstance(enabled, bool):
        raise ThresholdError("enabled", f"must be true or false, got {enabled!r}")
    with _store(lake) as con:
        with con:
            changed = con.execute(
                "update thresholds set enabled = ?, updated_at = ? where id = ?",
                [int(enabled), _now(), id],
            ).rowcount
        if not changed:
            raise ThresholdError("id", f"no threshold has id {id}")
        return _select(con, "where id = ?", [id])[0]


@dataclass
class _Cached:
    con: sqlite3.Connection
    inode: int
    version: int
    thresholds: list[Threshold]


_cache = threading.local()
_CACHED_LAKES = 8


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return -1


def load_enabled(lake: Path) -> list[Threshold]:
    """One per enabled threshold, as `list_thresholds` orders them; cheap to call on every flush.

    Each thread keeps a connection per lake and rereads only when SQLite's `data_version` says
    another connection committed since (or the file was replaced).
    """
    path = metadata_db(ensure_lake(lake))
    cache: dict[Path, _Cached] = _cache.__dict__.setdefault("lakes", {})
    entry = cache.get(path)
    try:
        inode = _inode(path) if entry else -1
        if entry and inode == entry.inode:
            version = entry.con.execute("pragma data_version").fetchone()[0]
            if version == entry.version:
                return list(entry.thresholds)
        if entry:
            entry.con.close()
            del cache[path]
        con = _open(lake)
        version = con.execute("pragma data_version").fetchone()[0]
        thresholds = _select(con, "where enabled = 1")
    except (OSError, sqlite3.Error) as e:
        raise ThresholdStoreError(f"cannot read the thresholds of {lake}: {e}") from e
    cache[path] = _Cached(con, _inode(path), version, thresholds)
    while len(cache) > _CACHED_LAKES:
        cache.pop(next(iter(cache))).con.close()
    return list(thresholds)


# --- evaluation ------------------------------------------------------------------------------

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
