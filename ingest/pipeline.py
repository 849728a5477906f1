"""Decode -> buffer -> publish: the lake side of ingest, with its flush policy and counters.

Takes chunks of raw Kafka records, and after each flush reports the offsets that are safe to
commit (every record before them is in a published file). Knows no consumer: it runs inline in
the consumer's process or in a worker process (`ingest.runner`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from ingest.batch import Batch, Chunk, Decoded, Record
from ingest.columnar import Parsed
from lake.layout import ensure_lake, file_name, retention_floor
from lake.maintenance import retention_cutoff
from lake.tables import ALERTS, JOB_FAILURES, JOBS, Table
from lake.writer import LakeWriter

log = logging.getLogger(__name__)


#: Files a flush writes at once (each into its own partition, under that partition's lock).
#: Two: each file waits partly on its fsync; four measured no faster on 2 cores and held about
#: 30 MB more while writing a backlog.
PUBLISH_THREADS = 2


@dataclass(frozen=True)
class FlushPolicy:
    """When buffered records must be published: by count, by bytes, or by age."""

    max_records: int = 50_000
    max_bytes: int = 64 * 1024 * 1024
    max_latency_s: float = 5.0


@dataclass
class Stats:
    """Counters since start: records read, rows per table, quarantined, files published."""

    records: int = 0
    quarantined: int = 0
    files: int = 0
    flushes: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    last_flush_at: float = 0.0

    def merge(self, other: Stats) -> None:
        self.records += other.records
        self.quarantined += other.quarantined
        self.files += other.files
        self.flushes += other.flushes
        self.rows.update(other.rows)
        self.last_flush_at = max(self.last_flush_at, other.last_flush_at)


class Pipeline:
    """Buffers records from any number of Kafka partitions of one topic and publishes them."""

    def __init__(self, lake: Path, topic: str, keep_days: int, policy: FlushPolicy) -> None:
        self.lake = ensure_lake(lake, create=True)
        self.topic = topic
        self.keep_days = keep_days
        self.policy = policy
        self.writer = LakeWriter(self.lake)
        self._pool = ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="perflake-publish")
        self._publisher = ThreadPoolExecutor(1, thread_name_prefix="perflake-flush")
        self._in_flight: Future[tuple[int, Counter[str], dict[int, int]]] | None = None
        self.stats = Stats()
        self._batch = self._new_batch()
        self._oldest_at: float | None = None

    def add(self, records: list[Record] | Chunk) -> None:
        """Decode records into the buffer (bad ones into the quarantine buffer): a list of
        records of any partitions, or a chunk of one partition's."""
        chunks = [records] if isinstance(records, Chunk) else Chunk.of(records)
        if self._buffering(chunks):
            now = datetime.now(UTC)
            for chunk in chunks:
                self._batch.add_chunk(chunk, now)

    def add_parsed(self, chunks: list[Chunk], parsed: Parsed) -> None:
        """Decode chunks into the buffer whose values `ingest.columnar.parse_batch` parsed."""
        if self._buffering(chunks):
            self._batch.add_parsed(chunks, parsed, datetime.now(UTC))

    def _buffering(self, chunks: list[Chunk]) -> bool:
        """Count the chunks' records and start the latency clock; False when they hold none."""
        records = sum(len(c.offsets) for c in chunks)
        if not records:
            return False
        if self._oldest_at is None:
            self._oldest_at = time.monotonic()
        self.stats.records += records
        return True

    def due(self) -> bool:
        """Whether the buffer has reached a flush limit (count, bytes or latency)."""
        if self._oldest_at is None:
            return False
        p = self.policy
        return (
            self._batch.records >= p.max_records
            or self._batch.bytes >= p.max_bytes
            or time.monotonic() - self._oldest_at >= p.max_latency_s
        )

    def seconds_to_due(self) -> float:
        """Seconds until the latency limit forces a flush (inf when the buffer is empty)."""
        if self._oldest_at is None:
            return float("inf")
        return max(0.0, self.policy.max_latency_s - (time.monotonic() - self._oldest_at))

    def flush(self) -> dict[int, int]:
        """Publish everything buffered and wait; returns partition -> next offset, safe to commit
        (of this flush and of any earlier one still in flight)."""
        offsets = self.start_flush()
        offsets.update(self.wait())
        return offsets

    def start_flush(self) -> dict[int, int]:
        """Decode the buffer and publish it in the background, so that decoding the next records
        overlaps with writing these; returns the offsets of the publish that was in flight (waited
        for before this one starts: one at a time keeps commits in order and memory bounded)."""
        if not self._batch.partitions:
            return self.wait()
        batch, self._batch, self._oldest_at = self._batch, self._new_batch(), None
        name = file_name("part", batch.offset_ranges())
        decoded = batch.decode(datetime.now(UTC))
        self.stats.quarantined += decoded.quarantined
        offsets = self.wait()
        self._in_flight = self._publisher.submit(self._publish, decoded, name, batch.next_offsets())
        return offsets

    def published(self) -> dict[int, int]:
        """The offsets of the publish in flight if it has finished (empty otherwise)."""
        if self._in_flight is None or not self._in_flight.done():
            return {}
        return self.wait()

    def publishing(self) -> bool:
        """Whether a publish is in flight."""
        return self._in_flight is not None

    def wait(self) -> dict[int, int]:
        """Wait for the publish in flight; returns its offsets (empty when none was)."""
        if self._in_flight is None:
            return {}
        future, self._in_flight = self._in_flight, None
        files, rows, offsets = future.result()  # a publish error surfaces here
        self.stats.files += files
        self.stats.rows.update(rows)
        self.stats.flushes += 1
        self.stats.last_flush_at = time.time()
        return offsets

    def _publish(
        self, decoded: Decoded, name: str, offsets: dict[int, int]
    ) -> tuple[int, Counter[str], dict[int, int]]:
        parts = decoded.tables + self._alerts(decoded)
        # Files of different partitions are written side by side (a backlog spreads one flush
        # over tens of (table, day) partitions).
        written = self._pool.map(lambda p: self.writer.publish(p[0], p[1], p[2], name), parts)
        files, rows = 0, Counter[str]()
        for (table, _, _), n in zip(parts, written, strict=True):
            if n:
                files += 1
                rows[table.name] += n
        log.debug("published %s -> commit %s", name, offsets)
        return files, rows, offsets

    def _alerts(self, decoded: Decoded) -> list[tuple[Table, date, pa.Table]]:
        """The batch's jobs and failures against the enabled thresholds: alerts per day.

        Published under the same file name as the batch, so a replay rewrites the same alerts.
        """
        # Imported here, in the writer: the consumer's process, forked from before, never needs
        # thresholds (nor DuckDB, which they import only to read a watched failure rate's history).
        from lake.alerting import alerts_by_day, batch_alerts

        jobs = [d for t, _, d in decoded.tables if t is JOBS]
        failures = [d for t, _, d in decoded.tables if t is JOB_FAILURES]
        if not jobs and not failures:
            return []
        alerts = batch_alerts(
            self.lake,
            pa.concat_tables(jobs) if jobs else None,
            pa.concat_tables(failures) if failures else None,
        )
        return [(ALERTS, day, rows) for day, rows in alerts_by_day(alerts)]

    def drop(self, partitions: list[int]) -> dict[int, int]:
        """Forget the buffered records of revoked partitions; they will be read again.

        Waits for the publish in flight first and returns its offsets, as if the drop came after
        it (which it did: the records were read before the revocation)."""
        offsets = self.wait()
        for p in partitions:
            self._batch.drop(p)
        if not self._batch.partitions:
            self._oldest_at = None
        return offsets

    def _new_batch(self) -> Batch:
        oldest = retention_cutoff(self.keep_days)
        floor = retention_floor(self.lake)
        if floor and floor > oldest:
            oldest = floor
        return Batch(self.topic, oldest_day=oldest)
