"""Where things live in a lake folder: partitions, locks, staging, trash and the lake's metadata.

Layout: `<lake>/<table>/date=YYYY-MM-DD/<file>.parquet`. Everything else sits in folders that
start with `_` at the lake root, so the views' globs never see it.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from lake import LakeError, LakeNotFoundError

PARQUET = ".parquet"
_DATE_PREFIX = "date="
_META = "_meta/lake.json"


def partition_dir(lake: Path, table: str, day: date) -> Path:
    return lake / table / f"{_DATE_PREFIX}{day.isoformat()}"


def partition_glob(lake: Path, table: str) -> str:
    """The glob the views read: every published file of one table."""
    return str(lake / table / f"{_DATE_PREFIX}*" / f"*{PARQUET}")


def partition_days(lake: Path, table: str) -> list[date]:
    """Dates that have a partition folder, oldest first."""
    root = lake / table
    if not root.is_dir():
        return []
    days = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith(_DATE_PREFIX):
            try:
                days.append(date.fromisoformat(entry.name.removeprefix(_DATE_PREFIX)))
            except ValueError:
                continue
    return sorted(days)


def has_partitions(lake: Path, table: str) -> bool:
    """Whether `table` has a partition folder: stops at the first (no full listing)."""
    try:
        with os.scandir(lake / table) as entries:
            return any(e.name.startswith(_DATE_PREFIX) and e.is_dir() for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def data_files(folder: Path) -> list[Path]:
    """Published Parquet files of one partition folder (temporary files excluded), by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(PARQUET) and p.name[0] != ".")


def file_name(prefix: str, parts: list[str]) -> str:
    """A deterministic file name: the same inputs (e.g. Kafka offset ranges) give the same name."""
    digest = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:20]
    return f"{prefix}-{digest}{PARQUET}"


def staging_dir(lake: Path, table: str, day: date) -> Path:
    return lake / "_staging" / table / f"{_DATE_PREFIX}{day.isoformat()}"


def trash_dir(lake: Path) -> Path:
    return lake / "_trash"


def ensure_lake(lake: Path, create: bool = False) -> Path:
    """The lake folder, resolved; created when `create`, else LakeNotFoundError if missing."""
    lake = Path(lake).expanduser().resolve()
    if create:
        lake.mkdir(parents=True, exist_ok=True)
    elif not lake.is_dir():
        raise LakeNotFoundError(
            f"lake folder {lake} does not exist (run ingest or `make run` first)"
        )
    return lake


@contextmanager
def partition_lock(lake: Path, table: str, day: date) -> Iterator[None]:
    """Exclusive lock on one partition, shared by every process writing the lake on this host."""
    path = lake / "_locks" / table / f"{day.isoformat()}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def metadata_db(lake: Path) -> Path:
    """The lake's small transactional store (alert thresholds, report schedules and runs), a SQLite
    file beside lake.json."""
    return lake / "_meta" / "perflake.sqlite"


def report_history(lake: Path) -> Path:
    """The folder of every report file the scheduler generated: `<lake>/_reports`."""
    return lake / "_reports"


def report_run_dir(lake: Path, period_start: date, run_id: int) -> Path:
    """The files of one scheduled run: `<lake>/_reports/<yyyy>/run-<id>` (year of its period)."""
    return report_history(lake) / f"{period_start.year:04d}" / f"run-{run_id}"


def read_meta(lake: Path) -> dict[str, object]:
    path = lake / _META
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise LakeError(f"cannot read lake metadata {path}: {e}") from e


def write_meta(lake: Path, **values: object) -> None:
    """Merge `values` into the lake's metadata file, atomically."""
    path = lake / _META
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = read_meta(lake) | values
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def retention_floor(lake: Path) -> date | None:
    """Oldest date the last retention run kept; ingest never writes below it."""
    floor = read_meta(lake).get("retention_floor")
    return date.fromisoformat(str(floor)) if floor else None


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange_dirs(a: Path, b: Path) -> None:
    """Swap two folders in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    A reader listing either path sees the old folder or the new one, never a mix of both.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE):
        err = ctypes.get_errno()
        raise LakeError(f"cannot swap {a} and {b}: {os.strerror(err)}")
