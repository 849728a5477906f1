"""Alert thresholds: their rules and their SQLite store in the lake (lake/alerting.py evaluates
them on a batch).

The store (`_meta/perflake.sqlite`) is shared by the app and ingest: WAL mode, a busy timeout and
one `BEGIN IMMEDIATE` transaction per change. Nothing here imports `queries` or Streamlit.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lake import LakeError
from lake.layout import ensure_lake, metadata_db
from lake.store import BUSY_TIMEOUT_S, use_wal
from lake.store import connect as store_connect
from lake.tables import STANDARD_SCORES

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
