"""Bytes in, a lake row or a rejection out: the event contract's rules, one event at a time.

Pure and fast (orjson plus type checks, no I/O): the consumer loop batches the results, and the
tests run every contract example and every line of bad.jsonl through here without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest import fields as f
from lake.tables import (
    DELIVERIES,
    JOB_FAILURES,
    JOBS,
    REVIEWS,
    STANDARD_SCORES,
    WORKER_SAMPLES,
    Table,
)

SCHEMA_VERSION = 1
FUTURE_TOLERANCE = timedelta(days=1)

Rules = dict[str, tuple[f.Checker, bool]]  # field -> (checker, required)

_ENVELOPE: Rules = {
    "event_id": (f.bounded_text(1, 128), True),
    "occurred_at": (f.timestamp, True),
    "producer": (f.text, False),
}
_IDENTITY: Rules = {
    "job_id": (f.name, True),
    "attempt": (f.integer(1, f.INT32_MAX), False),
    "workflow_id": (f.name, True),
    "workflow_name": (f.text, False),
    "workflow_version": (f.text, False),
    "worker_id": (f.name, True),
    **{k: (f.text, False) for k in ("gpu_model", "project_id", "character_id", "scene_id")},
    "scene_type": (f.text, False),
    "resolution_tier": (f.text, False),
    "queued_at": (f.timestamp, False),
    "started_at": (f.timestamp, False),
    "params": (f.params, False),
    "pipeline_stages": (f.stages, False),
    "total_wall_time_ms": (f.integer(0), False),
    "vram_peak_mb": (f.integer(0), False),
    "vram_total_mb": (f.integer(1), False),
}

RULES: dict[str, tuple[Table, Rules]] = {
    "job.completed": (
        JOBS,
        {
            **_ENVELOPE,
            **_IDENTITY,
            "frame_count": (f.integer(1), True),
            "total_gpu_time_ms": (f.integer(0), True),
            "time_per_frame_ms": (f.number(0), False),
            "quality_scores": (f.scores(STANDARD_SCORES), False),
            "qa_passed": (f.boolean, False),
            "cost_usd": (f.number(0), False),
        },
    ),
    "job.failed": (
        JOB_FAILURES,
        {
            **_ENVELOPE,
            **_IDENTITY,
            "frame_count": (f.integer(0), False),
            "total_gpu_time_ms": (f.integer(0), False),
            "error_type": (f.name, True),
            "error_message": (f.text, False),
            "failed_stage": (f.text, False),
            "will_retry": (f.boolean, False),
        },
    ),
    "worker.sample": (
        WORKER_SAMPLES,
        {
            **_ENVELOPE,
            "worker_id": (f.name, True),
            "gpu_index": (f.integer(0, f.INT32_MAX), False),
            "gpu_model": (f.text, False),
            "state": (f.one_of("generating", "idle", "offline"), True),
            "interval_s": (f.number(0, open_low=True), True),
            "job_id": (f.text, False),
            "gpu_util_pct": (f.number(0, 100), False),
            "vram_used_mb": (f.integer(0), False),
            "vram_total_mb": (f.integer(0), False),
            "power_w": (f.number(), False),
            "temperature_c": (f.number(), False),
        },
    ),
    "review.completed": (
        REVIEWS,
        {
            **_ENVELOPE,
            **{
                k: (f.name, True)
                for k in ("review_id", "reviewer_id", "project_id", "character_id")
            },
            "scene_id": (f.text, False),
            "job_id": (f.text, False),
            "submitted_at": (f.timestamp, True),
            "decision": (f.one_of("approved", "rejected"), True),
            "segment_count": (f.integer(1), True),
            "annotation_count": (f.integer(0), True),
        },
    ),
    "character.delivered": (
        DELIVERIES,
        {
            **_ENVELOPE,
            "character_id": (f.name, True),
            "project_id": (f.name, True),
            "onboarded_at": (f.timestamp, True),
            "scene_count": (f.integer(0), False),
        },
    ),
}
_ENVELOPE_KEYS = frozenset(("schema_version", "event_type"))
_REQUIRED = {
    etype: tuple(k for k, (_, required) in rules.items() if required)
    for etype, (_, rules) in RULES.items()
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event: the table it belongs to and its row (stored names and values)."""

    table: Table
    event_type: str
    row: dict[str, Any]
    stages: list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that breaks the contract, with the reason naming the field and the rule."""

    reason: str
    event_type: str | None = None
    event_id: str | None = None


def decode_value(value: bytes | None, now: datetime) -> Event | Rejection:
    """Decode one Kafka message value; `now` (UTC) bounds how far in the future it may lie."""
    if value is None:
        return Rejection("value: empty message (tombstone)")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        return Rejection(f"value: not UTF-8 JSON ({e})")
    if type(doc) is not dict:
        return Rejection(f"value: must be a JSON object, got {type(doc).__name__}")
    etype = doc.get("event_type")
    eid = doc.get("event_id")
    eid = eid if type(eid) is str else None
    try:
        return _event(doc, etype, now)
    except f.Invalid as e:
        return Rejection(str(e), etype if type(etype) is str else None, eid)


def _event(doc: dict[str, Any], etype: Any, now: datetime) -> Event:
    version = doc.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        got = f.shown(doc.get("schema_version", ...))
        raise f.Invalid(f"schema_version: must be {SCHEMA_VERSION}, got {got}")
    if type(etype) is not str or etype not in RULES:
        got = f.shown(doc.get("event_type", ...))
        raise f.Invalid(f"event_type: must be one of {', '.join(RULES)}, got {got}")
    table, rules = RULES[etype]
    row: dict[str, Any] = {}
    unknown = None
    # Walk the fields present (fewer than the rules), then look for the required ones missing.
    for field, value in doc.items():
        rule = rules.get(field)
        if rule is None:
            if field not in _ENVELOPE_KEYS:
                unknown = unknown or {}
                unknown[field] = value
        elif value is not None:
            try:
                row[field] = rule[0](value)
            except f.Invalid as e:
                raise f.Invalid(f"{field}: {e}") from None
    if len(row) < len(rules):
        for field in _REQUIRED[etype]:
            if field not in row:
                raise f.Invalid(f"{field}: required, got {f.shown(doc.get(field, ...))}")
    if row["occurred_at"] > _micros(now + FUTURE_TOLERANCE):
        got = f.shown(doc["occurred_at"])
        raise f.Invalid(f"occurred_at: lies more than 1 day in the future, got {got}")
    row["extra"] = orjson.dumps(unknown).decode() if unknown else None
    stages = row.pop("pipeline_stages", None)
    if table is JOBS or table is JOB_FAILURES:
        _job_columns(row, stages)
    elif table is WORKER_SAMPLES:
        row.setdefault("gpu_index", 0)  # the contract's default: single-GPU workers omit it
    return Event(table, etype, row, stages)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _job_columns(row: dict[str, Any], stages: list[dict[str, Any]] | None) -> None:
    """Columns derived for jobs: default attempt, time per frame, typed scores, params as text."""
    row.setdefault("attempt", 1)
    row["stage_count"] = len(stages) if stages is not None else None
    if "time_per_frame_ms" not in row and row.get("frame_count") and "total_gpu_time_ms" in row:
        row["time_per_frame_ms"] = row["total_gpu_time_ms"] / row["frame_count"]
    scores = row.get("quality_scores")
    if scores:
        for name in STANDARD_SCORES:
            if name in scores:
                row[name] = scores[name]
    params = row.get("params")
    if params is not None:
        row["params"] = [(k, _param_text(v)) for k, v in params.items()]
        row["params_num"] = [
            (k, float(v)) for k, v in params.items() if type(v) is int or type(v) is float
        ]


def _param_text(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    return value if type(value) is str else f.number_text(value)
