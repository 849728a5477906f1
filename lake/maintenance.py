"""Retention and compaction: whole-partition changes that a reader never sees half done.

Both work under the partition lock the writer takes, move folders in single atomic renames, and
leave what they replace in `_trash/` for a grace period, so a query that listed the old files a
moment before still finds them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake import rollup
from lake.layout import (
    data_files,
    ensure_lake,
    exchange_dirs,
    file_name,
    partition_days,
    partition_dir,
    partition_lock,
    staging_dir,
    trash_dir,
    write_meta,
)
from lake.tables import TABLES, Table
from lake.writer import row_keys, write_parquet

DEFAULT_KEEP_DAYS = 90
#: How long replaced files stay readable for queries that listed them before the swap.
TRASH_GRACE_S = 600.0


@dataclass(frozen=True)
class PartitionChange:
    table: str
    day: date
    files_before: int
    rows: int


def retention_cutoff(keep_days: int, today: date | None = None) -> date:
    """Oldest date inside a window of `keep_days` days ending today (UTC)."""
    if keep_days < 1:
        raise ValueError(f"keep_days: must be an integer >= 1, got {keep_days}")
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=keep_days - 1)


def expire(
    lake: Path, keep_days: int = DEFAULT_KEEP_DAYS, today: date | None = None
) -> list[PartitionChange]:
    """Drop every partition older than the retention window; one row per dropped partition."""
    lake = ensure_lake(lake)
    cutoff = retention_cutoff(keep_days, today)
    write_meta(lake, retention_floor=cutoff.isoformat(), keep_days=keep_days)
    dropped = []
    for table in TABLES.values():
        for day in partition_days(lake, table.name):
            if day >= cutoff:
                break
            with partition_lock(lake, table.name, day):
                folder = partition_dir(lake, table.name, day)
                files = len(data_files(folder))
                _to_trash(lake, folder, table.name)
            dropped.append(PartitionChange(table.name, day, files, 0))
    rollup.expire(lake, list(TABLES))
    purge_trash(lake)
    return dropped


def compact(lake: Path, today: date | None = None) -> list[PartitionChange]:
    """Merge each past day's files into one file per partition; one row per merged partition."""
    lake = ensure_lake(lake)
    today = today or datetime.now(UTC).date()
    merged = []
    for table in TABLES.values():
        for day in partition_days(lake, table.name):
            if day >= today:
                continue
            change = compact_partition(lake, table, day)
            if change:
                merged.append(change)
    purge_trash(lake)
    return merged


def compact_partition(lake: Path, table: Table, day: date) -> PartitionChange | None:
    """Merge one partition's files if it has several; None when there was nothing to merge."""
    with partition_lock(lake, table.name, day):
        folder = partition_dir(lake, table.name, day)
        files = data_files(folder)
        if len(files) < 2:
            return None
        data = pa.concat_tables(pq.read_table(f, schema=table.schema) for f in files)
        data = _first_per_key(table, data).sort_by(table.partition_by)
        staging = staging_dir(lake, table.name, day)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write_parquet(data, staging / file_name("compact", [f.name for f in files]))
        exchange_dirs(staging, folder)
        _to_trash(lake, staging, table.name)
        return PartitionChange(table.name, day, len(files), data.num_rows)


def _first_per_key(table: Table, data: pa.Table) -> pa.Table:
    seen: set[object] = set()
    mask = []
    for k in row_keys(table, data):
        mask.append(k not in seen)
        seen.add(k)
    return data if all(mask) else data.filter(pc.equal(pa.array(mask), True))


def _to_trash(lake: Path, folder: Path, table: str) -> None:
    target = trash_dir(lake) / table / f"{folder.name}.{time.time_ns()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(target)


def purge_trash(lake: Path, grace_s: float = TRASH_GRACE_S) -> int:
    """Delete trashed folders older than `grace_s` seconds; returns how many went."""
    root = trash_dir(lake)
    if not root.is_dir():
        return 0
    now = time.time_ns()
    gone = 0
    for folder in root.glob("*/*"):
        stamp = folder.name.rsplit(".", 1)[-1]
        if stamp.isdigit() and (now - int(stamp)) / 1e9 >= grace_s:
            shutil.rmtree(folder, ignore_errors=True)
            gone += 1
    return gone
