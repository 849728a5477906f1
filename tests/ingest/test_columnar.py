"""The batch decoder gives exactly the rows and rejections of the per-message reference decoder.

Each case decodes the same records twice, `Batch(columnar=True)` and `Batch(columnar=False)`, and
compares every table, day and cell. The mutations change one field of a contract example to
every kind of JSON value, so each rule is crossed from both sides.
"""

from __future__ import annotations

import itertools
import json
import pickle
import random
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from ingest import columnar
from ingest.batch import CHUNK, Batch, Chunk, Record
from ingest.decode import RULES
from ingest.demo import studio_messages
from ingest.fields import number_text
from tests.events import bad_lines, example

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TYPES = list(RULES)

# One value of every JSON kind, and the edges of the rules (bounds, formats, sizes).
VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2, 1.5, 0.0, -0.5, 100.5, 2**31, 2**63, 1e300,
    "", "x", "idle", "approved", "a" * 129, "é" * 128,
    "2026-11-20T14:32:07Z", "2026-11-20T14:32:07.123456+05:30", "2026-11-20 14:32:07Z",
    "2026-11-20T14:32:07", "2026-11-20", "2026-13-01T00:00:00Z", "2026-11-20T24:00:00Z",
    "2026-11-20t14:32:07z", "2026-11-20T14:32:07.1234567Z", "2099-01-01T00:00:00Z",
    "2026-11-20T14:32:07+25:00", "2020-01-01T00:00:00Z",
    [], [1], {}, {"likeness": 0.5}, {"likeness": 1.5}, {"k": "v"}, {"k": [1]},
]  # fmt: skip
STAGES: list[Any] = [
    [{"name": "a", "duration_ms": 1}],
    [{"name": "a", "duration_ms": 1.5, "gpu_mem_peak_mb": 10, "cpu_mem_peak_mb": 2.5}],
    [{"name": "", "duration_ms": 1}],
    [{"name": "a"}],
    [{"name": "a", "duration_ms": -1}],
    [{"name": "a", "duration_ms": 1, "flavour": "x"}],
    [{"name": "a", "duration_ms": 1}, 5],
    [{"name": "a", "duration_ms": 1, "gpu_mem_peak_mb": None}],
    [{"name": "a", "duration_ms": 1, "flavour": None}],
]
PARAMS: list[Any] = [
    {"cfg": 7, "steps": 30.0, "sampler": "euler", "hires": True, "denoise": 0.1 + 0.2},
    {"cfg": 7.5, "big": 1e20, "tiny": 1e-05},
    {"nested": {"a": 1}},
    {"cfg": None},
]
SCORES: list[Any] = [
    {"likeness": 0.9, "lip_sync": 3},
    {"custom": -7.25},
    {"likeness": 0.9, "lip_sync": "good"},
    {"likeness": None},
]


def _records(values: list[bytes | None]) -> list[Record]:
    at = int(NOW.timestamp() * 1000)
    return [Record("t", i % 3, i, at, None, v) for i, v in enumerate(values)]


def _decoded(records: list[Record], columnar_path: bool) -> tuple[dict, int]:
    batch = Batch("t", oldest_day=date(2021, 1, 1), columnar=columnar_path)
    for r in records:
        batch.add(r, NOW)
    decoded = batch.decode(NOW)
    tables = {(t.name, day): _rows(data) for t, day, data in decoded.tables}
    return tables, decoded.quarantined


def _rows(data: pa.Table) -> list[dict[str, Any]]:
    rows = data.to_pylist()
    for row in rows:
        for name in ("params", "params_num", "quality_scores"):
            if row.get(name) is not None:
                row[name] = sorted(row[name])  # map entry order is not part of the contract
    return rows


def _assert_same(values: list[bytes | None]) -> None:
    records = _records(values)
    assert _decoded(records, True) == _decoded(records, False)


def _mutations() -> list[bytes]:
    out = []
    for etype in TYPES:
        base = example(etype)
        for name in sorted(RULES[etype][1]):
            choices = {"pipeline_stages": STAGES, "params": PARAMS, "quality_scores": SCORES}
            for value in [*VALUES, *choices.get(name, [])]:
                out.append(
                    orjson.dumps(base | {name: value}, option=orjson.OPT_PASSTHROUGH_DATETIME)
                )
            out.append(orjson.dumps({k: v for k, v in base.items() if k != name}))
        out.append(orjson.dumps(base | {"brand_new_field": 1}))
        out.append(orjson.dumps(base | {"brand_new_field": None}))
        out.append(orjson.dumps(base | {"schema_version": 2}))
        out.append(json.dumps(base, indent=2).encode())  # line breaks inside a message
        out.append(b" " + orjson.dumps(base))
    return out


def test_contract_examples_and_bad_lines_decode_the_same() -> None:
    examples = [orjson.dumps(example(t)) for t in TYPES]
    _assert_same(examples + bad_lines() + [None, b"", b"{}", b"[]", b"{} {}"])


def test_every_field_mutation_decodes_the_same_in_one_batch() -> None:
    # One batch: the bad messages make pyarrow fail whole parts, which are halved around them.
    _assert_same(_mutations())


@pytest.mark.parametrize("etype", TYPES)
def test_every_field_mutation_decodes_the_same_one_by_one(etype: str) -> None:
    for value in _mutations():
        if f'"event_type":"{etype}"'.encode() in value:
            _assert_same([value])


def test_demo_stream_decodes_the_same_and_mostly_in_bulk() -> None:
    end = datetime(2026, 11, 21, tzinfo=UTC)
    values = [m.value for m in itertools.islice(studio_messages(days=3, seed=3, end=end), 6000)]
    _assert_same(values)
    slow = columnar.decode_batch(values, NOW, date(2021, 1, 1)).slow
    # Only the planted malformed messages (and nulls) may need the reference decoder.
    assert len(slow) < 0.02 * len(values)


def test_rows_keep_kafka_order_and_positions() -> None:
    job = example("job.completed")
    values = [orjson.dumps(job | {"event_id": f"e{i}", "job_id": f"j{i}"}) for i in range(5)]
    values[2] = orjson.dumps(job | {"event_id": "e2", "frame_count": 0})  # quarantined
    values[3] = orjson.dumps(job | {"event_id": "e3", "workflow_name": None})  # the slow path
    batch = Batch("t", oldest_day=date(2021, 1, 1))
    for r in _records(values):
        batch.add(r, NOW)
    decoded = batch.decode(NOW)
    jobs = next(d for t, _, d in decoded.tables if t.name == "jobs")
    # Records 0..4 came on partitions 0, 1, 2, 0, 1: rows follow partition, then offset.
    assert jobs.column("event_id").to_pylist() == ["e0", "e3", "e1", "e4"]
    assert jobs.column("kafka_partition").to_pylist() == [0, 0, 1, 1]
    assert jobs.column("kafka_offset").to_pylist() == [0, 3, 1, 4]
    assert decoded.quarantined == 1


def test_a_dropped_partition_loses_its_decoded_rows_and_quarantine() -> None:
    job = example("job.completed")
    records = [
        Record("t", i % 2, i // 2, 0, None, orjson.dumps(job | {"event_id": f"e{i}"}))
        for i in range(CHUNK + 10)  # the first CHUNK records are decoded before the drop
    ]
    records += [Record("t", 1, 10_000, 0, None, b"bad"), Record("t", 0, 10_000, 0, None, b"x")]
    batch = Batch("t", oldest_day=date(2021, 1, 1))
    for r in records:
        batch.add(r, NOW)
    batch.drop(1)
    decoded = batch.decode(NOW)
    jobs = next(d for t, _, d in decoded.tables if t.name == "jobs")
    assert set(jobs.column("kafka_partition").to_pylist()) == {0}
    assert jobs.num_rows == (CHUNK + 10) // 2
    assert decoded.quarantined == 1
    assert batch.next_offsets() == {0: 10_001}


def test_float_params_are_written_as_the_reference_writes_them() -> None:
    """Arrow's text for most numbers, Python's where the two differ: checked on random
    magnitudes from 1e-30 to 1e30, integral and rounded values, and the edges."""
    rng = random.Random(7)
    values: list[float | None] = []
    for _ in range(20_000):
        v = 10 ** rng.uniform(-30, 30) * rng.choice([1, -1])
        kind = rng.random()
        if kind < 0.2:
            v = float(round(v))
        elif kind < 0.3:
            v = round(v, rng.randint(0, 6))
        elif kind < 0.4:
            v = rng.randint(-(10**6), 10**6) / rng.choice([1, 2, 4, 8, 10, 100, 1000])
        values.append(v)
    values += [0.0, -0.0, 1e-4, -1e-4, 9.999999999999999e-05, 2.0**53, -(2.0**53), 2.0**53 - 1]
    values += [1e15, 1e16, 1e21, 1e22, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, None]
    got = columnar._float_texts(pa.array(values, pa.float64())).to_pylist()
    assert got == [None if v is None else number_text(v) for v in values]


def test_nan_and_infinity_are_the_reference_decoders_wherever_they_are() -> None:
    # pyarrow reads the literals NaN and Infinity as numbers; JSON has neither. They are found
    # among the parsed numbers, so the messages around them stay in bulk.
    spots: list[tuple[str, dict[str, Any]]] = [
        ("job.completed", {"cost_usd": "#"}),
        ("job.completed", {"params": {"cfg": "#"}}),
        ("job.completed", {"quality_scores": {"likeness": "#"}}),
        ("job.completed", {"quality_scores": {"custom": "#"}}),
        ("job.failed", {"pipeline_stages": [{"name": "a", "duration_ms": 1}, {"name": "b", "duration_ms": "#"}]}),
        ("worker.sample", {"power_w": "#"}),
        ("worker.sample", {"brand_new_field": ["#"]}),
        ("review.completed", {"note": "NaN and Infinity, in words"}),
    ]  # fmt: skip
    literals = (b"NaN", b"Infinity", b"-Infinity", b"1.5")
    odd = [
        orjson.dumps(example(etype) | change).replace(b'"#"', literal)
        for etype, change in spots
        for literal in literals
    ]
    good = [orjson.dumps(example(t)) for t in TYPES] * 4
    values = good + odd + good
    _assert_same(values)
    non_finite = {
        len(good) + i
        for i in range(len(odd))
        if i // len(literals) < len(spots) - 1 and literals[i % len(literals)] != b"1.5"
    }
    assert set(columnar.parse_batch(values).slow) == non_finite


def test_chunks_without_values_decode_from_the_parsed_buffer() -> None:
    """The writer process gets chunks without values and the values joined in `Parsed`: rows,
    quarantine (the raw message whole) and the byte count match decoding the chunks whole."""
    values = [orjson.dumps(example(t)) for t in TYPES] + _mutations()[:400]
    values += [*bad_lines(), None, b"", b"{}", b'{"a":\r\n1}', b"x\ny", b"NaN"]
    chunks = Chunk.of(_records(values))
    whole = Batch("t", oldest_day=date(2021, 1, 1))
    for chunk in chunks:
        whole.add_chunk(chunk, NOW)
    light = Batch("t", oldest_day=date(2021, 1, 1))
    parsed = columnar.parse_batch([v for c in chunks for v in c.values])
    light.add_parsed([c.without_values() for c in chunks], parsed, NOW)
    a, b = whole.decode(NOW), light.decode(NOW)
    assert [(t.name, d, _rows(x)) for t, d, x in a.tables] == [
        (t.name, d, _rows(x)) for t, d, x in b.tables
    ]
    assert a.quarantined == b.quarantined > 0
    assert whole.bytes == light.bytes == sum(len(v) for v in values if v)
    assert [parsed.value(i) for i in range(len(values))] == values


def test_parsed_polls_travel_to_the_writer_whole() -> None:
    # The writer process gets `Parsed` pickled, its tables as Arrow IPC streams.
    values = [orjson.dumps(example(t)) for t in TYPES] + _mutations()[:300] + [None, b"x"]
    parsed = columnar.parse_batch(values)
    assert all(isinstance(stream, pa.Buffer) for _, stream in parsed.__getstate__()["pieces"])
    back = pickle.loads(pickle.dumps(parsed))
    assert len(back.pieces) == len(parsed.pieces) > 0
    for (positions, table), (positions_back, table_back) in zip(
        parsed.pieces, back.pieces, strict=True
    ):
        assert positions_back.tolist() == positions.tolist()
        assert table_back.equals(table) and table_back.schema == table.schema
    assert (back.slow, back.data, back.sizes.tolist()) == (
        parsed.slow,
        parsed.data,
        parsed.sizes.tolist(),
    )
    a = columnar.decode_parsed(parsed, NOW, None)
    b = columnar.decode_parsed(back, NOW, None)
    assert {k: [t.to_pylist() for t in v] for k, v in a.tables.items()} == {
        k: [t.to_pylist() for t in v] for k, v in b.tables.items()
    }
    assert a.slow == b.slow


def test_an_ingest_process_decodes_on_the_system_allocator_without_pandas() -> None:
    # pyarrow imports pandas on its first array unless told there is none (about 32 MB a
    # process); a later conversion to pandas still works.
    code = """
import sys
from datetime import UTC, datetime
from ingest.columnar import decode_batch, prepare_process
from tests.events import example
prepare_process()
import orjson
decoded = decode_batch([orjson.dumps(example("job.completed"))], datetime.now(UTC), None)
assert decoded.tables["jobs"][0].num_rows == 1 and not decoded.slow, decoded
assert "pandas" not in sys.modules
import pyarrow as pa
assert pa.default_memory_pool().backend_name == "system"
assert pa.table({"a": [1]}).to_pandas().shape == (1, 1)
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
