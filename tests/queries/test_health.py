"""The ingest-health queries against a tiny lake written through the ingest pipeline."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from ingest.batch import Record
from ingest.pipeline import FlushPolicy, Pipeline
from lake import LakeNotFoundError
from lake.layout import ensure_lake, write_meta
from lake.tables import TABLES
from queries import base, health

TOPIC = "perf.job-events"


def _job(event_id: str, occurred_at: str, job_id: str, stages: int = 0) -> dict:
    event = {
        "event_type": "job.completed",
        "event_id": event_id,
        "occurred_at": occurred_at,
        "job_id": job_id,
        "workflow_id": "wf-a",
        "worker_id": "gpu-01",
        "frame_count": 10,
        "total_gpu_time_ms": 1000,
    }
    if stages:
        event["pipeline_stages"] = [
            {"name": f"stage-{i}", "duration_ms": 100} for i in range(stages)
        ]
    return event


def _value(event: dict) -> bytes:
    return orjson.dumps({"schema_version": 1} | event)


# What the tiny lake holds, by UTC day (occurred_at for events, Kafka time for the quarantine):
#   2025-06-01  jobs 1 (j1, 2 stages -> job_stages 2), worker_samples 1
#   2025-06-02  jobs 1, reviews 1, quarantine 1
#   2025-06-03  job_failures 1 (23:30 at -01:00 on 06-02 is 00:30 UTC on 06-03, 1 stage),
#               job_stages 1, deliveries 1, worker_samples 1, quarantine 4
# j1 arrives twice; the lake keeps it once.
EVENTS: list[dict] = [
    _job("j1", "2025-06-01T10:00:00Z", "job-1", stages=2),
    {
        "event_type": "worker.sample",
        "event_id": "gpu-01:0:1",
        "occurred_at": "2025-06-01T10:00:05Z",
        "worker_id": "gpu-01",
        "gpu_index": 0,
        "state": "generating",
        "interval_s": 10,
    },
    _job("j2", "2025-06-02T09:00:00Z", "job-2"),
    {
        "event_type": "review.completed",
        "event_id": "r1",
        "occurred_at": "2025-06-02T12:00:00Z",
        "review_id": "rev-1",
        "reviewer_id": "u-1",
        "project_id": "p-1",
        "character_id": "char-1",
        "submitted_at": "2025-06-02T11:00:00Z",
        "decision": "approved",
        "segment_count": 2,
        "annotation_count": 0,
    },
    {
        "event_type": "job.failed",
        "event_id": "f1",
        "occurred_at": "2025-06-02T23:30:00-01:00",
        "job_id": "job-3",
        "workflow_id": "wf-a",
        "worker_id": "gpu-02",
        "error_type": "oom",
        "pipeline_stages": [{"name": "sample", "duration_ms": 5}],
    },
    {
        "event_type": "character.delivered",
        "event_id": "d1",
        "occurred_at": "2025-06-03T08:00:00Z",
        "character_id": "char-1",
        "project_id": "p-1",
        "onboarded_at": "2025-05-01T00:00:00Z",
    },
    {
        "event_type": "worker.sample",
        "event_id": "gpu-02:0:2",
        "occurred_at": "2025-06-03T08:00:00Z",
        "worker_id": "gpu-02",
        "gpu_index": 0,
        "state": "idle",
        "interval_s": 10,
    },
    _job("j1", "2025-06-01T10:00:00Z", "job-1", stages=2),
]

# (Kafka timestamp, value) of messages that break the contract.
LONG = b"this is not json " * 20

# (Kafka timestamp, value) of messages that break the contract.
BAD: list[tuple[str, bytes]] = [
    ("2025-06-02T10:00:00Z", LONG),
    (
        "2025-06-03T11:00:00Z",
        _value(_job("b1", "2025-06-03T10:00:00Z", "job-9") | {"frame_count": 0}),
    ),
    (
        "2025-06-03T12:00:00Z",
        _value(_job("b2", "2025-06-03T10:00:00Z", "job-9") | {"frame_count": "240"}),
    ),
    ("2025-06-03T13:00:00Z", b"\xff\xfe{"),
    (
        "2025-06-03T09:00:00Z",
        _value(_job("b3", "2025-06-03T09:00:00Z", "job-9") | {"schema_version": 2}),
    ),
]


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _records() -> list[Record]:
    messages = [(_ms(e["occurred_at"]), _value(e)) for e in EVENTS] + [
        (_ms(at), value) for at, value in BAD
    ]
    return [Record(TOPIC, 0, offset, ts, None, v) for offset, (ts, v) in enumerate(messages)]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime, datetime]:
    """The tiny lake, and the moments just before and after its one flush."""
    lake = tmp_path_factory.mktemp("tiny") / "lake"
    pipeline = Pipeline(lake, TOPIC, keep_days=3650, policy=FlushPolicy())
    pipeline.add(_records())
    before = datetime.now(UTC)
    pipeline.flush()
    return lake, before, datetime.now(UTC)


@pytest.fixture
def lake(tiny: tuple[Path, datetime, datetime]) -> Path:
    return tiny[0]


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    return ensure_lake(tmp_path / "empty", create=True)


def test_rows_per_day_counts_every_table_per_utc_day(lake: Path) -> None:
    got = health.rows_per_day(lake)
    assert got.rows() == [
        ("job_stages", date(2025, 6, 1), 2),
        ("jobs", date(2025, 6, 1), 1),
        ("worker_samples", date(2025, 6, 1), 1),
        ("jobs", date(2025, 6, 2), 1),
        ("quarantine", date(2025, 6, 2), 1),
        ("reviews", date(2025, 6, 2), 1),
        ("deliveries", date(2025, 6, 3), 1),
        ("job_failures", date(2025, 6, 3), 1),
        ("job_stages", date(2025, 6, 3), 1),
        ("quarantine", date(2025, 6, 3), 4),
        ("worker_samples", date(2025, 6, 3), 1),
    ]
    assert got.schema == pl.Schema({"table": pl.String, "date": pl.Date, "rows": pl.Int64})


@pytest.mark.parametrize(
    ("days", "dates"),
    [
        (1, [date(2025, 6, 3)]),
        (2, [date(2025, 6, 2), date(2025, 6, 3)]),
        (3, [date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)]),
        (30, [date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)]),
    ],
)
def test_rows_per_day_keeps_the_last_days_with_data(lake: Path, days: int, dates: list) -> None:
    got = health.rows_per_day(lake, days=days)
    assert got.get_column("date").unique(maintain_order=True).to_list() == dates


def test_rows_per_day_refuses_no_days(lake: Path) -> None:
    with pytest.raises(ValueError, match="days"):
        health.rows_per_day(lake, days=0)


def test_table_totals(tiny: tuple[Path, datetime, datetime]) -> None:
    lake, before, after = tiny
    got = health.table_totals(lake)
    d1, d2, d3 = date(2025, 6, 1), date(2025, 6, 2), date(2025, 6, 3)
    assert got.drop("latest_ingested_at").rows() == [
        ("jobs", 2, 2, d1, d2),
        ("job_failures", 1, 1, d3, d3),
        ("job_stages", 3, 2, d1, d3),
        ("worker_samples", 2, 2, d1, d3),
        ("reviews", 1, 1, d2, d2),
        ("deliveries", 1, 1, d3, d3),
        ("quarantine", 5, 2, d2, d3),
        ("alerts", 0, 0, None, None),  # no job crossed a threshold
    ]
    ingested = got.get_column("latest_ingested_at").to_list()
    assert all(before <= t <= after for t in ingested[:-1])
    assert ingested[-1] is None


def test_latest_events_newest_first_ties_by_event_id(lake: Path) -> None:
    got = health.latest_events(lake)
    assert got.drop("ingested_at").rows() == [
        ("character.delivered", "d1", _utc("2025-06-03T08:00:00Z"), "char-1"),
        ("worker.sample", "gpu-02:0:2", _utc("2025-06-03T08:00:00Z"), "gpu-02"),
        ("job.failed", "f1", _utc("2025-06-03T00:30:00Z"), "job-3"),
        ("review.completed", "r1", _utc("2025-06-02T12:00:00Z"), "rev-1"),
        ("job.completed", "j2", _utc("2025-06-02T09:00:00Z"), "job-2"),
        ("worker.sample", "gpu-01:0:1", _utc("2025-06-01T10:00:05Z"), "gpu-01"),
        ("job.completed", "j1", _utc("2025-06-01T10:00:00Z"), "job-1"),
    ]
    assert got.columns == ["event_type", "event_id", "occurred_at", "ingested_at", "subject"]


@pytest.mark.parametrize(("limit", "ids"), [(1, ["d1"]), (3, ["d1", "gpu-02:0:2", "f1"])])
def test_latest_events_limit(lake: Path, limit: int, ids: list[str]) -> None:
    assert health.latest_events(lake, limit=limit).get_column("event_id").to_list() == ids


def test_quarantine_newest_first_with_preview(lake: Path) -> None:
    got = health.quarantine(lake)
    assert got.columns == [
        "received_at",
        "topic",
        "kafka_partition",
        "kafka_offset",
        "reason",
        "event_type",
        "event_id",
        "preview",
    ]
    assert got.select("received_at", "kafka_offset", "event_type", "event_id").rows() == [
        (_utc("2025-06-03T13:00:00Z"), 11, None, None),
        (_utc("2025-06-03T12:00:00Z"), 10, "job.completed", "b2"),
        (_utc("2025-06-03T11:00:00Z"), 9, "job.completed", "b1"),
        (_utc("2025-06-03T09:00:00Z"), 12, "job.completed", "b3"),
        (_utc("2025-06-02T10:00:00Z"), 8, None, None),
    ]
    assert got.get_column("reason")[1] == 'frame_count: must be an integer >= 1, got "240"'
    previews = got.get_column("preview").to_list()
    assert previews[0] == "\ufffd\ufffd{"
    # Cut to 200 characters.
    assert [len(p) for p in previews] == [3, 200, 200, 200, 200]
    assert previews[1] == BAD[2][1].decode()[:200]
    assert previews[4] == LONG.decode()[:200]
    assert set(got.get_column("topic")) == {TOPIC}


def test_quarantine_limit(lake: Path) -> None:
    assert health.quarantine(lake, limit=2).get_column("kafka_offset").to_list() == [11, 10]


def test_quarantine_reasons_group_a_rule_whatever_the_value(lake: Path) -> None:
    got = health.quarantine_reasons(lake)
    assert got.rows() == [
        # Two messages each: the more recent first.
        ("value: not UTF-8 JSON", 2, _utc("2025-06-03T13:00:00Z")),
        ("frame_count: must be an integer >= 1", 2, _utc("2025-06-03T12:00:00Z")),
        ("schema_version: must be 1", 1, _utc("2025-06-03T09:00:00Z")),
    ]


def test_ingest_status_absent_then_reported(lake: Path, empty: Path) -> None:
    assert health.ingest_status(empty) == {}
    status = {
        "group": "perflake-ingest",
        "lag": 3,
        "events_per_s": 120.5,
        "records": 42,
        "quarantined": 1,
        "updated_at": "2025-06-03T14:00:00+00:00",
    }
    write_meta(empty, ingest=status)
    assert health.ingest_status(empty) == status


EMPTY_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "rows_per_day": {"table": pl.String(), "date": pl.Date(), "rows": pl.Int64()},
    "latest_events": {
        "event_type": pl.String(),
        "event_id": pl.String(),
        "occurred_at": pl.Datetime("us", "UTC"),
        "ingested_at": pl.Datetime("us", "UTC"),
        "subject": pl.String(),
    },
    "quarantine": {
        "received_at": pl.Datetime("us", "UTC"),
        "topic": pl.String(),
        "kafka_partition": pl.Int32(),
        "kafka_offset": pl.Int64(),
        "reason": pl.String(),
        "event_type": pl.String(),
        "event_id": pl.String(),
        "preview": pl.String(),
    },
    "quarantine_reasons": {
        "rule": pl.String(),
        "messages": pl.Int64(),
        "last_received_at": pl.Datetime("us", "UTC"),
    },
}


@pytest.mark.parametrize("query", sorted(EMPTY_SCHEMAS))
def test_empty_lake_gives_empty_typed_frames(empty: Path, query: str) -> None:
    got = getattr(health, query)(empty)
    assert got.is_empty()
    assert got.schema == pl.Schema(EMPTY_SCHEMAS[query])


def test_empty_lake_totals_list_every_table_with_nothing(empty: Path) -> None:
    got = health.table_totals(empty)
    assert got.rows() == [
        (name, 0, 0, None, None, None)
        for name in (
            "jobs",
            "job_failures",
            "job_stages",
            "worker_samples",
            "reviews",
            "deliveries",
            "quarantine",
            "alerts",
        )
    ]
    assert got.schema == pl.Schema(
        [
            ("table", pl.String()),
            ("rows", pl.Int64()),
            ("days", pl.Int64()),
            ("first_date", pl.Date()),
            ("last_date", pl.Date()),
            ("latest_ingested_at", pl.Datetime("us", "UTC")),
        ]
    )


def test_missing_lake_is_named(tmp_path: Path) -> None:
    with pytest.raises(LakeNotFoundError, match="does not exist"):
        health.table_totals(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["jobs; drop view jobs", 'jobs"', "nope"])
def test_identifiers_off_the_allowlist_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a known"):
        base.quoted(name, TABLES)


@pytest.fixture
def sparse(tmp_path: Path) -> Path:
    """Two events ten days apart, and a tombstone (a message with no value)."""
    pipeline = Pipeline(tmp_path / "sparse", TOPIC, keep_days=3650, policy=FlushPolicy())
    first = _job("s1", "2025-06-01T10:00:00Z", "job-1")
    last = _job("s2", "2025-06-11T10:00:00Z", "job-2")
    pipeline.add(
        [
            Record(TOPIC, 1, 0, _ms(first["occurred_at"]), None, _value(first)),
            Record(TOPIC, 1, 1, _ms(last["occurred_at"]), None, _value(last)),
            Record(TOPIC, 1, 2, _ms("2025-06-11T11:00:00Z"), b"k", None),
        ]
    )
    pipeline.flush()
    return pipeline.lake


def test_rows_per_day_skips_days_without_data(sparse: Path) -> None:
    assert health.rows_per_day(sparse, days=2).rows() == [
        ("jobs", date(2025, 6, 1), 1),
        ("jobs", date(2025, 6, 11), 1),
        ("quarantine", date(2025, 6, 11), 1),
    ]


def test_a_tombstone_has_no_preview(sparse: Path) -> None:
    got = health.quarantine(sparse)
    assert got.select("kafka_partition", "kafka_offset", "reason", "preview").rows() == [
        (1, 2, "value: empty message (tombstone)", None)
    ]
    assert health.quarantine_reasons(sparse).rows() == [
        ("value: empty message", 1, _utc("2025-06-11T11:00:00Z"))
    ]
