"""The job sample: a fixed 1 in SAMPLE_RATE of job attempts, kept whole in `jobs_sample` (the
completed jobs) and `job_stages_sample` (the stages of the sampled completed and failed attempts).

Queries over a large range read the sample where every row costs: the parameter and score maps
(about 0.4 s per million jobs), percentiles and histograms (a sort of every value). Whether an
attempt belongs is decided by a hash of its event id alone, so ingest, a replay and the backfill
of an older lake all pick the same attempts, a job and its stages together, and the samples
deduplicate like any table.
"""

from __future__ import annotations

import zlib
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake.layout import data_files, ensure_lake, file_name, partition_days, partition_dir
from lake.tables import TABLES, Table
from lake.writer import LakeWriter, per_distinct

#: One attempt in this many is in the sample.
SAMPLE_RATE = 16
#: Sampled table name -> its sample table.
SAMPLES: dict[str, Table] = {t.sample_of: t for t in TABLES.values() if t.sample_of}


def in_sample(event_ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Per event id, whether its attempt is in the sample: crc32 of its UTF-8 bytes %
    SAMPLE_RATE is 0 (stable across processes and versions, unlike Python's hash)."""
    return pa.array(per_distinct(event_ids, _kept, bool, False))


def _kept(event_id: str) -> bool:
    return zlib.crc32(event_id.encode()) % SAMPLE_RATE == 0


def sampled(rows: pa.Table) -> pa.Table:
    """The rows of `rows` (any table with an event_id) whose attempt is in the sample."""
    return rows.filter(in_sample(rows.column("event_id")))


def backfill(lake: Path, writer: LakeWriter | None = None) -> int:
    """Complete the sample of every day where it lacks rows of its table (a lake, or a day's
    first files, written before the sample existed); the sampled rows written.

    A day is checked by counting, not by its folder: its table's rows whose event id is in the
    sample (their keys read alone, each distinct id hashed once) against its sample's rows. Only
    a day that falls short is read whole; the writer keeps one row per key, so what is there
    already is not written twice. About 18 s to check a year of 10M jobs and their 45M stages.
    """
    lake = ensure_lake(lake)
    writer = writer or LakeWriter(lake)
    written = 0
    for name, sample in SAMPLES.items():
        table = TABLES[name]
        for day in partition_days(lake, name):
            files = data_files(partition_dir(lake, name, day))
            if not files or _held(lake, sample, day) >= _expected(files):
                continue
            rows = pa.concat_tables(pq.read_table(f, schema=table.schema) for f in files)
            target = file_name("backfill", [f.name for f in files])
            written += writer.publish(sample, day, sampled(rows), target)
    return written


def _expected(files: list[Path]) -> int:
    """Rows of these files whose event id is in the sample."""
    ids = pa.concat_arrays(
        [c for f in files for c in pq.read_table(f, columns=["event_id"]).column(0).chunks]
    )
    distinct = pc.unique(ids)
    kept = distinct.filter(in_sample(distinct))
    return int(pc.sum(pc.is_in(ids, value_set=kept)).as_py() or 0)


def _held(lake: Path, sample: Table, day: date) -> int:
    """Rows of the sample's partition of `day` (from the files' footers)."""
    files = data_files(partition_dir(lake, sample.name, day))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
