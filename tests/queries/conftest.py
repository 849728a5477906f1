"""The tiny farm lake shared by the overview, workflows and timeseries query tests.

What it holds (UTC days; 2025-06-02 is a Monday; gpu = total_gpu_time_ms, tpf = time per frame):

  job  day    workflow  worker  project scene  tier   frames gpu        tpf   wall       vram
  j1   06-02  wf-a      gpu-01  p1      idle   1080p  900    900_000    1000  1_000_000  4000
  j2   06-02  wf-a      gpu-02  p1      walk   4k     900    1_800_000  2000  2_000_000  8000
  j3   06-04  wf-b      gpu-01  p2      idle   1080p  300    900_000    3000  -          null
  j4   06-10  wf-b      gpu-02  p2      action 720p   600    1_800_000  4000* 2_000_000  6000
  f1   06-02  wf-a      gpu-02  p1      walk   4k     failed: oom, gpu 1_800_000, vram 24000
  f2   06-09  wf-c      gpu-01  p2      idle   1080p  failed: crash, no gpu time

  * j4 sends time_per_frame_ms 4000 (its gpu / frames would be 3000): the lake keeps it as sent.
  j3 is sent at 2025-06-03T23:30-01:00 (06-04 00:30 UTC) and f2 at 2025-06-08T23:30-01:00, a
  Sunday there but Monday 06-09 00:30 UTC: the next UTC day and the next week.
  Workflow names: j1 "Alpha old", j2 "Alpha", f1 none, j3/j4 "Beta", f2 "Gamma".
  Character: only j1 (char-1).

  quality scores: j1 likeness 0.8, face_confidence 0.9, motion_quality 0.7, boundary_ssim 0.95,
                     loop_seam 0.5 (custom); j2 likeness 0.6; j3 none; j4 likeness 0.9, loop_seam 0.7
  stages (ms):    j1 load_model 100, sample 800; j2 load_model 100, sample 3000; j3 sample 1200;
                  j4 load_model 200, vae_decode 2000; f1 load_model 100, sample 500
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lake.layout import ensure_lake
from queries import cells
from queries.base import Filters, frame
from tests.lakes import write_events


def _job(event_id: str, occurred_at: str, workflow: str, worker: str, **fields: object) -> dict:
    return {
        "event_type": "job.completed",
        "event_id": event_id,
        "occurred_at": occurred_at,
        "job_id": f"job-{event_id}",
        "workflow_id": workflow,
        "worker_id": worker,
    } | fields


def kind_cells(
    lake: Path, filters: Filters, kind: cells.Kind, keys: list[str], cached: bool
) -> pl.DataFrame:
    """The cells of `kind` within `filters`: through the rollup (`cached`), or from the rows
    themselves, with no rollup involved; sorted by `keys`, columns by name."""
    if cached:
        found = cells.cells(lake, filters, kind)
        sql, params, tables = found.sql, found.params, found.tables
    else:
        rows, params = kind.rows(filters)
        sql, tables = kind.cells(rows, "true"), {}
    got = frame(lake, f"select * from ({sql})", params, tables)
    return got.sort(keys, nulls_last=True).select(sorted(got.columns))


def _stages(**durations: int) -> list[dict]:
    return [{"name": name, "duration_ms": ms} for name, ms in durations.items()]


FARM_EVENTS: list[dict] = [
    _job(
        "j1",
        "2025-06-02T10:00:00Z",
        "wf-a",
        "gpu-01",
        workflow_name="Alpha old",
        project_id="p1",
        character_id="char-1",
        scene_type="idle",
        resolution_tier="1080p",
        frame_count=900,
        total_gpu_time_ms=900_000,
        total_wall_time_ms=1_000_000,
        vram_peak_mb=4000,
        vram_total_mb=24000,
        quality_scores={
            "likeness": 0.8,
            "face_confidence": 0.9,
            "motion_quality": 0.7,
            "boundary_ssim": 0.95,
            "loop_seam": 0.5,
        },
        pipeline_stages=_stages(load_model=100, sample=800),
    ),
    _job(
        "j2",
        "2025-06-02T12:00:00Z",
        "wf-a",
        "gpu-02",
        workflow_name="Alpha",
        project_id="p1",
        scene_type="walk",
        resolution_tier="4k",
        frame_count=900,
        total_gpu_time_ms=1_800_000,
        total_wall_time_ms=2_000_000,
        vram_peak_mb=8000,
        quality_scores={"likeness": 0.6},
        pipeline_stages=_stages(load_model=100, sample=3000),
    ),
    _job(
        "j3",
        "2025-06-03T23:30:00-01:00",
        "wf-b",
        "gpu-01",
        workflow_name="Beta",
        project_id="p2",
        scene_type="idle",
        resolution_tier="1080p",
        frame_count=300,
        total_gpu_time_ms=900_000,
        vram_peak_mb=None,
        pipeline_stages=_stages(sample=1200),
    ),
    _job(
        "j4",
        "2025-06-10T08:00:00Z",
        "wf-b",
        "gpu-02",
        workflow_name="Beta",
        project_id="p2",
        scene_type="action",
        resolution_tier="720p",
        frame_count=600,
        total_gpu_time_ms=1_800_000,
        time_per_frame_ms=4000,
        total_wall_time_ms=2_000_000,
        vram_peak_mb=6000,
        quality_scores={"likeness": 0.9, "loop_seam": 0.7},
        pipeline_stages=_stages(load_model=200, vae_decode=2000),
    ),
    {
        "event_type": "job.failed",
        "event_id": "f1",
        "occurred_at": "2025-06-02T15:00:00Z",
        "job_id": "job-f1",
        "workflow_id": "wf-a",
        "worker_id": "gpu-02",
        "project_id": "p1",
        "scene_type": "walk",
        "resolution_tier": "4k",
        "error_type": "oom",
        "frame_count": 100,
        "total_gpu_time_ms": 1_800_000,
        "vram_peak_mb": 24000,
        "pipeline_stages": _stages(load_model=100, sample=500),
    },
    {
        "event_type": "job.failed",
        "event_id": "f2",
        "occurred_at": "2025-06-08T23:30:00-01:00",
        "job_id": "job-f2",
        "workflow_id": "wf-c",
        "workflow_name": "Gamma",
        "worker_id": "gpu-01",
        "project_id": "p2",
        "scene_type": "idle",
        "resolution_tier": "1080p",
        "error_type": "crash",
    },
]


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny farm lake described above (read-only for tests)."""
    return write_events(tmp_path_factory.mktemp("farm") / "lake", FARM_EVENTS)


@pytest.fixture
def bare_lake(tmp_path: Path) -> Path:
    """A lake with no data at all."""
    return ensure_lake(tmp_path / "bare", create=True)
