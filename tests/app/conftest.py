"""Lakes for the page tests: a tiny one written through the ingest pipeline, and an empty one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.batch import Record
from ingest.pipeline import FlushPolicy, Pipeline
from lake.layout import ensure_lake, write_meta

TOPIC = "perf.job-events"

# One event of every type over two UTC days, and two messages that break the contract.
EVENTS: list[dict] = [
    {
        "event_type": "job.completed",
        "event_id": "j1",
        "occurred_at": "2025-06-01T10:00:00Z",
        "job_id": "job-1",
        "workflow_id": "wf-a",
        "worker_id": "gpu-01",
        "frame_count": 10,
        "total_gpu_time_ms": 1000,
        "pipeline_stages": [{"name": "sample", "duration_ms": 900}],
    },
    {
        "event_type": "job.failed",
        "event_id": "f1",
        "occurred_at": "2025-06-02T11:00:00Z",
        "job_id": "job-2",
        "workflow_id": "wf-a",
        "worker_id": "gpu-02",
        "error_type": "oom",
    },
    {
        "event_type": "worker.sample",
        "event_id": "gpu-01:0:1",
        "occurred_at": "2025-06-02T12:00:00Z",
        "worker_id": "gpu-01",
        "gpu_index": 0,
        "state": "idle",
        "interval_s": 10,
    },
    {
        "event_type": "review.completed",
        "event_id": "r1",
        "occurred_at": "2025-06-02T13:00:00Z",
        "review_id": "rev-1",
        "reviewer_id": "u-1",
        "project_id": "p-1",
        "character_id": "char-1",
        "submitted_at": "2025-06-02T12:30:00Z",
        "decision": "approved",
        "segment_count": 1,
        "annotation_count": 0,
    },
    {
        "event_type": "character.delivered",
        "event_id": "d1",
        "occurred_at": "2025-06-02T14:00:00Z",
        "character_id": "char-1",
        "project_id": "p-1",
        "onboarded_at": "2025-05-01T00:00:00Z",
    },
]
BAD: list[bytes] = [b"not json", orjson.dumps({"schema_version": 1, "event_type": "job.exploded"})]


def build_lake(lake: Path) -> Path:
    """Write EVENTS and BAD into `lake` through the ingest pipeline; returns the lake."""
    values = [orjson.dumps({"schema_version": 1} | e) for e in EVENTS] + BAD
    at = int(datetime(2025, 6, 2, 15, tzinfo=UTC).timestamp() * 1000)
    pipeline = Pipeline(lake, TOPIC, keep_days=3650, policy=FlushPolicy())
    pipeline.add([Record(TOPIC, 0, i, at, None, v) for i, v in enumerate(values)])
    pipeline.flush()
    return pipeline.lake


@pytest.fixture(scope="session")
def tiny_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = build_lake(tmp_path_factory.mktemp("app") / "lake")
    status = {
        "group": "perflake-ingest",
        "topic": TOPIC,
        "lag": 0,
        "events_per_s": 12.5,
        "records": 7,
        "quarantined": 2,
        "updated_at": datetime.now(UTC).isoformat(),
    }
    write_meta(lake, ingest=status)
    return lake


@pytest.fixture
def empty_lake(tmp_path: Path) -> Path:
    return ensure_lake(tmp_path / "empty", create=True)
