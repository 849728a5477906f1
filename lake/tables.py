"""Every lake table declared once: its Arrow schema, column docs, partition column and key.

The writer, the views, the README's data dictionary and the tests all build on these declarations;
no other module spells a column list.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
I64 = pa.int64()
I32 = pa.int32()
F64 = pa.float64()
BOOL = pa.bool_()
SCORES = pa.map_(pa.string(), pa.float64())
TEXT_MAP = pa.map_(pa.string(), pa.string())

#: The four standard quality scores of the contract, typed columns in `jobs`.
STANDARD_SCORES = ("likeness", "face_confidence", "motion_quality", "boundary_ssim")


def _col(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


@dataclass(frozen=True)
class Table:
    """One lake table: files under `<lake>/<name>/date=YYYY-MM-DD/`, one row per `key`."""

    name: str
    doc: str
    schema: pa.Schema
    #: Timestamp column whose UTC date names the partition folder.
    partition_by: str
    #: Columns that identify a row; the writer keeps one row per key across all files.
    key: tuple[str, ...]
    #: The table this one is a fixed sample of (same columns), written alongside it.
    sample_of: str | None = None

    def doc_of(self, column: str) -> str:
        meta = self.schema.field(column).metadata or {}
        return meta.get(b"doc", b"").decode()


_ENVELOPE = [
    _col("event_id", STR, "Unique id of the event; the lake holds each once.", nullable=False),
    _col("occurred_at", TS, "When it happened (UTC); its date names the partition.", False),
    _col("producer", STR, "Emitting service, when given."),
]
_INGEST = [
    _col("extra", STR, "Fields the contract does not know yet, as a JSON object (null if none)."),
    _col("kafka_partition", I32, "Kafka partition the event was read from."),
    _col("kafka_offset", I64, "Kafka offset of the first delivery kept."),
    _col("ingested_at", TS, "When perflake published the row (UTC)."),
]
_IDENTITY = [
    _col("job_id", STR, "Job identifier; a retried job keeps it.", False),
    _col("attempt", I32, "1 for the first try, growing with retries.", False),
    _col("workflow_id", STR, "Generation workflow (ComfyUI graph).", False),
    _col("workflow_name", STR, "Human name of the workflow."),
    _col("workflow_version", STR, "Changes when the workflow or its defaults change."),
    _col("worker_id", STR, "GPU worker that ran the attempt.", False),
    _col("gpu_model", STR, "GPU model of the worker."),
    _col("project_id", STR, "Project generated for."),
    _col("character_id", STR, "Character generated."),
    _col("scene_id", STR, "Scene generated."),
    _col("scene_type", STR, "idle, walk, dialogue, action, ..."),
    _col("resolution_tier", STR, "720p, 1080p, 4k, ..."),
    _col("queued_at", TS, "Queue entry (UTC)."),
    _col("started_at", TS, "Start of the attempt (UTC)."),
]
_PARAMS = [
    _col("params", TEXT_MAP, "All generation parameters as text (true/false for booleans)."),
    _col("params_num", SCORES, "The numeric parameters as numbers, for correlations."),
]

JOBS = Table(
    "jobs",
    "One row per completed job attempt (event job.completed).",
    pa.schema(
        [
            *_ENVELOPE,
            *_IDENTITY,
            _col("frame_count", I64, "Frames produced (>= 1).", False),
            _col("total_gpu_time_ms", I64, "GPU busy time of the job.", False),
            _col("total_wall_time_ms", I64, "Wall-clock time from start to completion."),
            _col("time_per_frame_ms", F64, "As sent, else total_gpu_time_ms / frame_count.", False),
            _col("vram_peak_mb", I64, "Peak GPU memory; null where the worker has no monitor."),
            _col("vram_total_mb", I64, "Memory of the worker's GPU."),
            *[_col(s, F64, f"Quality score {s} in [0, 1].") for s in STANDARD_SCORES],
            _col("quality_scores", SCORES, "Every quality score sent, custom ones included."),
            *_PARAMS,
            _col("qa_passed", BOOL, "Result of the automatic QA gate."),
            _col("cost_usd", F64, "Cost where the producer knows it."),
            _col("stage_count", I32, "Number of pipeline stages (rows in job_stages)."),
            *_INGEST,
        ]
    ),
    partition_by="occurred_at",
    key=("event_id",),
)

JOBS_SAMPLE = Table(
    "jobs_sample",
    "A fixed 1 in 16 of the rows of jobs, whole (chosen by a hash of event_id, lake/sample.py): "
    "what reads every job's maps, percentiles and histograms read it over large ranges.",
    JOBS.schema,
    partition_by="occurred_at",
    key=("event_id",),
    sample_of="jobs",
)

JOB_FAILURES = Table(
    "job_failures",
    "One row per failed job attempt (event job.failed).",
    pa.schema(
        [
            *_ENVELOPE,
            *_IDENTITY,
            _col("error_type", STR, "oom, timeout, crash, safety_block, ... (open set).", False),
            _col("error_message", STR, "Free text, first 64 KiB."),
            _col("failed_stage", STR, "Pipeline stage that failed."),
            _col("will_retry", BOOL, "Whether the scheduler queued another attempt."),
            _col("frame_count", I64, "Frames produced before the failure."),
            _col("total_gpu_time_ms", I64, "GPU time spent before the failure."),
            _col("total_wall_time_ms", I64, "Wall-clock time before the failure."),
            _col("vram_peak_mb", I64, "Peak GPU memory of the attempt."),
            _col("vram_total_mb", I64, "Memory of the worker's GPU."),
            *_PARAMS,
            _col("stage_count", I32, "Number of pipeline stages that ran."),
            *_INGEST,
        ]
    ),
    partition_by="occurred_at",
    key=("event_id",),
)

JOB_STAGES = Table(
    "job_stages",
    "One row per pipeline stage of a completed or failed job attempt.",
    pa.schema(
        [
            _col("event_id", STR, "The job.completed / job.failed event.", False),
            _col("occurred_at", TS, "When the attempt ended (UTC).", False),
            _col("outcome", STR, "completed or failed.", False),
            _col("job_id", STR, "Job identifier.", False),
            _col("attempt", I32, "Attempt number.", False),
            _col("workflow_id", STR, "Workflow of the job.", False),
            _col("worker_id", STR, "Worker of the attempt.", False),
            _col("stage_index", I32, "Position in execution order, from 0.", False),
            _col("stage_name", STR, "Stage name (load_model, sample, ...).", False),
            _col("duration_ms", F64, "Stage duration.", False),
            _col("gpu_mem_peak_mb", F64, "Peak GPU memory of the stage."),
            _col("cpu_mem_peak_mb", F64, "Peak CPU memory of the stage."),
            _col("extra", STR, "Unknown stage fields as a JSON object (null if none)."),
            _col("ingested_at", TS, "When perflake published the row (UTC)."),
        ]
    ),
    partition_by="occurred_at",
    key=("event_id", "stage_index"),
)

JOB_STAGES_SAMPLE = Table(
    "job_stages_sample",
    "The rows of job_stages of the attempts in the job sample (1 in 16, lake/sample.py): stage "
    "percentiles over large ranges read it.",
    JOB_STAGES.schema,
    partition_by="occurred_at",
    key=("event_id", "stage_index"),
    sample_of="job_stages",
)

WORKER_SAMPLES = Table(
    "worker_samples",
    "One row per worker sample (event worker.sample): what a GPU did during an interval.",
    pa.schema(
        [
            *_ENVELOPE,
            _col("worker_id", STR, "GPU worker.", False),
            _col("gpu_index", I32, "GPU of a multi-GPU worker (0 if absent).", False),
            _col("gpu_model", STR, "GPU model."),
            _col("state", STR, "generating, idle or offline.", False),
            _col("interval_s", F64, "Seconds the sample covers.", False),
            _col("job_id", STR, "Job running, when generating."),
            _col("gpu_util_pct", F64, "GPU utilisation 0-100."),
            _col("vram_used_mb", I64, "GPU memory used."),
            _col("vram_total_mb", I64, "GPU memory size."),
            _col("power_w", F64, "Power draw in watts."),
            _col("temperature_c", F64, "GPU temperature in Celsius."),
            *_INGEST,
        ]
    ),
    partition_by="occurred_at",
    key=("event_id",),
)

REVIEWS = Table(
    "reviews",
    "One row per review (event review.completed).",
    pa.schema(
        [
            *_ENVELOPE,
            _col("review_id", STR, "Review identifier.", False),
            _col("reviewer_id", STR, "Opaque reviewer id.", False),
            _col("project_id", STR, "Project.", False),
            _col("character_id", STR, "Character.", False),
            _col("scene_id", STR, "Scene reviewed."),
            _col("job_id", STR, "Job reviewed."),
            _col("submitted_at", TS, "Entry in the review queue (UTC).", False),
            _col("decision", STR, "approved or rejected.", False),
            _col("segment_count", I64, "Segments reviewed (>= 1).", False),
            _col("annotation_count", I64, "Notes left (>= 0).", False),
            *_INGEST,
        ]
    ),
    partition_by="occurred_at",
    key=("event_id",),
)

DELIVERIES = Table(
    "deliveries",
    "One row per delivered character (event character.delivered).",
    pa.schema(
        [
            *_ENVELOPE,
            _col("character_id", STR, "Character delivered.", False),
            _col("project_id", STR, "Project.", False),
            _col("onboarded_at", TS, "When the character was onboarded (UTC).", False),
            _col("scene_count", I64, "Scenes delivered."),
            *_INGEST,
        ]
    ),
    partition_by="occurred_at",
    key=("event_id",),
)

QUARANTINE = Table(
    "quarantine",
    "One row per rejected Kafka message, kept whole with the reason (unique by topic/partition/offset).",
    pa.schema(
        [
            _col("topic", STR, "Kafka topic.", False),
            _col("kafka_partition", I32, "Kafka partition.", False),
            _col("kafka_offset", I64, "Kafka offset.", False),
            _col("key", pa.binary(), "Message key bytes."),
            _col("value", pa.binary(), "Message value bytes, whole, as received."),
            _col("reason", STR, "Why it was rejected, naming the field and the rule.", False),
            _col("event_type", STR, "event_type when it could be read."),
            _col("event_id", STR, "event_id when it could be read."),
            _col(
                "received_at",
                TS,
                "Kafka timestamp of the message; its date names the partition.",
                False,
            ),
            _col("ingested_at", TS, "When perflake quarantined it (UTC)."),
        ]
    ),
    partition_by="received_at",
    key=("topic", "kafka_partition", "kafka_offset"),
)

ALERTS = Table(
    "alerts",
    "One row per threshold crossing found by ingest: a completed job's metric, or the failure "
    "rate of a workflow or worker when a failed attempt arrives (rules in lake/alerting.py).",
    pa.schema(
        [
            _col(
                "event_id",
                STR,
                "The job.completed event (job.failed for failure_rate) the alert is about.",
                False,
            ),
            _col(
                "metric",
                STR,
                "time_per_frame_ms, vram_peak_pct, total_gpu_time_ms, failure_rate or a quality "
                "score name.",
                False,
            ),
            _col(
                "occurred_at",
                TS,
                "When the attempt ended (UTC); its date names the partition.",
                False,
            ),
            _col("level", STR, "warning or critical: the worse level the value reached.", False),
            _col(
                "value", F64, "The metric's value (vram_peak_pct 0-100, failure_rate 0-1).", False
            ),
            _col("threshold", F64, "The limit of that level.", False),
            _col("threshold_id", I64, "Id of the threshold in the lake's threshold store."),
            _col(
                "scope",
                STR,
                "global, workflow or worker: the scope of the threshold applied.",
                False,
            ),
            _col("scope_id", STR, "Workflow or worker of that scope (null for global)."),
            _col("attempts", I64, "failure_rate: attempts the rate covers (null for job metrics)."),
            _col("job_id", STR, "Job of the event.", False),
            _col("attempt", I32, "Attempt number of the event."),
            _col("workflow_id", STR, "Workflow of the job.", False),
            _col("worker_id", STR, "Worker of the attempt.", False),
            _col("project_id", STR, "Project of the job."),
            _col("scene_type", STR, "Scene type of the job."),
            _col("resolution_tier", STR, "Resolution tier of the job."),
            _col("ingested_at", TS, "When ingest published the event (UTC)."),
        ]
    ),
    partition_by="occurred_at",
    key=("event_id", "metric"),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        JOBS,
        JOBS_SAMPLE,
        JOB_FAILURES,
        JOB_STAGES,
        JOB_STAGES_SAMPLE,
        WORKER_SAMPLES,
        REVIEWS,
        DELIVERIES,
        QUARANTINE,
        ALERTS,
    )
}


def table(name: str) -> Table:
    """The declared table called `name`; KeyError names the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}") from None
