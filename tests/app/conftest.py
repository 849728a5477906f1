"""Lakes for the page tests: a tiny one written through the ingest pipeline, and an empty one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from ingest.batch import Record
from ingest.pipeline import FlushPolicy, Pipeline
from lake.layout import ensure_lake, write_meta
from lake.tables import ALERTS
from lake.writer import LakeWriter
from tests.lakes import write_events

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


# The farm the analysis pages are tested on: 2025-06-01..05 (UTC), three workflows on three L40S
# workers, 18 jobs a day 50 minutes apart from 06:00 (90 jobs: 30 per workflow, enough for the
# comparison's verdicts, and 30 per worker) and 5 failures (the day's first job, always wf-a).
# Every job's figures follow from its number i, so a test can work out what a page must show:
#   workflow  wf-a (i % 3 == 0), wf-b (1), wf-c (2); wf-a is version v1 before 06-04, v2 after
#   worker    gpu-01 / gpu-02 / gpu-03 by i % 3 shifted by the day; gpu-03 runs 40% slower
#   project   p-1 for even i, p-2 for odd; scene idle / walk by i % 2 (as project); tier 1080p
#   frames    24; time per frame 1000 ms (+200 wf-b, +500 wf-c, x1.4 on gpu-03)
#   scores    likeness 0.5 + 0.4 * lora_strength; lora_strength (i % 5) / 4; custom lip_sync 0.7
#   params    cfg_scale 6 or 7 (i % 2), steps 30, lora_strength; stages load_model + sample
#   vram      12000 of 24000 MB, but 22000 (92%) on job 7 and 23500 (98%) on job 11
FARM_DAYS = 5
FARM_JOBS_PER_DAY = 18
FARM_WORKFLOWS = ("wf-a", "wf-b", "wf-c")
FARM_WORKERS = ("gpu-01", "gpu-02", "gpu-03")


def farm_events() -> list[dict]:
    out: list[dict] = []
    for i in range(FARM_DAYS * FARM_JOBS_PER_DAY):
        day, n = divmod(i, FARM_JOBS_PER_DAY)
        workflow = FARM_WORKFLOWS[i % 3]
        worker = FARM_WORKERS[(i + day) % 3]
        tpf = (1000 + {"wf-a": 0, "wf-b": 200, "wf-c": 500}[workflow]) * (
            1.4 if worker == "gpu-03" else 1
        )
        lora = (i % 5) / 4
        at = datetime(2025, 6, 1 + day, 6, tzinfo=UTC) + timedelta(minutes=50 * n)
        job = {
            "job_id": f"job-{i}",
            "workflow_id": workflow,
            "workflow_name": workflow.upper(),
            "workflow_version": "v2" if workflow == "wf-a" and day >= 3 else "v1",
            "worker_id": worker,
            "gpu_model": "NVIDIA L40S",
            "project_id": f"p-{1 + i % 2}",
            "character_id": f"char-{i % 4}",
            "scene_type": ("idle", "walk")[i % 2],
            "resolution_tier": "1080p",
            "occurred_at": at.isoformat(),
            "params": {"cfg_scale": 6 + i % 2, "steps": 30, "lora_strength": lora},
        }
        out.append(
            job
            | {
                "event_type": "job.completed",
                "event_id": f"job-{i}",
                "frame_count": 24,
                "total_gpu_time_ms": round(tpf * 24),
                "time_per_frame_ms": tpf,
                "vram_peak_mb": {7: 22_000, 11: 23_500}.get(i, 12_000),
                "vram_total_mb": 24_000,
                "quality_scores": {
                    "likeness": 0.5 + 0.4 * lora,
                    "face_confidence": 0.9,
                    "motion_quality": 0.8,
                    "boundary_ssim": 0.95,
                    "lip_sync": 0.7,
                },
                "pipeline_stages": [
                    {"name": "load_model", "duration_ms": 2000},
                    {"name": "sample", "duration_ms": round(tpf * 24) - 2000},
                ],
            }
        )
        if n == 0:  # one failure a day, on the day's first job's workflow and worker
            out.append(
                job
                | {
                    "event_type": "job.failed",
                    "event_id": f"fail-{i}",
                    "job_id": f"job-{i}-failed",
                    "occurred_at": (at - timedelta(minutes=30)).isoformat(),
                    "error_type": "oom",
                    "total_gpu_time_ms": 5000,
                }
            )
        out.append(
            {
                "event_type": "worker.sample",
                "event_id": f"sample-{i}",
                "occurred_at": at.isoformat(),
                "worker_id": worker,
                "gpu_model": "NVIDIA L40S",
                "state": "generating",
                "interval_s": 60,
                "job_id": f"job-{i}",
            }
        )
    return out


# The alerts of the default VRAM threshold (warning 85%, critical 95%) on jobs 7 and 11, as
# ingest records them; written here so the pages' tests do not depend on ingest's evaluation.
FARM_ALERTS: list[dict] = [
    {
        "event_id": "job-7",
        "metric": "vram_peak_pct",
        "occurred_at": datetime(2025, 6, 1, 11, 50, tzinfo=UTC),
        "level": "warning",
        "value": 22_000 / 24_000 * 100,
        "threshold": 85.0,
        "scope": "global",
        "job_id": "job-7",
        "workflow_id": "wf-b",
        "worker_id": "gpu-02",
        "project_id": "p-2",
        "scene_type": "walk",
        "resolution_tier": "1080p",
    },
    {
        "event_id": "job-11",
        "metric": "vram_peak_pct",
        "occurred_at": datetime(2025, 6, 1, 15, 10, tzinfo=UTC),
        "level": "critical",
        "value": 23_500 / 24_000 * 100,
        "threshold": 95.0,
        "scope": "global",
        "job_id": "job-11",
        "workflow_id": "wf-c",
        "worker_id": "gpu-03",
        "project_id": "p-2",
        "scene_type": "walk",
        "resolution_tier": "1080p",
    },
]


@pytest.fixture(scope="session")
def farm_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = write_events(tmp_path_factory.mktemp("app") / "farm", farm_events())
    rows = pa.Table.from_pylist(FARM_ALERTS, schema=ALERTS.schema)
    LakeWriter(lake).publish(ALERTS, date(2025, 6, 1), rows, "farm-alerts.parquet")
    return lake
