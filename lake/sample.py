"""The job sample: a fixed 1 in SAMPLE_RATE of completed jobs, kept whole in table `jobs_sample`.

What reads every job's parameter and score maps (correlations, scatter, best configurations,
custom score trends) reads the sample instead once a range is large: reading maps costs about
0.4 s per million jobs, so a year of 10M jobs would take seconds. Whether a job belongs is
decided by a hash of its event id alone, so ingest, a replay and the backfill of an older lake
all pick the same jobs, and the sample deduplicates like any table.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lake.layout import data_files, ensure_lake, file_name, partition_days, partition_dir
from lake.tables import JOBS, JOBS_SAMPLE
from lake.writer import LakeWriter

#: One job in this many is in the sample.
SAMPLE_RATE = 16


def in_sample(event_ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Per event id, whether its job is in the sample: crc32 of its UTF-8 bytes % SAMPLE_RATE
    is 0 (stable across processes and versions, unlike Python's hash)."""
    ids = event_ids.to_pylist()
    kept = (zlib.crc32(i.encode()) % SAMPLE_RATE == 0 for i in ids)
    return pa.array(np.fromiter(kept, bool, len(ids)))


def sampled(jobs: pa.Table) -> pa.Table:
    """The rows of `jobs` (JOBS columns) that are in the sample."""
    return jobs.filter(in_sample(jobs.column("event_id")))


def backfill(lake: Path, writer: LakeWriter | None = None) -> int:
    """Write the sample of every day that has jobs but no `jobs_sample` folder (a lake written
    before the sample existed); the sampled rows written. Idempotent: the writer keeps one row
    per event id."""
    lake = ensure_lake(lake)
    writer = writer or LakeWriter(lake)
    have = set(partition_days(lake, JOBS_SAMPLE.name))
    written = 0
    for day in partition_days(lake, JOBS.name):
        if day in have:
            continue
        files = data_files(partition_dir(lake, JOBS.name, day))
        if not files:
            continue
        jobs = pa.concat_tables(pq.read_table(f, schema=JOBS.schema) for f in files)
        name = file_name("backfill", [f.name for f in files])
        written += writer.publish(JOBS_SAMPLE, day, sampled(jobs), name)
    return written
