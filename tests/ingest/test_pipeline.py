"""The pipeline's flushes: published in the background, offsets reported only once published."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ingest.batch import Chunk, Record
from ingest.columnar import parse_batch
from ingest.pipeline import FlushPolicy, Pipeline
from tests.events import mixed_stream

TOPIC = "perf.job-events"


def records(partition: int, values: list[bytes], first: int = 0) -> list[Record]:
    return [Record(TOPIC, partition, first + i, 0, None, v) for i, v in enumerate(values)]


def rows(lake: Path, table: str) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (lake / table).rglob("*.parquet"))


def test_a_started_flush_reports_its_offsets_only_once_its_files_are_published(tmp_path):
    pipeline = Pipeline(tmp_path, TOPIC, keep_days=36500, policy=FlushPolicy())
    stream = mixed_stream(75)
    pipeline.add(records(0, stream[:50]) + records(1, stream[50:], first=100))
    assert pipeline.start_flush() == {}  # nothing was in flight before
    assert pipeline.publishing()
    offsets = pipeline.wait()
    assert offsets == {0: 50, 1: 125}
    assert not pipeline.publishing() and pipeline.published() == {}
    assert rows(tmp_path, "jobs") == 15  # mixed_stream cycles through the five event types
    assert pipeline.stats.rows["jobs"] == 15 and pipeline.stats.flushes == 1


def test_the_next_flush_waits_for_the_one_in_flight_and_returns_its_offsets(tmp_path):
    pipeline = Pipeline(tmp_path, TOPIC, keep_days=36500, policy=FlushPolicy())
    stream = mixed_stream(40)
    pipeline.add(records(0, stream[:20]))
    pipeline.start_flush()
    pipeline.add(records(0, stream[20:], first=20))
    assert pipeline.start_flush() == {0: 20}  # the first flush's, once it was published
    assert pipeline.wait() == {0: 40}
    assert rows(tmp_path, "jobs") == 8


def test_a_drop_waits_for_the_publish_in_flight_and_forgets_only_the_buffer(tmp_path):
    pipeline = Pipeline(tmp_path, TOPIC, keep_days=36500, policy=FlushPolicy())
    stream = mixed_stream(20)
    pipeline.add(records(0, stream[:10]))
    pipeline.start_flush()
    pipeline.add(records(0, stream[10:], first=10))
    assert pipeline.drop([0]) == {0: 10}
    assert pipeline.flush() == {}  # the dropped records are not published, nor committed
    assert rows(tmp_path, "jobs") == 2


def test_chunks_parsed_elsewhere_decode_as_raw_ones_do(tmp_path):
    stream = mixed_stream(30)
    chunks = [
        Chunk(TOPIC, p, list(range(10)), [0] * 10, [None] * 10, stream[p * 10 : p * 10 + 10])
        for p in range(3)
    ]
    parsed = Pipeline(tmp_path / "parsed", TOPIC, keep_days=36500, policy=FlushPolicy())
    parsed.add_parsed(chunks, parse_batch([v for c in chunks for v in c.values]))
    raw = Pipeline(tmp_path / "raw", TOPIC, keep_days=36500, policy=FlushPolicy())
    for chunk in chunks:
        raw.add(chunk)
    assert parsed.flush() == raw.flush() == {0: 10, 1: 10, 2: 10}
    for table in ("jobs", "job_stages", "worker_samples", "reviews", "deliveries"):
        a = pq.read_table(tmp_path / "parsed" / table).drop_columns(["ingested_at"])
        b = pq.read_table(tmp_path / "raw" / table).drop_columns(["ingested_at"])
        assert a.sort_by("event_id").equals(b.sort_by("event_id")), table
