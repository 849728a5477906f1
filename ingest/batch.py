"""Buffers decoded Kafka records per partition and turns them into Arrow tables per lake partition.

One buffer per Kafka partition, so a revoked partition's records can be dropped whole. Knows
nothing of the consumer or the broker; the tests fill it by hand.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest import columnar
from ingest.decode import Event, Rejection, decode_value
from ingest.fields import day_of
from lake.sample import SAMPLES, sampled
from lake.tables import JOB_STAGES, JOBS, QUARANTINE, TABLES, Table

_MAP_COLUMNS = {"quality_scores", "params", "params_num"}
_DAY_US = 86_400_000_000
#: The day number column `_by_day` sorts and cuts by.
_DAY = "_day"
_EPOCH = date(1970, 1, 1)


@dataclass
class PartitionBuffer:
    """Offsets, bytes and quarantined messages read from one Kafka partition since the flush."""

    first_offset: int
    last_offset: int = -1
    records: int = 0
    bytes: int = 0
    quarantined: int = 0


class Record(NamedTuple):
    """The parts of a Kafka record ingest needs (kafka-python's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch; -1 when the broker gave none
    key: bytes | None
    value: bytes | None


class Chunk(NamedTuple):
    """Consecutive records of one Kafka partition, as columns.

    The form records travel in to the writer process: one object of plain lists pickles several
    times faster than as many Records, and the batch keeps them as they come.
    """

    topic: str
    partition: int
    offsets: list[int]
    timestamps: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]

    def record(self, i: int, value: bytes | None = None) -> Record:
        """Record `i`, with `value` when the chunk travelled without its values."""
        return Record(
            self.topic,
            self.partition,
            self.offsets[i],
            self.timestamps[i],
            self.keys[i],
            self.values[i] if self.values else value,
        )

    def without_values(self) -> Chunk:
        """The chunk with no values: they travel joined in `columnar.Parsed` instead."""
        return self._replace(values=[])

    @staticmethod
    def of(records: list[Record]) -> list[Chunk]:
        """`records` as chunks: one per run of records of the same partition, in order."""
        chunks: list[Chunk] = []
        for r in records:
            last = chunks[-1] if chunks else None
            if last is None or last.partition != r.partition or last.topic != r.topic:
                last = Chunk(r.topic, r.partition, [], [], [], [])
                chunks.append(last)
            last.offsets.append(r.offset)
            last.timestamps.append(r.timestamp)
            last.keys.append(r.key)
            last.values.append(r.value)
        return chunks


@dataclass
class Decoded:
    """A flush's records decoded: one Arrow table per (lake table, day), and the quarantined."""

    tables: list[tuple[Table, date, pa.Table]]
    quarantined: int


#: Records decoded together as they arrive, while the consumer reads the next ones.
CHUNK = 16384


class Batch:
    """Everything read since the last flush, buffered per Kafka partition.

    Records are decoded in chunks as they arrive: `ingest.columnar` takes what it can prove
    valid in bulk, `ingest.decode` takes the rest one by one (`columnar=False`: all of them).
    The flush then only sorts, stamps and cuts the decoded rows by day.
    """

    def __init__(self, topic: str, oldest_day: date | None = None, columnar: bool = True) -> None:
        self.topic = topic
        self.oldest_day = oldest_day
        self.columnar = columnar
        self.partitions: dict[int, PartitionBuffer] = {}
        self._pending: list[Chunk] = []
        self._pending_records = 0
        # Decoded rows per lake table, in the staging shape (see `_staged`).
        self._decoded: dict[str, list[pa.Table]] = defaultdict(list)

    @property
    def records(self) -> int:
        return sum(b.records for b in self.partitions.values())

    @property
    def bytes(self) -> int:
        return sum(b.bytes for b in self.partitions.values())

    def add(self, record: Record, now: datetime) -> None:
        """Buffer one record (see `add_chunk`)."""
        for chunk in Chunk.of([record]):
            self.add_chunk(chunk, now)

    def add_chunk(self, chunk: Chunk, now: datetime) -> None:
        """Buffer consecutive records of one partition; every CHUNK records, decode those pending.

        `now` (UTC) bounds how far in the future an event may lie.
        """
        if not chunk.offsets:
            return
        self._account(chunk)
        self._pending.append(chunk)
        self._pending_records += len(chunk.offsets)
        if self._pending_records >= CHUNK:
            self._decode_pending(now)

    def add_parsed(self, chunks: list[Chunk], parsed: columnar.Parsed, now: datetime) -> None:
        """Buffer chunks whose values, one after the other, `columnar.parse_batch` parsed, and
        decode them at once (see `add_chunk`). The chunks may come without their values
        (`Chunk.without_values`): `parsed` holds them."""
        chunks = [c for c in chunks if c.offsets]
        if not chunks:
            return
        assert self.columnar, "parsed chunks need the columnar decoder"
        first = 0
        for chunk in chunks:
            end = first + len(chunk.offsets)
            self._account(chunk, parsed.bytes_between(first, end))
            first = end
        self._decode(chunks, parsed, now)

    def _account(self, chunk: Chunk, size: int | None = None) -> None:
        buf = self.partitions.get(chunk.partition)
        if buf is None:
            buf = self.partitions[chunk.partition] = PartitionBuffer(chunk.offsets[0])
        buf.last_offset = chunk.offsets[-1]
        buf.records += len(chunk.offsets)
        buf.bytes += sum(len(v) for v in chunk.values if v) if size is None else size

    def drop(self, partition: int) -> None:
        """Forget a partition's buffer (it was revoked; its records will be read again)."""
        self.partitions.pop(partition, None)
        self._pending = [c for c in self._pending if c.partition != partition]
        self._pending_records = sum(len(c.offsets) for c in self._pending)
        for name, parts in self._decoded.items():
            self._decoded[name] = [
                p.filter(pc.not_equal(p.column("kafka_partition"), partition)) for p in parts
            ]

    def offset_ranges(self) -> list[str]:
        """`topic:partition:first-last` of every buffered partition, the flush's identity."""
        return [
            f"{self.topic}:{p}:{b.first_offset}-{b.last_offset}"
            for p, b in sorted(self.partitions.items())
        ]

    def next_offsets(self) -> dict[int, int]:
        """Per partition, the offset to commit once this batch is published."""
        return {p: b.last_offset + 1 for p, b in self.partitions.items()}

    def decode(self, now: datetime) -> Decoded:
        """The buffered records as Arrow tables per (lake table, day), rows in Kafka order
        (partition, offset); `now` (UTC) stamps `ingested_at`."""
        self._decode_pending(now)
        out = []
        for name, parts in self._decoded.items():
            out += _by_day(TABLES[name], pa.concat_tables(parts), now)
        samples = [
            (SAMPLES[t.name], day, sampled(rows)) for t, day, rows in out if t.name in SAMPLES
        ]
        out += [s for s in samples if s[2].num_rows]
        quarantined = sum(b.quarantined for b in self.partitions.values())
        return Decoded(sorted(out, key=lambda t: (t[0].name, t[1])), quarantined)

    def _decode_pending(self, now: datetime) -> None:
        chunks, self._pending, self._pending_records = self._pending, [], 0
        if chunks:
            self._decode(chunks, None, now)

    def _decode(self, chunks: list[Chunk], parsed: columnar.Parsed | None, now: datetime) -> None:
        """Decode chunks (parsed already, or not) into `_decoded`, bad records into quarantine."""
        ends = list(itertools.accumulate(len(c.offsets) for c in chunks))
        if parsed is not None:
            fast = columnar.decode_parsed(parsed, now, self.oldest_day)
            pieces, slow = fast.tables, fast.slow
        elif self.columnar:
            values = [v for c in chunks for v in c.values]
            fast = columnar.decode_batch(values, now, self.oldest_day)
            pieces, slow = fast.tables, fast.slow
        else:
            pieces, slow = {}, list(range(ends[-1]))
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pos in slow:  # the few decoded one by one: find their chunk
            k = bisect.bisect_right(ends, pos)
            chunk, i = chunks[k], pos - (ends[k - 1] if k else 0)
            record = chunk.record(i, parsed.value(pos) if parsed is not None else None)
            if not self._decode_one(record, pos, now, rows):
                self.partitions[chunk.partition].quarantined += 1
        for name, table_rows in rows.items():
            pieces.setdefault(name, []).append(to_arrow(TABLES[name], table_rows, None, pos=True))
        for name, parts in pieces.items():
            staged = pa.concat_tables([_staged(TABLES[name], p) for p in parts])
            self._decoded[name].append(_with_kafka(staged, chunks))

    def _decode_one(
        self, record: Record, pos: int, now: datetime, rows: dict[str, list[dict[str, Any]]]
    ) -> bool:
        """Decode one record the reference way into `rows`; False when it was quarantined."""
        result = decode_value(record.value, now)
        if isinstance(result, Event):
            day = day_of(result.row["occurred_at"])
            if self.oldest_day is None or day >= self.oldest_day:
                _add_event(rows, result, pos)
                return True
            result = Rejection(
                f"occurred_at: beyond retention (the lake keeps {self.oldest_day} onwards), "
                f"got {day.isoformat()}",
                result.event_type,
                result.row["event_id"],
            )
        _add_rejection(rows, result, record, pos, now)
        return False


#: Columns `Batch.decode` fills after decoding: every decoder leaves them out.
_FILLED_LATER = ("kafka_partition", "kafka_offset", "ingested_at")


def _staged(table: Table, part: pa.Table) -> pa.Table:
    """A decoded part in the one staging shape: the stored columns but the later ones, `_pos`."""
    fields = [f for f in table.schema if f.name not in _FILLED_LATER]
    schema = pa.schema([*fields, pa.field(columnar.POS, pa.int64())])
    return part.select(schema.names).cast(schema)


def _with_kafka(data: pa.Table, chunks: list[Chunk]) -> pa.Table:
    """Swap `_pos` (a row's place in the chunks, one after the other) for its Kafka partition
    and offset."""
    pos = np.asarray(data.column(columnar.POS))
    sizes = [len(c.offsets) for c in chunks]
    partitions = np.repeat(np.array([c.partition for c in chunks], np.int32), sizes)[pos]
    offsets = np.concatenate([np.asarray(c.offsets, np.int64) for c in chunks])[pos]
    data = data.drop_columns([columnar.POS])
    return data.append_column("kafka_partition", pa.array(partitions)).append_column(
        "kafka_offset", pa.array(offsets)
    )


def _by_day(table: Table, data: pa.Table, now: datetime) -> list[tuple[Table, date, pa.Table]]:
    """Rows sorted into Kafka order, stamped, cut by the UTC day of the partition column.

    One sort by (day, partition, offset) leaves each day's rows in Kafka order in one run, so
    the days are slices of it, not one filter of the whole batch per day.
    """
    days = pc.divide(data.column(table.partition_by).cast(pa.int64()), _DAY_US)
    order = [(_DAY, "ascending"), ("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    if "stage_index" in data.column_names:
        order.append(("stage_index", "ascending"))
    data = data.append_column(_DAY, days).sort_by(order)
    day_of_row = data.column(_DAY).to_numpy()
    stamp = pa.repeat(pa.scalar(now, type=table.schema.field("ingested_at").type), data.num_rows)
    data = data.append_column("ingested_at", stamp).select(table.schema.names).cast(table.schema)
    starts = [0, *(np.flatnonzero(np.diff(day_of_row)) + 1).tolist()]
    ends = [*starts[1:], data.num_rows]
    return [
        (table, _EPOCH + timedelta(days=int(day_of_row[a])), data.slice(a, b - a))
        for a, b in zip(starts, ends, strict=True)
        if b > a
    ]


def to_arrow(
    table: Table, rows: list[dict[str, Any]], ingested_at: datetime | None, pos: bool = False
) -> pa.Table:
    """Rows (stored names -> values) as an Arrow table of the table's schema.

    `pos` adds the rows' `_pos` column (their place in the batch) for `Batch.decode`.
    """
    arrays = []
    schema = table.schema
    for col in table.schema:
        if col.name == "ingested_at":
            arrays.append(pa.repeat(pa.scalar(ingested_at, type=col.type), len(rows)))
            continue
        if col.name in _MAP_COLUMNS:
            values: list[Any] = [_items(r.get(col.name)) for r in rows]
        else:
            values = [r.get(col.name) for r in rows]
        arrays.append(pa.array(values, type=col.type))
    if pos:
        arrays.append(pa.array([r[columnar.POS] for r in rows], pa.int64()))
        schema = schema.append(pa.field(columnar.POS, pa.int64()))
    return pa.Table.from_arrays(arrays, schema=schema)


def _items(value: Any) -> Any:
    return list(value.items()) if isinstance(value, dict) else value


def _add_event(rows: dict[str, list[dict[str, Any]]], event: Event, pos: int) -> None:
    row = event.row
    row[columnar.POS] = pos
    rows[event.table.name].append(row)
    if event.stages:
        outcome = "completed" if event.table is JOBS else "failed"
        stage_rows = rows[JOB_STAGES.name]
        for i, stage in enumerate(event.stages):
            stage_rows.append(
                {
                    "event_id": row["event_id"],
                    "occurred_at": row["occurred_at"],
                    "outcome": outcome,
                    "job_id": row["job_id"],
                    "attempt": row["attempt"],
                    "workflow_id": row["workflow_id"],
                    "worker_id": row["worker_id"],
                    "stage_index": i,
                    "stage_name": stage["name"],
                    "duration_ms": stage["duration_ms"],
                    "gpu_mem_peak_mb": stage.get("gpu_mem_peak_mb"),
                    "cpu_mem_peak_mb": stage.get("cpu_mem_peak_mb"),
                    "extra": stage["extra"],
                    columnar.POS: pos,
                }
            )


def _add_rejection(
    rows: dict[str, list[dict[str, Any]]], bad: Rejection, record: Record, pos: int, now: datetime
) -> None:
    received = (
        datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else now
    )
    rows[QUARANTINE.name].append(
        {
            "topic": record.topic,
            "kafka_partition": record.partition,
            "kafka_offset": record.offset,
            "key": record.key,
            "value": record.value,
            "reason": bad.reason,
            "event_type": bad.event_type,
            "event_id": bad.event_id,
            "received_at": received,
            columnar.POS: pos,
        }
    )
