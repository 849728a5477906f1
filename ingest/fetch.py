"""Reading fetched record batches in one loop per batch, for the ingest consumer.

kafka-python reads each record of a fetch through several Python calls (a varint function per
field, a record object, CRC and deserializer hooks, a 13-field ConsumerRecord), about 9 us a
record here: the largest single cost of ingest. `ColumnarPartitionRecords` replaces only that
step. kafka-python still fetches, checks each batch's CRC, decompresses and keeps the positions;
each message-format-v2 batch is then read by `read_batch`, one loop with the varints inlined,
into (offset, timestamp, key, value) tuples, about 2 us a record.

Anything this reader does not handle goes through kafka-python's own reader unchanged:
transactional reads (`isolation_level="read_committed"`), key or value deserializers, and
batches of the old message formats (v0, v1).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch

#: What ingest reads from a record: offset, timestamp (ms), key, value.
Row = tuple[int, int, bytes | None, bytes | None]


def install(consumer: KafkaConsumer) -> None:
    """Make `consumer.poll()` return `Row` tuples, read by `ColumnarPartitionRecords`."""
    consumer._fetcher.PartitionRecords = ColumnarPartitionRecords


class ColumnarPartitionRecords(Fetcher.PartitionRecords):
    """kafka-python's records of one partition's fetch, yielding `Row`s read batch by batch.

    The parent's bookkeeping is kept: `next_fetch_offset` is the offset after the last row
    handed out (so a poll cut by `max_records` resumes at the right record), records before the
    fetch offset are skipped, control batches are passed over, and `drain()` ends the fetch.

    `drain()` also empties the fetcher's in-line slot. kafka-python 3.0.12 parks the records
    of a paused partition and hands them back after `resume()` only once that slot is None, but
    a drained records object stays in it: without this, a partition paused with records fetched
    is never read (nor fetched) again.
    """

    def __init__(
        self,
        fetch_offset: int,
        tp: Any,
        records: Any,
        key_deserializer: Any = None,
        value_deserializer: Any = None,
        on_drain: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            fetch_offset,
            tp,
            records,
            key_deserializer=key_deserializer,
            value_deserializer=value_deserializer,
            **({} if on_drain is None else {"on_drain": on_drain}),
            **kwargs,
        )
        # The fetcher whose in-line slot this may occupy (its drain callback is its method).
        self._fetcher = getattr(on_drain, "__self__", None)
        if (
            key_deserializer is None
            and value_deserializer is None
            and self.isolation_level != IsolationLevel.READ_COMMITTED
        ):
            self.record_iterator = self._rows(records)
        else:  # the parent's reader, as rows
            parent: Iterator[Any] = self.record_iterator
            self.record_iterator = ((r.offset, r.timestamp, r.key, r.value) for r in parent)

    def drain(self) -> None:
        super().drain()
        if self._fetcher is not None and self._fetcher._next_partition_records is self:
            self._fetcher._next_partition_records = None

    def _rows(self, records: Any) -> Iterator[Row]:
        tp = self.topic_partition
        batch = records.next_batch()
        last = None
        while batch is not None:
            last = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {tp} at offset {batch.base_offset} failed crc check"
                )
            if batch.magic != 2:
                yield from self._legacy_rows(batch)
            elif not batch.is_control_batch and batch.last_offset >= self.fetch_offset:
                self.leader_epoch = batch.leader_epoch
                rows = read_batch(batch)
                start = 0
                if rows and rows[0][0] < self.fetch_offset:  # a batch that begins before the fetch
                    start = bisect.bisect_left(rows, (self.fetch_offset,))
                self.records_read += len(rows) - start
                self.bytes_read += batch.size_in_bytes
                for i in range(start, len(rows)):
                    row = rows[i]
                    self.next_fetch_offset = row[0] + 1
                    yield row
            batch = records.next_batch()
        # As kafka-python: a v2 batch's last offset stands even if compaction removed its record.
        if last is not None and last.magic == 2:
            self.next_fetch_offset = last.next_offset
        self.drain()

    def _legacy_rows(self, batch: Any) -> Iterator[Row]:
        for r in batch:
            if self.check_crcs and not r.validate_crc():
                raise CorruptRecordError(
                    f"Record for partition {self.topic_partition} at offset {r.offset} failed crc check"
                )
            if r.offset < self.fetch_offset:
                continue
            self.records_read += 1
            self.bytes_read += r.size_in_bytes
            self.next_fetch_offset = r.offset + 1
            yield (r.offset, r.timestamp, r.key, r.value)


def read_batch(batch: DefaultRecordBatch) -> list[Row]:
    """Every record of a (CRC-checked) v2 batch, decompressed, as `Row`s.

    Record layout (KIP-98): length, attributes, timestamp delta, offset delta, key length, key,
    value length, value, header count, headers; lengths and deltas are zigzag varints.
    """
    batch._maybe_uncompress()
    buf = bytes(batch._buffer)  # slices of bytes are bytes: keys and values as kafka-python gives
    pos = batch._pos
    base_offset = batch.base_offset
    base_ts = batch.first_timestamp
    append_time = batch.max_timestamp if batch.timestamp_type == batch.LOG_APPEND_TIME else None
    rows: list[Row] = []
    try:
        for _ in range(batch.records_count):
            # Each varint's short case is written out on purpose, here and below: a function
            # call per field is most of what makes kafka-python's reader slow. A record's length
            # and its value's size (64 bytes or more) take two bytes.
            b = buf[pos]
            c = buf[pos + 1]
            if b >= 0x80 and c < 0x80:
                length = (b & 0x7F) | (c << 7)
                length = (length >> 1) ^ -(length & 1)
                pos += 2
            else:
                length, pos = _varint(buf, pos)
            end = pos + length
            pos += 1  # attributes: an int8, unused
            b = buf[pos]
            if b < 0x80:
                ts_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                ts_delta, pos = _varint(buf, pos)
            b = buf[pos]
            if b < 0x80:
                offset_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                offset_delta, pos = _varint(buf, pos)
            b = buf[pos]
            if b < 0x80:
                size = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                size, pos = _varint(buf, pos)
            key = None
            if size >= 0:
                key = buf[pos : pos + size]
                pos += size
            b = buf[pos]
            c = buf[pos + 1]
            if b >= 0x80 and c < 0x80:
                size = (b & 0x7F) | (c << 7)
                size = (size >> 1) ^ -(size & 1)
                pos += 2
            elif b < 0x80:
                size = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                size, pos = _varint(buf, pos)
            value = None
            if size >= 0:
                value = buf[pos : pos + size]
                pos += size
            if buf[pos] == 0:  # no headers, the usual case
                pos += 1
            else:
                pos = _skip_headers(buf, pos)
            if pos != end:
                raise CorruptRecordError(
                    f"Invalid record size: expected to read {length} bytes in record payload, but instead read {pos - end + length}"
                )
            rows.append(
                (
                    base_offset + offset_delta,
                    base_ts + ts_delta if append_time is None else append_time,
                    key,
                    value,
                )
            )
    except IndexError as e:
        raise CorruptRecordError(f"Found invalid record structure: {e!r}") from e
    if pos != len(buf):
        raise CorruptRecordError(f"{len(buf) - pos} unconsumed bytes after all records consumed")
    return rows


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at `pos`: (value, position after it)."""
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift >= 64:
            raise CorruptRecordError("varint out of int64 range")


def _skip_headers(buf: bytes, pos: int) -> int:
    """Position after a record's headers (ingest does not use them)."""
    count, pos = _varint(buf, pos)
    if count < 0:
        raise CorruptRecordError(f"Found invalid number of record headers {count}")
    for _ in range(count):
        size, pos = _varint(buf, pos)
        if size < 0:
            raise CorruptRecordError(f"Invalid negative header key size {size}")
        pos += size
        size, pos = _varint(buf, pos)
        if size > 0:
            pos += size
    return pos
