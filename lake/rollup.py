"""Rollups: query-side caches of aggregates per day, one file per month, kept in
`<lake>/_meta/rollups/<name>/month=YYYY-MM/<signature>.parquet`.

A rollup holds what a query module's aggregate SQL gives per day (a few hundred rows where the
day holds tens of thousands of jobs); counts and sums add up across days, so a query over a
year reads a dozen small files instead of 10M rows. The query side owns the SQL; this module
owns the files and says which months are current.

A month's file covers its settled days (before today, UTC) and is current while their source
files are the ones it was computed from: it is named for their signature (the days, and the
names, sizes and modification times of the source tables' files each day). A file ingest
adds, a compaction, a replay or a retention changes the signature, and the old file is simply
no longer read: nothing has to invalidate it, and a reader never counts rows twice. Today's
rows, still arriving, are never cached. The ingest path does not know rollups exist (its
speed is not spent on them).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lake.layout import PARQUET, data_files, partition_days
from lake.recent import Recent
from lake.writer import ROW_GROUP_SIZE, WriteError, write_parquet

log = logging.getLogger(__name__)

_DAY = "date="
_MONTH = "month="
#: A superseded rollup file is removed once it is this old (a query reading it is long done).
SUPERSEDED_GRACE_S = 600.0
#: Rollup files kept read in memory (a few thousand rows each).
MAX_CACHED_FILES = 256

_lock = threading.Lock()
_tables: dict[Path, pa.Table] = {}
#: The last table `load` gave, with its files: a page's queries ask for the same range.
_loaded: list = []


@dataclass(frozen=True)
class Rollup:
    """A named rollup of the source tables `tables` (the tables its SQL reads). `version` is
    what computes its rows (the SQL, say): it is part of every month's signature, so a release
    that changes it computes each month again instead of reading files made the old way."""

    name: str
    tables: tuple[str, ...]
    version: str = ""


@dataclass(frozen=True)
class Block:
    """A month's settled days with source files, and their signature."""

    month: str
    days: tuple[date, ...]
    signature: str


@dataclass(frozen=True)
class RollupState:
    """Where a range stands: the current file of each month that has one, the months whose
    file is missing or out of date, and the days still too recent to cache (today's)."""

    current: dict[str, Path]
    stale: list[Block]
    live: list[date]


#: Seconds a range's state, once every month in it has a current file, is reused by the next
#: queries (a page's) before the files are listed again (about 27 ms for a year of jobs and
#: failures): a new file counts within that, as the app's cache key does.
REUSE_S = 1.0
_states: Recent[tuple[Path, Rollup, date | None, date | None, date], RollupState] = Recent()


def state(
    lake: Path, rollup: Rollup, start: date | None, end: date | None, today: date
) -> RollupState:
    """Which months touching `start`..`end` (None = open) have a current file, which do not,
    and which of the range's days are from `today` on."""
    key = (lake, rollup, start, end, today)
    if (known := _states.get(key, REUSE_S)) is not None:
        return known
    found = _state(lake, rollup, start, end, today)
    if not found.stale:
        _states.put(key, found, REUSE_S)
    return found


def _state(
    lake: Path, rollup: Rollup, start: date | None, end: date | None, today: date
) -> RollupState:
    days = sorted({d for t in rollup.tables for d in partition_days(lake, t)})
    wanted = [d for d in days if (start is None or d >= start) and (end is None or d <= end)]
    months = sorted({_month(d) for d in wanted if d < today})
    root = _root(lake, rollup)
    current: dict[str, Path] = {}
    stale: list[Block] = []
    for month in months:
        settled = [d for d in days if _month(d) == month and d < today]
        block = _block(str(lake), rollup, month, settled)
        path = os.path.join(root, f"{_MONTH}{month}", f"{block.signature}{PARQUET}")
        if os.path.exists(path):
            current[month] = Path(path)
        else:
            stale.append(block)
    return RollupState(current, stale, [d for d in wanted if d >= today])


def _month(day: date) -> str:
    return day.isoformat()[:7]


def _root(lake: Path, rollup: Rollup) -> str:
    return str(lake / "_meta" / "rollups" / rollup.name)


def _block(lake: str, rollup: Rollup, month: str, days: list[date]) -> Block:
    """The block of `days` (one month's), with the signature of their files."""
    parts, kept = [], []
    for day in days:
        found = _day_files(lake, rollup, day)
        if found:
            parts.append(found)
            kept.append(day)
    digest = hashlib.sha1("\n".join([rollup.version, *parts]).encode()).hexdigest()[:24]
    return Block(month, tuple(kept), digest)


def _day_files(lake: str, rollup: Rollup, day: date) -> str:
    """One line per source file of `day`: table, name, size, modification time ('' if none).
    Plain strings and scandir: `state` runs this for every day of a range on every query."""
    folder = f"{_DAY}{day.isoformat()}"
    parts = []
    for table in rollup.tables:
        try:
            with os.scandir(os.path.join(lake, table, folder)) as entries:
                files = sorted(
                    (e.name, e.stat())
                    for e in entries
                    if e.name.endswith(PARQUET) and not e.name.startswith(".")
                )
        except FileNotFoundError:  # no such day, or a file swapped away since the listing
            continue
        parts += [f"{folder}/{table}/{n}:{st.st_size}:{st.st_mtime_ns}" for n, st in files]
    return "\n".join(parts)


def store(
    lake: Path, rollup: Rollup, block: Block, rows: pa.Table, row_group_size: int = ROW_GROUP_SIZE
) -> Path | None:
    """Publish `rows` as the file of `block` (atomically); removes the month's superseded files
    past their grace. None when the lake cannot be written here (a read-only mount): the
    month is then computed on every read."""
    folder = Path(_root(lake, rollup)) / f"{_MONTH}{block.month}"
    path = folder / f"{block.signature}{PARQUET}"
    # Published without replacing: a thread or process that got there first keeps its file. Two
    # computations of a month hold the same rows in another order, and a reader of the first
    # file (pyarrow opens it more than once) would otherwise get pages of the second.
    own = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(rows, own, row_group_size)
        with contextlib.suppress(FileExistsError):
            os.link(own, path)
    except (OSError, WriteError) as e:
        log.warning("rollup %s of %s not cached: %s", rollup.name, block.month, e)
        return None
    finally:
        own.unlink(missing_ok=True)
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
    """The rows of these rollup files as one table, each file read once per process (a file
    never changes: new content comes under a new name)."""
    key = tuple(files)
    with _lock:
        if _loaded and _loaded[0] == key:
            return _loaded[1]
        missing = [f for f in files if f not in _tables]
    read = {f: pq.read_table(f) for f in missing}
    with _lock:
        _tables.update(read)
        while len(_tables) > MAX_CACHED_FILES:
            _tables.pop(next(iter(_tables)))
        # A file evicted meanwhile by another range's load is read again.
        parts = [_tables[f] if f in _tables else pq.read_table(f) for f in files]
        table = pa.concat_tables(parts, promote_options="default")
        _loaded[:] = [key, table]
        return table


def expire(lake: Path, tables: Sequence[str]) -> int:
    """Remove the rollups of months none of `tables` has a day of any more (retention dropped
    them; a month it only cut short gets a new signature by itself); the folders removed."""
    months = {_month(d) for t in tables for d in partition_days(lake, t)}
    removed = 0
    root = lake / "_meta" / "rollups"
    for folder in sorted(root.glob(f"*/{_MONTH}*")) if root.is_dir() else []:
        if folder.name.removeprefix(_MONTH) not in months:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def writable(lake: Path) -> bool:
    """Whether rollups can be cached in this lake (else they are computed on every read)."""
    root = lake / "_meta"
    return os.access(root if root.exists() else lake, os.W_OK)
