"""Buffers decoded Kafka records per partition and turns them into Arrow tables per lake partition.

One buffer per Kafka partition, so a revoked partition's records can be dropped whole. Knows
nothing of the consumer or the broker; the tests fill it by hand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import pyarrow as pa

from ingest.decode import Event, Rejection, decode_value
from ingest.fields import day_of
from lake.tables import JOB_STAGES, JOBS, QUARANTINE, TABLES, Table

_MAP_COLUMNS = {"quality_scores", "params", "params_num"}


@dataclass
class PartitionBuffer:
    """Rows decoded from one Kafka partition since its last flush."""

    first_offset: int
    last_offset: int = -1
    records: int = 0
    bytes: int = 0
    rows: dict[tuple[str, date], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    quarantined: int = 0


class Record(NamedTuple):
    """The parts of a Kafka record ingest needs (kafka-python's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch; -1 when the broker gave none
    key: bytes | None
    value: bytes | None


class Batch:
    """Everything read since the last flush, buffered per Kafka partition."""

    def __init__(self, topic: str, oldest_day: date | None = None) -> None:
        self.topic = topic
        self.oldest_day = oldest_day
        self.partitions: dict[int, PartitionBuffer] = {}

    @property
    def records(self) -> int:
        return sum(b.records for b in self.partitions.values())

    @property
    def bytes(self) -> int:
        return sum(b.bytes for b in self.partitions.values())

    def add(self, record: Record, now: datetime) -> Event | Rejection:
        """Decode one record into its partition's buffer (a rejection goes to quarantine)."""
        buf = self.partitions.get(record.partition)
        if buf is None:
            buf = self.partitions[record.partition] = PartitionBuffer(record.offset)
        buf.last_offset = record.offset
        buf.records += 1
        buf.bytes += len(record.value or b"")
        result = decode_value(record.value, now)
        if isinstance(result, Event):
            day = day_of(result.row["occurred_at"])
            if self.oldest_day is not None and day < self.oldest_day:
                result = Rejection(
                    f"occurred_at: beyond retention (the lake keeps {self.oldest_day} onwards), "
                    f"got {day.isoformat()}",
                    result.event_type,
                    result.row["event_id"],
                )
            else:
                _add_event(buf, result, day, record)
                return result
        _add_rejection(buf, result, record, now)
        return result

    def drop(self, partition: int) -> None:
        """Forget a partition's buffer (it was revoked; its records will be read again)."""
        self.partitions.pop(partition, None)

    def offset_ranges(self) -> list[str]:
        """`topic:partition:first-last` of every buffered partition, the flush's identity."""
        return [
            f"{self.topic}:{p}:{b.first_offset}-{b.last_offset}"
            for p, b in sorted(self.partitions.items())
        ]

    def next_offsets(self) -> dict[int, int]:
        """Per partition, the offset to commit once this batch is published."""
        return {p: b.last_offset + 1 for p, b in self.partitions.items()}

    def tables(self, ingested_at: datetime) -> list[tuple[Table, date, pa.Table]]:
        """The buffered rows as one Arrow table per (lake table, day)."""
        groups: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
        for buf in self.partitions.values():
            for slot, rows in buf.rows.items():
                groups[slot].extend(rows)
        return [
            (TABLES[name], day, to_arrow(TABLES[name], rows, ingested_at))
            for (name, day), rows in sorted(groups.items())
        ]


def to_arrow(table: Table, rows: list[dict[str, Any]], ingested_at: datetime) -> pa.Table:
    """Rows (stored names -> values) as an Arrow table of the table's schema."""
    arrays = []
    for col in table.schema:
        if col.name == "ingested_at":
            arrays.append(pa.repeat(pa.scalar(ingested_at, type=col.type), len(rows)))
            continue
        if col.name in _MAP_COLUMNS:
            values: list[Any] = [_items(r.get(col.name)) for r in rows]
        else:
            values = [r.get(col.name) for r in rows]
        arrays.append(pa.array(values, type=col.type))
    return pa.Table.from_arrays(arrays, schema=table.schema)


def _items(value: Any) -> Any:
    return list(value.items()) if isinstance(value, dict) else value


def _add_event(buf: PartitionBuffer, event: Event, day: date, record: Record) -> None:
    row = event.row
    row["kafka_partition"] = record.partition
    row["kafka_offset"] = record.offset
    buf.rows[(event.table.name, day)].append(row)
    if event.stages:
        outcome = "completed" if event.table is JOBS else "failed"
        stage_rows = buf.rows[(JOB_STAGES.name, day)]
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
                }
            )


def _add_rejection(buf: PartitionBuffer, bad: Rejection, record: Record, now: datetime) -> None:
    received = (
        datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else now
    )
    buf.quarantined += 1
    buf.rows[(QUARANTINE.name, received.date())].append(
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
        }
    )
