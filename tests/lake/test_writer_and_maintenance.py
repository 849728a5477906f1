"""The writer keeps one row per key across files and processes; retention and compaction swap
whole partitions while readers read, never showing a duplicate, a gap or an error."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.batch import to_arrow
from lake import views, writer
from lake.layout import data_files, partition_dir, retention_floor
from lake.maintenance import compact, expire, retention_cutoff
from lake.tables import JOB_STAGES, WORKER_SAMPLES
from lake.writer import LakeWriter

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def samples(ids: list[str], day: date) -> pa.Table:
    micros = int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp() * 1_000_000)
    rows = [
        {
            "event_id": i,
            "occurred_at": micros,
            "worker_id": "gpu-01",
            "gpu_index": 0,
            "state": "idle",
            "interval_s": 10.0,
        }
        for i in ids
    ]
    return to_arrow(WORKER_SAMPLES, rows, NOW)


def count(lake: Path) -> tuple[int, int]:
    con = views.connect(lake)
    try:
        return views.run(
            con, "select count(*), count(distinct event_id) from worker_samples"
        ).fetchone()
    finally:
        con.close()


def test_publish_drops_keys_already_in_the_partition_and_within_the_batch(tmp_path):
    day = date(2026, 11, 20)
    w = LakeWriter(tmp_path)
    assert w.publish(WORKER_SAMPLES, day, samples(["a", "b", "b"], day), "part-1.parquet") == 2
    assert w.publish(WORKER_SAMPLES, day, samples(["b", "c"], day), "part-2.parquet") == 1
    # A second writer (another process) learns the keys from the files.
    assert (
        LakeWriter(tmp_path).publish(
            WORKER_SAMPLES, day, samples(["a", "c", "d"], day), "part-3.parquet"
        )
        == 1
    )
    assert count(tmp_path) == (4, 4)
    assert [p.name for p in data_files(partition_dir(tmp_path, "worker_samples", day))] == [
        "part-1.parquet",
        "part-2.parquet",
        "part-3.parquet",
    ]


def test_a_hash_collision_never_drops_a_new_key(tmp_path, monkeypatch):
    # Every key hashes alike: each hash "is known", so every key is checked against the files.
    monkeypatch.setattr(
        writer, "key_hashes", lambda table, data: np.zeros(data.num_rows, dtype=np.int64)
    )
    day = date(2026, 11, 20)
    w = LakeWriter(tmp_path)
    assert w.publish(WORKER_SAMPLES, day, samples(["a", "b"], day), "part-1.parquet") == 2
    assert w.publish(WORKER_SAMPLES, day, samples(["b", "c", "c"], day), "part-2.parquet") == 1
    assert count(tmp_path) == (3, 3)


def test_a_key_hashes_alike_however_its_rows_come():
    # The hashes of keys read back from a file must equal those of the same keys published.
    ids = [f"e-{n % 10}" for n in range(50)]
    data = pa.table({"event_id": ids, "stage_index": pa.array(range(50), pa.int32())})
    whole = writer.key_hashes(JOB_STAGES, data)
    chunked = pa.concat_tables([data.slice(0, 20), data.slice(20)])
    assert writer.key_hashes(JOB_STAGES, chunked).tolist() == whole.tolist()
    backwards = data.take(pa.array(range(49, -1, -1)))
    assert writer.key_hashes(JOB_STAGES, backwards).tolist() == whole[::-1].tolist()
    assert len(set(whole.tolist())) == 50  # one event id, another stage: another key
    one = writer.key_hashes(WORKER_SAMPLES, pa.table({"event_id": ["e-3", "e-4", "e-3"]}))
    assert one[0] == one[2] != one[1]


def test_a_replay_under_the_same_name_rewrites_nothing(tmp_path):
    day = date(2026, 11, 20)
    LakeWriter(tmp_path).publish(WORKER_SAMPLES, day, samples(["a", "b"], day), "part-x.parquet")
    assert (
        LakeWriter(tmp_path).publish(
            WORKER_SAMPLES, day, samples(["a", "b"], day), "part-x.parquet"
        )
        == 0
    )
    assert count(tmp_path) == (2, 2)


def test_retention_drops_old_days_and_records_its_floor(tmp_path):
    w = LakeWriter(tmp_path)
    for d in (date(2026, 11, 1), date(2026, 11, 11), date(2026, 11, 21)):
        w.publish(WORKER_SAMPLES, d, samples([f"e-{d}"], d), "p.parquet")
    dropped = expire(tmp_path, keep_days=11, today=date(2026, 11, 21))
    assert [(c.table, c.day) for c in dropped] == [("worker_samples", date(2026, 11, 1))]
    assert retention_cutoff(11, date(2026, 11, 21)) == date(2026, 11, 11)
    assert retention_floor(tmp_path) == date(2026, 11, 11)
    assert count(tmp_path) == (2, 2)


def test_compaction_and_retention_while_a_reader_reads(tmp_path):
    days = [date(2026, 11, d) for d in range(1, 6)]
    w = LakeWriter(tmp_path)
    for d in days:
        for n in range(6):
            w.publish(
                WORKER_SAMPLES, d, samples([f"{d}-{n}-{k}" for k in range(50)], d), f"p{n}.parquet"
            )
    seen: list[tuple[int, int]] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(count(tmp_path))
            except Exception as e:  # every failure is a finding
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        merged = compact(tmp_path, today=date(2026, 11, 6))
        expire(tmp_path, keep_days=3, today=date(2026, 11, 5))
    finally:
        stop.set()
        t.join()
    assert not errors
    assert len(merged) == 5 and all(c.files_before == 6 and c.rows == 300 for c in merged)
    # Every read saw whole days only: 5 days of 300 rows, then fewer whole days, never a duplicate.
    assert seen and all(total == distinct and total % 300 == 0 for total, distinct in seen)
    assert count(tmp_path) == (900, 900)
    assert all(len(data_files(partition_dir(tmp_path, "worker_samples", d))) == 1 for d in days[2:])


def _stamped(ids: list[str], day: date, at: datetime) -> pa.Table:
    data = samples(ids, day)
    stamp = pa.array([at] * data.num_rows, data.schema.field("ingested_at").type)
    return data.set_column(data.schema.get_field_index("ingested_at"), "ingested_at", stamp)


def test_newest_ingested_at_reads_the_newest_files_until_none_can_be_newer(tmp_path):
    day = date(2026, 11, 20)
    w = LakeWriter(tmp_path)
    hour = lambda h: datetime(2026, 11, 20, h, tzinfo=UTC)  # noqa: E731
    # (file, rows stamped at, file modified at): a file is modified after its rows are stamped;
    # "compacted" was rewritten last, holding older rows.
    for name, stamped, modified in [
        ("old.parquet", hour(9), hour(9)),
        ("newest-rows.parquet", hour(10), hour(10)),
        ("compacted.parquet", hour(8), hour(11)),
    ]:
        w.publish(WORKER_SAMPLES, day, _stamped([name], day, stamped), name)
        ns = int(modified.timestamp()) * 1_000_000_000 + 1_000_000_000
        os.utime(partition_dir(tmp_path, "worker_samples", day) / name, ns=(ns, ns))
    files = views.table_files(tmp_path, "worker_samples")
    assert len(files) == 3
    assert views.newest_ingested_at(files) == hour(10)
    assert views.newest_ingested_at([]) is None


def test_map_keys_and_values_are_dictionary_encoded(tmp_path):
    # Parquet stores a map's keys and values as columns of their own; DuckDB reads them faster
    # from dictionaries (a few parameter names, over and over). Times and integers: deltas.
    table = pa.table(
        {
            "event_id": ["e1", "e2"],
            "at": pa.array([1, 2], pa.timestamp("us", tz="UTC")),
            "params": pa.array(
                [[("steps", "30")], [("steps", "20")]], pa.map_(pa.string(), pa.string())
            ),
            "tags": pa.array([["a"], ["b"]], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "x.parquet"
    writer.write_parquet(table, path)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {
        meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)
    }
    for leaf in ("event_id", "params.key_value.key", "params.key_value.value", "tags.list.element"):
        assert "RLE_DICTIONARY" in encodings[leaf], leaf
    assert "DELTA_BINARY_PACKED" in encodings["at"]


def test_small_files_are_snappy_with_statistics_on_their_times_only(tmp_path):
    # A small file's cost is per column chunk (zstd's set-up, string statistics); a large one's
    # is per byte, where zstd pays.
    def written(rows: int) -> pq.RowGroupMetaData:
        table = pa.table(
            {
                "event_id": [f"e{n}" for n in range(rows)],
                "at": pa.array(range(rows), pa.timestamp("us", tz="UTC")),
            }
        )
        path = tmp_path / f"{rows}.parquet"
        writer.write_parquet(table, path)
        assert pq.read_table(path).equals(table)
        return pq.ParquetFile(path).metadata.row_group(0)

    small = written(writer.SMALL_FILE_ROWS - 1)
    assert [small.column(i).compression for i in (0, 1)] == ["SNAPPY", "SNAPPY"]
    assert small.column(0).statistics is None
    assert small.column(1).statistics.has_min_max
    large = written(writer.SMALL_FILE_ROWS)
    assert [large.column(i).compression for i in (0, 1)] == ["ZSTD", "ZSTD"]
    assert large.column(0).statistics.has_min_max and large.column(1).statistics.has_min_max
