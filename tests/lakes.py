"""Hand-built lakes for query, page and report tests: events written through the real pipeline.

Tests state their events as contract dicts; `write_events` encodes them and runs them through
`ingest.pipeline.Pipeline` into a lake folder, exactly as ingest would.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ingest.batch import Record
from ingest.pipeline import FlushPolicy, Pipeline

TOPIC = "perf.job-events"


def encode(event: dict) -> bytes:
    """The Kafka value of a contract event (schema_version 1 unless the dict says otherwise)."""
    return orjson.dumps({"schema_version": 1} | event)


def write_events(
    lake: Path,
    events: Iterable[dict],
    bad: Iterable[bytes] = (),
    received_at: datetime = datetime(2025, 6, 30, tzinfo=UTC),
    keep_days: int = 36500,
) -> Path:
    """Write `events` (and the raw `bad` values) into `lake` on partition 0; returns the lake.

    `received_at` is the Kafka timestamp of every record (it dates the quarantine).
    """
    values = [encode(e) for e in events] + list(bad)
    at = int(received_at.timestamp() * 1000)
    pipeline = Pipeline(lake, TOPIC, keep_days=keep_days, policy=FlushPolicy())
    pipeline.add([Record(TOPIC, 0, i, at, None, v) for i, v in enumerate(values)])
    pipeline.flush()
    return pipeline.lake
