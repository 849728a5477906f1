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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from lake.layout import PARQUET, data_files, partition_days, partition_dir
from lake.writer import WriteError, write_parquet

log = logging.getLogger(__name__)

#: A superseded rollup file is removed once it is this old (a query reading it is long done).
SUPERSEDED_GRACE_S = 600.0


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
    parts = []
    for table in rollup.tables:
        for path in data_files(partition_dir(lake, table, day)):
            try:
                st = path.stat()
            except FileNotFoundError:  # swapped away since the listing: the day is changing
                return f"changing-{time.time_ns()}"
            parts.append(f"{table}/{path.name}:{st.st_size}:{st.st_mtime_ns}")
    if not parts:
        return ""
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:24]


def state(lake: Path, rollup: Rollup, start: date | None, end: date | None) -> RollupState:
    """Which days of `start`..`end` (None = open) have a current rollup, which do not."""
    days = sorted({d for t in rollup.tables for d in partition_days(lake, t)})
    current: dict[date, Path] = {}
    stale: dict[date, str] = {}
    for day in days:
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        sig = signature(lake, rollup, day)
        if not sig:
            continue
        path = rollup_dir(lake, rollup, day) / f"{sig}{PARQUET}"
        if path.exists():
            current[day] = path
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


def scan_sql(files: Sequence[Path]) -> str:
    """A SQL relation over rollup files (their rows, each with its `date` column)."""
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def writable(lake: Path) -> bool:
    """Whether rollups can be cached in this lake (else they are computed on every read)."""
    root = lake / "_meta"
    return os.access(root if root.exists() else lake, os.W_OK)
