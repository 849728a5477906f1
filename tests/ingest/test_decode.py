"""The contract's rules, one event at a time: every example decodes, every bad line is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ingest.decode import Event, Rejection, decode_value
from ingest.fields import day_of
from lake.tables import DELIVERIES, JOB_FAILURES, JOBS, REVIEWS, WORKER_SAMPLES
from tests.events import EXAMPLES, bad_lines, encode, event

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("job.completed", JOBS),
        ("job.failed", JOB_FAILURES),
        ("worker.sample", WORKER_SAMPLES),
        ("review.completed", REVIEWS),
        ("character.delivered", DELIVERIES),
    ],
)
def test_every_contract_example_decodes_into_its_table(name, table):
    result = decode_value((EXAMPLES / f"{name}.json").read_bytes(), NOW)
    assert isinstance(result, Event), getattr(result, "reason", "")
    assert result.table is table


EXPECTED_REASONS = [
    "value: not UTF-8 JSON",
    "value: must be a JSON object, got list",
    "event_id: required, got nothing",
    "workflow_id: required, got nothing",
    "schema_version: must be 1, got 2",
    'event_type: must be one of job.completed, job.failed, worker.sample, review.completed, character.delivered, got "job.exploded"',
    'occurred_at: must be a timestamp with an offset (Z or +hh:mm), got "2026-11-20T14:32:07"',
    'occurred_at: must be an RFC 3339 timestamp with offset, got "yesterday"',
    'occurred_at: lies more than 1 day in the future, got "2099-01-01T00:00:00Z"',
    "frame_count: must be an integer >= 1, got 0",
    'frame_count: must be an integer >= 1, got "240"',
    "total_gpu_time_ms: must be an integer >= 0, got -5",
    "vram_total_mb: must be an integer >= 1, got 0",
    'quality_scores: likeness: must be a number in [0, 1], got "high"',
    "pipeline_stages: [0].name: required, got nothing",
    "params: cfg_scale: must be a number, string or boolean, got [1,2]",
    "worker_id: required, got null",
    "value: not UTF-8 JSON",
]


def test_every_bad_line_is_rejected_with_a_reason_naming_the_field():
    lines = bad_lines()
    assert len(lines) == len(EXPECTED_REASONS)
    for line, expected in zip(lines, EXPECTED_REASONS, strict=True):
        result = decode_value(line, NOW)
        assert isinstance(result, Rejection)
        assert result.reason.startswith(expected), result.reason


def test_derived_and_typed_columns_of_a_completed_job():
    doc = event("job.completed", time_per_frame_ms=None, surprise={"a": 1})
    del doc["time_per_frame_ms"]
    row = decode_value(encode(doc), NOW).row
    assert row["time_per_frame_ms"] == 611520 / 240
    assert row["likeness"] == 0.917
    assert row["quality_scores"]["lip_sync"] == 0.88
    assert dict(row["params"])["sampler"] == "dpmpp_2m"
    assert dict(row["params_num"]) == {
        "cfg_scale": 6.5,
        "steps": 30.0,
        "denoise": 0.72,
        "lora_strength": 0.8,
        "seed": 918273.0,
    }
    assert row["extra"] == '{"surprise":{"a":1}}'
    assert row["stage_count"] == 5


@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        ("2026-11-20T23:59:59.999999Z", date(2026, 11, 20)),
        ("2026-11-21T00:30:00+01:00", date(2026, 11, 20)),  # 23:30 UTC the day before
        ("2026-11-20T20:00:00-05:00", date(2026, 11, 21)),  # 01:00 UTC the day after
    ],
)
def test_partition_day_is_the_utc_date(stamp, day):
    row = decode_value(encode(event("worker.sample", occurred_at=stamp)), NOW).row
    assert day_of(row["occurred_at"]) == day


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"state": "sleeping"}, "state: must be one of generating, idle, offline"),
        ({"interval_s": 0}, "interval_s: must be a number > 0, got 0"),
        ({"gpu_util_pct": 101}, "gpu_util_pct: must be a number in [0, 100], got 101"),
        ({"event_id": "x" * 129}, "event_id: must be a string of 1-128 characters"),
        (
            {"occurred_at": "2026-11-20T25:00:00Z"},
            "occurred_at: must be a valid RFC 3339 timestamp",
        ),
    ],
)
def test_worker_sample_rules(changes, reason):
    result = decode_value(encode(event("worker.sample", **changes)), NOW)
    assert isinstance(result, Rejection)
    assert result.reason.startswith(reason), result.reason


def test_absent_defaults_and_null_vram_peak_are_accepted():
    doc = event("job.completed", vram_peak_mb=None)
    del doc["attempt"]
    row = decode_value(encode(doc), NOW).row
    assert row["attempt"] == 1 and "vram_peak_mb" not in row
    sample = event("worker.sample")
    del sample["gpu_index"]
    assert decode_value(encode(sample), NOW).row["gpu_index"] == 0
