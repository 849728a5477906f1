"""Publishes rows into partitions: once per key, atomically, safe across processes.

Duplicates are kept out of the files (not filtered in the views, which must stay plain scans):
under the partition lock the writer learns the keys of every file it has not read yet, drops the
incoming rows it already holds, and publishes the rest by write-to-temp, fsync, rename.

A partition's known keys are kept as sorted 64-bit hashes (8 bytes a key, against about 100 as
Python strings), so thousands of partitions stay cached within a small memory budget. A hash says
for sure that a key is new; a key whose hash is known (a replay, or once in billions a collision)
is checked against the partition's actual keys, read from its files. The hashes are computed on
the key columns (`key_hashes`), and only the rows whose hash is known or repeats within the rows
being published are compared as Python values: a flush's rows cost no Python object each.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake import LakeError
from lake.layout import data_files, fsync_dir, partition_dir, partition_lock
from lake.tables import Table

#: DuckDB parallelises by row group; its own default row group size suits it best.
ROW_GROUP_SIZE = 122_880
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
#: Files of fewer rows are written with snappy, and with statistics on their timestamps only.
#: A small file costs per column chunk, not per byte: zstd sets up a context for each one
#: (about 10 us against 1 us), and string statistics compare every value. Ingest writes mostly
#: small files when it replays a backlog (a flush's share of each day of each table: 2,088
#: files for 1M demo events): about 20% less CPU to write them, for about 5% more bytes, and
#: `perflake compact` rewrites a past day's small files into one.
SMALL_FILE_ROWS = 2048


def _encodings(schema: pa.Schema) -> dict[str, object]:
    """Delta encoding for integers and timestamps (mostly increasing ids, offsets and times),
    dictionaries for the rest: about 15% smaller files than dictionaries everywhere, as fast.

    A map's keys and values are columns of their own in Parquet, named by their path: without
    a dictionary there, DuckDB read a month of the job sample's parameter maps 1.7x slower."""
    deltas = [
        f.name
        for f in schema
        if pa.types.is_timestamp(f.type) or f.type in (pa.int64(), pa.int32())
    ]
    return {
        "use_dictionary": [leaf for f in schema if f.name not in deltas for leaf in _leaves(f)],
        "column_encoding": dict.fromkeys(deltas, "DELTA_BINARY_PACKED"),
    }


def _options(data: pa.Table) -> dict[str, object]:
    """Compression, statistics and encodings of a file of `data` (see `SMALL_FILE_ROWS`)."""
    if data.num_rows >= SMALL_FILE_ROWS:
        codec: dict[str, object] = {
            "compression": COMPRESSION,
            "compression_level": COMPRESSION_LEVEL,
        }
    else:
        times = [f.name for f in data.schema if pa.types.is_timestamp(f.type)]
        codec = {"compression": "snappy", "write_statistics": times}
    return codec | _encodings(data.schema)


def _leaves(field: pa.Field, prefix: str = "") -> list[str]:
    """The Parquet column paths of a field: itself, or its leaves when nested."""
    path = f"{prefix}{field.name}"
    if pa.types.is_map(field.type):
        return [f"{path}.key_value.key", *_leaves(field.type.item_field, f"{path}.key_value.")]
    if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
        # Parquet names a list's values "element", whatever Arrow calls them.
        return _leaves(pa.field("element", field.type.value_type), f"{path}.list.")
    if pa.types.is_struct(field.type):
        return [leaf for child in field.type for leaf in _leaves(child, f"{path}.")]
    return [path]


class WriteError(LakeError):
    """A file could not be published."""


@dataclass
class _KnownKeys:
    files: set[str] = field(default_factory=set)
    #: One sorted array of key hashes per file (or per publish), see `_hashes`.
    hashes: list[np.ndarray] = field(default_factory=list)

    def maybe_known(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash, whether a known key has it (False: the key is surely new)."""
        hit = np.zeros(len(hashes), dtype=bool)
        for known in self.hashes:
            if not len(known):
                continue
            at = np.searchsorted(known, hashes).clip(max=len(known) - 1)
            hit |= known[at] == hashes
        return hit


#: Multiplier of the hash mix (the 64-bit golden ratio, odd).
_MIX = np.uint64(0x9E3779B97F4A7C15)


def key_hashes(table: Table, data: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's key, column by column (stable within the process, which is
    all the cache needs; equal keys always hash alike, unequal ones rarely)."""
    h = np.zeros(data.num_rows, dtype=np.uint64)
    for name in table.key:
        h = (h ^ _column_hashes(data.column(name))) * _MIX
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


def _column_hashes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integers as themselves; any other value by Python's hash of its distinct values (a
    stage's event id repeats per stage: each is hashed once). Null hashes as 0."""
    if pa.types.is_integer(column.type):
        return np.asarray(pc.fill_null(column, 0).cast(pa.int64())).view(np.uint64)
    return per_distinct(column, hash, np.int64, 0).view(np.uint64)


def per_distinct(
    column: pa.ChunkedArray | pa.Array, fn: Callable[[Any], Any], dtype: Any, null: Any
) -> np.ndarray:
    """`fn` of each value of `column` as a numpy array of `dtype`, called once per distinct
    value (an event id repeats once per stage); a null gives `null`."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    values = encoded.dictionary.to_pylist()
    distinct = np.fromiter(map(fn, values), dtype=dtype, count=len(values))
    distinct = np.append(distinct, np.array(null, dtype=dtype))  # the null's place, last
    return distinct[np.asarray(pc.fill_null(encoded.indices, len(values)))]


def row_keys(table: Table, data: pa.Table) -> list[Hashable]:
    """The key of each row of `data`: a value for one key column, a tuple for several."""
    columns = [data.column(c).to_pylist() for c in table.key]
    return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))


def write_parquet(data: pa.Table, path: Path, row_group_size: int = ROW_GROUP_SIZE) -> None:
    """Write `data` to `path` atomically: temporary name, fsync, rename, fsync of the folder."""
    # Process and thread in the name: two app threads may cache the same rollup at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        pq.write_table(data, tmp, row_group_size=row_group_size, **_options(data))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot publish {path}: {e}") from e


class LakeWriter:
    """Writes a lake's partitions, remembering the keys of recently used partitions."""

    def __init__(self, lake: Path, cached_partitions: int = 4096) -> None:
        self.lake = lake
        self._cached = cached_partitions
        self._known: OrderedDict[tuple[str, date], _KnownKeys] = OrderedDict()
        self._cache_lock = threading.Lock()

    def publish(self, table: Table, day: date, data: pa.Table, name: str) -> int:
        """Publish the rows of `data` not yet in partition `day`; returns how many were written."""
        if data.num_rows == 0:
            return 0
        folder = partition_dir(self.lake, table.name, day)
        with partition_lock(self.lake, table.name, day):
            known = self._refresh(table, day, folder)
            hashes = key_hashes(table, data)
            mask = self._fresh(table, folder, data, hashes, known.maybe_known(hashes))
            if not mask.any():
                return 0
            rows = data if mask.all() else data.filter(pa.array(mask))
            folder.mkdir(parents=True, exist_ok=True)
            path = self._free_path(folder, name)
            write_parquet(rows if rows.schema == table.schema else rows.cast(table.schema), path)
            known.files.add(path.name)
            known.hashes.append(np.sort(hashes[mask]))
            return rows.num_rows

    def _fresh(
        self, table: Table, folder: Path, data: pa.Table, hashes: np.ndarray, maybe: np.ndarray
    ) -> np.ndarray:
        """Per row, whether to write it: the first row of its key, a key not in the partition.

        A row whose hash is unknown and alone in `data` is surely fresh. The others (a known
        hash, or one that repeats here: a redelivery, or a collision) are compared as keys.
        """
        distinct, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        keep = np.zeros(len(hashes), dtype=bool)
        keep[first] = True
        exact = np.flatnonzero(maybe | np.isin(hashes, distinct[counts > 1]))
        if len(exact):
            held = self._keys_on_disk(table, folder) if maybe.any() else set()
            seen: set[Hashable] = set()
            for i, k in zip(exact.tolist(), row_keys(table, data.take(exact)), strict=True):
                keep[i] = not (maybe[i] and k in held) and k not in seen
                seen.add(k)
        return keep

    def forget(self, table: Table, day: date) -> None:
        """Drop the cached keys of a partition (after it was rewritten or deleted)."""
        with self._cache_lock:
            self._known.pop((table.name, day), None)

    def _refresh(self, table: Table, day: date, folder: Path) -> _KnownKeys:
        slot = (table.name, day)
        with self._cache_lock:  # threads publish into different partitions at once
            known = self._known.pop(slot, None) or _KnownKeys()
            self._known[slot] = known
            while len(self._known) > self._cached:
                self._known.popitem(last=False)
        on_disk = data_files(folder)
        names = {p.name for p in on_disk}
        if known.files - names:
            # Files went away (compaction, retention): rebuild from what is there now.
            known.files, known.hashes = set(), []
        for path in on_disk:
            if path.name not in known.files:
                known.hashes.append(np.sort(key_hashes(table, _file_key_columns(table, path))))
                known.files.add(path.name)
        return known

    @staticmethod
    def _keys_on_disk(table: Table, folder: Path) -> set[Hashable]:
        """Every key of the partition's files (read only when a hash matched)."""
        held: set[Hashable] = set()
        for path in data_files(folder):
            held.update(_file_keys(table, path))
        return held

    @staticmethod
    def _free_path(folder: Path, name: str) -> Path:
        path = folder / name
        n = 1
        while path.exists():
            stem = name.removesuffix(".parquet")
            path = folder / f"{stem}-{n}.parquet"
            n += 1
        return path


def _file_keys(table: Table, path: Path) -> list[Hashable]:
    return row_keys(table, _file_key_columns(table, path))


def _file_key_columns(table: Table, path: Path) -> pa.Table:
    try:
        return pq.read_table(path, columns=list(table.key))
    except (OSError, pa.ArrowException) as e:
        raise WriteError(f"cannot read keys of {path}: {e}") from e
