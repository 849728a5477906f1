"""Per-day rollups: query-side caches of a day's aggregates, kept in `<lake>/_meta/rollups`.

A rollup is what a query module's aggregate SQL gives for one day (a few hundred rows where the
day holds tens of thousands of jobs); counts and sums add up across days, so a query over a
year reads 365 small files instead of 10M rows. The query side owns the SQL; this module owns
the files and says which days' rollups are current.

A rollup is current while its day's source files are the ones it was computed from: each file
is named for the day's signature (the names, sizes and modification times of the source
tables' files that day). A file ingest adds, a compaction, a replay or a retention changes the
signature, and the old rollup is simply no longer read: nothing has to invalidate it, and a
reader never mixes a rollup with the rows it already counts. The ingest path does not know
rollups exist (its speed is not spent on them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lake.layout import PARQUET, data_files, partition_days, partition_dir
from lake.writer import WriteError, write_parquet

log = logging.getLogger(__name__)

_DAY = "date="

#: A superseded rollup file is removed once it is this old (a query reading it is long done).
SUPERSEDED_GRACE_S = 600.0
#: Rollup files kept read in memory (a few hundred rows each; two years of days, two rollups).
MAX_CACHED_FILES = 2048

_lock = threading.Lock()
_tables: dict[Path, pa.Table] = {}
#: The last table `load` gave, with its files: a page's queries ask for the same range.
_loaded: list = []


@dataclass(frozen=True)
class Rollup:
    """A named per-day rollup of the source tables `tables` (the tables its SQL reads)."""

    name: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class RollupState:
    """Where a range's days stand: the current rollup file of each day that has one, and the
    days (with source files) that have none yet, each with its signature."""

    current: dict[date, Path]
    stale: dict[date, str]


def rollup_dir(lake: Path, rollup: Rollup, day: date) -> Path:
    return partition_dir(lake / "_meta" / "rollups", rollup.name, day)


def signature(lake: Path, rollup: Rollup, day: date) -> str:
    """The day's signature: a digest of its source files' names, sizes and modification times
    (empty when none of the tables has a file that day)."""
    return _signature(str(lake), rollup, f"{_DAY}{day.isoformat()}")


def _signature(lake: str, rollup: Rollup, folder: str) -> str:
    # Plain strings and scandir: `state` runs this for every day of a range on every query.
    parts = []
    for table in rollup.tables:
        try:
            with os.scandir(os.path.join(lake, table, folder)) as entries:
                files = sorted(
                    (e.name, e.stat())
                    for e in entries
                    if e.name.endswith(PARQUET) and not e.name.startswith(".")
                )
        except FileNotFoundError:
            continue
        parts += [f"{table}/{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in files]
    if not parts:
        return ""
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:24]


def state(lake: Path, rollup: Rollup, start: date | None, end: date | None) -> RollupState:
    """Which days of `start`..`end` (None = open) have a current rollup, which do not."""
    days = sorted({d for t in rollup.tables for d in partition_days(lake, t)})
    current: dict[date, Path] = {}
    stale: dict[date, str] = {}
    root = str(rollup_dir(lake, rollup, date.min).parent)
    for day in days:
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        folder = f"{_DAY}{day.isoformat()}"
        try:
            sig = _signature(str(lake), rollup, folder)
        except FileNotFoundError:  # a file swapped away since the listing: the day is changing
            sig = f"changing-{time.time_ns()}"
        if not sig:
            continue
        path = os.path.join(root, folder, f"{sig}{PARQUET}")
        if os.path.exists(path):
            current[day] = Path(path)
        else:
            stale[day] = sig
    return RollupState(current, stale)


def store(lake: Path, rollup: Rollup, day: date, sig: str, rows: pa.Table) -> Path | None:
    """Publish `rows` as the rollup of `day` for signature `sig` (atomically; an empty day gets
    an empty file, so it is not computed again); removes superseded files past their grace.
    None when the lake cannot be written here (a read-only mount): the day stays uncached."""
    folder = rollup_dir(lake, rollup, day)
    path = folder / f"{sig}{PARQUET}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(rows, path)
    except (OSError, WriteError) as e:
        log.warning("rollup %s of %s not cached: %s", rollup.name, day, e)
        return None
    _prune(folder, keep=path.name)
    return path


def _prune(folder: Path, keep: str) -> None:
    now = time.time()
    for old in data_files(folder):
        if old.name == keep:
            continue
        try:
            if now - old.stat().st_mtime > SUPERSEDED_GRACE_S:
                old.unlink()
        except FileNotFoundError:
            continue


def load(files: Sequence[Path]) -> pa.Table:
    """The rows of these rollup files as one table, the same file read once per process (a
    file's content never changes: a new one comes under a new name)."""
    with _lock:
        key = tuple(files)
        if _loaded and _loaded[0] == key:
            return _loaded[1]
        missing = [f for f in files if f not in _tables]
    read = {f: pq.read_table(f) for f in missing}
    with _lock:
        _tables.update(read)
        while len(_tables) > MAX_CACHED_FILES:
            _tables.pop(next(iter(_tables)))
        parts = [_tables.get(f) or pq.read_table(f) for f in files]
        table = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
        _loaded[:] = [key, table]
        return table


def writable(lake: Path) -> bool:
    """Whether rollups can be cached in this lake (else they are computed on every read)."""
    root = lake / "_meta"
    return os.access(root if root.exists() else lake, os.W_OK)
