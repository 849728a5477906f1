"""`ingest.fetch` reads fetched batches exactly as kafka-python's own reader does.

Each case builds real record batches with kafka-python's batch builders, then reads them with
both readers, `take(n)` at a time, comparing the rows and `next_fetch_offset` after every take
(the offset kafka-python moves the consumer's position to).
"""

from __future__ import annotations

import struct

import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from ingest.fetch import ColumnarPartitionRecords

TP = TopicPartition("events", 3)
GZIP = 1
CONTROL = 0x20
LOG_APPEND_TIME = 0x08


def v2_batch(
    base_offset: int,
    records: list[tuple],
    compression: int = 0,
    attributes: int = 0,
    skip_offsets: tuple[int, ...] = (),
    last_offset_delta: int | None = None,
) -> bytes:
    """One v2 batch of (timestamp, key, value[, headers]) records at `base_offset`.

    `attributes` bits are set after building (the CRC is recomputed); `skip_offsets` leaves
    gaps in the offset deltas, and `last_offset_delta` a removed last record, as compaction does.
    """
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    delta = 0
    for rec in records:
        while delta in skip_offsets:
            delta += 1
        ts, key, value, *headers = rec
        assert builder.append(delta, ts, key, value, headers[0] if headers else []) is not None
        delta += 1
    data = builder.build()
    struct.pack_into(">q", data, 0, base_offset)
    if attributes:
        (attrs,) = struct.unpack_from(">h", data, 21)
        struct.pack_into(">h", data, 21, attrs | attributes)
    if last_offset_delta is not None:
        struct.pack_into(">i", data, 23, last_offset_delta)
    struct.pack_into(">I", data, 17, calc_crc32c(memoryview(data)[21:]))
    return bytes(data)


def v1_batch(base_offset: int, records: list[tuple]) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 24)
    for i, (ts, key, value) in enumerate(records):
        builder.append(base_offset + i, ts, key, value)
    return bytes(builder.build())


def read_all(cls: type, data: bytes, fetch_offset: int, step: int | None, **kwargs) -> list:
    """Rows and next_fetch_offset after each take(step), until the records are drained."""
    part = cls(fetch_offset, TP, MemoryRecords(data), **kwargs)
    takes = []
    while part:
        rows = part.take(step)
        if cls is Fetcher.PartitionRecords:
            rows = [(r.offset, r.timestamp, r.key, r.value) for r in rows]
        takes.append((rows, part.next_fetch_offset))
        if not rows:
            break
    return takes


def assert_same(data: bytes, fetch_offset: int = 0, steps=(None, 1, 3, 1000), **kwargs) -> list:
    for step in steps:
        ours = read_all(ColumnarPartitionRecords, data, fetch_offset, step, **kwargs)
        theirs = read_all(Fetcher.PartitionRecords, data, fetch_offset, step, **kwargs)
        assert ours == theirs, f"take({step})"
    return [row for rows, _ in ours for row in rows]


def records(n: int, start_ts: int = 1_763_000_000_000) -> list[tuple]:
    return [(start_ts + 7 * i, f"job-{i}".encode(), b'{"n": %d}' % i) for i in range(n)]


def test_plain_batches_read_as_kafka_python_reads_them() -> None:
    data = v2_batch(0, records(40)) + v2_batch(40, records(25, 1_763_000_100_000))
    rows = assert_same(data)
    assert [r[0] for r in rows] == list(range(65))
    assert rows[5] == (5, 1_763_000_000_035, b"job-5", b'{"n": 5}')
    assert all(type(r[2]) is bytes and type(r[3]) is bytes for r in rows)


def test_multi_byte_varints_negative_deltas_nulls_and_empty_values() -> None:
    recs = [
        (1_763_000_000_000, None, b"x" * 20_000),  # 3-byte value length
        (1_762_000_000_000, b"", None),  # timestamp before the first: negative delta
        (1_763_000_000_000 + 10**9, b"k" * 300, b""),  # large delta, 2-byte key length
        (1_763_000_000_001, None, None),
    ]
    rows = assert_same(v2_batch(7, recs))
    assert rows[1] == (8, 1_762_000_000_000, b"", None)
    assert rows[3] == (10, 1_763_000_000_001, None, None)


def test_headers_are_skipped() -> None:
    recs = [
        (1, b"a", b"v1", [("trace", b"t" * 200), ("none", None), ("empty", b"")]),
        (2, b"b", b"v2", []),
        (3, b"c", b"v3", [("h", b"x")]),
    ]
    assert [r[3] for r in assert_same(v2_batch(0, recs))] == [b"v1", b"v2", b"v3"]


def test_fetch_offset_inside_a_compressed_batch_skips_the_earlier_records() -> None:
    data = v2_batch(100, records(30), compression=GZIP) + v2_batch(130, records(5))
    rows = assert_same(data, fetch_offset=117)
    assert [r[0] for r in rows] == list(range(117, 135))


def test_a_batch_entirely_before_the_fetch_offset_is_passed_over() -> None:
    data = v2_batch(0, records(10)) + v2_batch(10, records(10))
    assert [r[0] for r in assert_same(data, fetch_offset=12)] == list(range(12, 20))


def test_compaction_gaps_and_a_removed_last_record_keep_kafka_pythons_next_offset() -> None:
    data = v2_batch(50, records(6), skip_offsets=(1, 2, 7), last_offset_delta=12)
    rows = assert_same(data)
    assert [r[0] for r in rows] == [50, 53, 54, 55, 56, 58]
    part = ColumnarPartitionRecords(0, TP, MemoryRecords(data))
    part.take()
    assert part.next_fetch_offset == 63  # after the batch, not after its last record left


def test_control_batches_are_not_returned() -> None:
    data = v2_batch(0, records(4)) + v2_batch(4, records(1), attributes=CONTROL)
    data += v2_batch(5, records(3))
    assert [r[0] for r in assert_same(data)] == [0, 1, 2, 3, 5, 6, 7]


def test_log_append_time_gives_every_record_the_batchs_max_timestamp() -> None:
    recs = [(1_000, b"a", b"1"), (5_000, b"b", b"2"), (3_000, b"c", b"3")]
    rows = assert_same(v2_batch(0, recs, attributes=LOG_APPEND_TIME))
    assert {r[1] for r in rows} == {5_000}


def test_old_message_format_batches_go_through_kafka_pythons_reader() -> None:
    data = v1_batch(0, records(5)) + v2_batch(5, records(5))
    assert [r[0] for r in assert_same(data, fetch_offset=2)] == list(range(2, 10))


def test_read_committed_and_deserializers_fall_back_to_kafka_python() -> None:
    data = v2_batch(0, records(5))
    assert_same(data, isolation_level=IsolationLevel.READ_COMMITTED)

    class Upper:
        def deserialize(self, topic, headers, data):
            return data.upper()

    rows = assert_same(data, value_deserializer=Upper())
    assert rows[0][3] == b'{"N": 0}'


def test_a_corrupted_batch_fails_its_crc_check() -> None:
    data = bytearray(v2_batch(0, records(5)))
    data[-3] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="crc"):
        ColumnarPartitionRecords(0, TP, MemoryRecords(bytes(data))).take()


@pytest.mark.parametrize("cut", [1, 3])
def test_a_record_whose_length_disagrees_with_its_fields_is_corrupt(cut: int) -> None:
    data = bytearray(v2_batch(0, records(3)))
    # Shrink the first record's length varint (at the batch header's end, 61) and re-sign the
    # batch, so only the record structure is wrong.
    data[61] -= 2 * cut
    struct.pack_into(">I", data, 17, calc_crc32c(memoryview(data)[21:]))
    with pytest.raises(CorruptRecordError):
        ColumnarPartitionRecords(0, TP, MemoryRecords(bytes(data))).take()
