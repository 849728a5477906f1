"""The demo studio's event stream: the farm simulated in ingest/demo_farm.py, written as the
contract's messages (shared/contract/EVENTS.md) in publish order, with a real stream's flaws, and
published to Kafka. Same (days, seed, end) gives byte-identical messages; it never reads the lake.

The studio: 4 projects, characters onboarded as the backlog runs low (~8 delivered a day), 20
workflows, 16 workers (gpu-01..04 H100 80GB, gpu-05..10 L40S, gpu-11..16 RTX 4090), 5-minute
worker samples, ~1,750-2,350 jobs a weekday and 850-1,000 a weekend day. Planted differences:

1. wf-liveportrait-hq is ~25% slower per frame than its sibling wf-liveportrait-v2 on the same
   GPU and resolution, and scores clearly higher likeness (+0.07 before v2's 2.4.0 release at
   45% of the period, +0.055 after), so its scenes are approved more often at review.
2. gpu-08 (L40S) throttles: ~30% higher time per frame than the other L40S cards on the same
   workflow and resolution, ~11 °C hotter and drawing less power.
3. lora_strength (0.4-1.0) drives likeness within a workflow: +0.20 per 1.0, linear plus noise.
4. OOM failures happen where a job's real peak crosses the card's memory: almost all on RTX 4090s
   running 4k wf-animatediff-hd / wf-liveportrait-hq (nominal 93-97% of 24 GB); the retry goes to
   a bigger card. Timeouts (1 h watchdog) hit long 4k jobs, mostly wf-hallo2-longform on L40S,
   and retry on a faster card.

Also: every workflow ships a new version once mid-period (some faster, some better); gpu-16 has no
memory monitoring (vram_peak_mb null); jobs on gpu-13..16 are reported by scheduler-eu in +01:00;
the review tool writes -05:00; a rolling driver update takes each worker offline mid-period.

Flaws (counts are the same for every days >= 1, seed and end): DEMO_REDELIVERED byte-identical
redeliveries (8 a few minutes later, 4 one to three days later); DEMO_LATE worker samples of
gpu-05 and gpu-14 held back three hours and published together; DEMO_MALFORMED malformed messages,
one per DEMO_MALFORMED_KINDS entry, each breaking one rule of "What counts as bad input".
"""

from __future__ import annotations

import functools
import heapq
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from kafka import KafkaProducer
from tqdm import tqdm

from ingest import IngestError
from ingest.demo_farm import (
    DAY,
    HOUR,
    MINUTE,
    SAMPLE_MS,
    Delivery,
    Record,
    Review,
    Sample,
    simulate,
)
from ingest.demo_jobs import JobRun

DEMO_MALFORMED_KINDS = (
    "truncated_json", "not_utf8", "not_object", "schema_version_2", "schema_version_missing",
    "unknown_event_type", "missing_required", "null_required", "frame_count_zero",
    "negative_gpu_time", "wrong_type", "no_offset", "bad_date", "score_out_of_range", "far_future",
    "empty_event_id",
)  # fmt: skip
DEMO_MALFORMED = len(DEMO_MALFORMED_KINDS)
# Which kind of message each redelivery copies (a fallback takes any kind if none comes soon),
# and whether the copy arrives days rather than minutes later.
_REDELIVERIES = (
    ("job.completed", False), ("job.failed", False), ("worker.sample", True),
    ("review.completed", False), ("job.completed", True), ("worker.sample", False),
    ("job.completed", False), ("job.completed", True), ("worker.sample", False),
    ("job.completed", False), ("job.completed", True), ("job.completed", False),
)  # fmt: skip
DEMO_REDELIVERED = len(_REDELIVERIES)
LATE_WORKERS = ("gpu-05", "gpu-14")
LATE_WINDOW_MS = 3 * HOUR
DEMO_LATE = len(LATE_WORKERS) * LATE_WINDOW_MS // SAMPLE_MS
_ZONES = {0: "Z", 60: "+01:00", -300: "-05:00"}


class DemoPublishError(IngestError):
    """The broker refused or lost demo messages."""


@dataclass(frozen=True, slots=True)
class DemoMessage:
    key: bytes | None
    value: bytes  # one UTF-8 JSON object (or deliberately malformed bytes)


def studio_messages(
    days: int = 60, seed: int = 7, end: datetime | None = None
) -> Iterator[DemoMessage]:
    """The demo studio's event stream, in publish order.

    Same (days, seed, end) -> byte-identical stream. `end` defaults to this hour (UTC); events
    occur in [end - days, end).
    """
    if type(days) is not int or days < 1:
        raise ValueError(f"days: must be a whole number of days >= 1, got {days!r}")
    end_ms = _epoch_ms(_resolve_end(end))
    return _stream(days, seed, end_ms)


def count_messages(days: int = 60, seed: int = 7, end: datetime | None = None) -> int:
    """How many messages studio_messages yields (it runs the generator once per arguments)."""
    return _count(days, seed, _resolve_end(end))


@functools.lru_cache(maxsize=8)
def _count(days: int, seed: int, end: datetime) -> int:
    return sum(1 for _ in studio_messages(days, seed, end))


def publish_studio(
    bootstrap_servers: str,
    topic: str,
    days: int = 60,
    seed: int = 7,
    end: datetime | None = None,
    progress: bool = True,
) -> int:
    """Publishes studio_messages to `topic` and returns the number of messages sent.

    kafka-python's KafkaProducer with linger_ms 20, batch_size 1 MiB and acks=all; a tqdm bar on
    stderr when `progress`; flushes and closes before returning, and raises DemoPublishError if
    the broker failed any message.
    """
    end = _resolve_end(end)  # once, so the count and the stream agree across an hour boundary
    total = count_messages(days, seed, end) if progress else None
    errors: list[BaseException] = []
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, linger_ms=20, batch_size=1 << 20, acks="all"
    )
    sent = 0
    try:
        with tqdm(total=total, unit="msg", file=sys.stderr, disable=not progress) as bar:
            for message in studio_messages(days, seed, end):
                future = producer.send(topic, value=message.value, key=message.key)
                future.add_errback(errors.append)
                sent += 1
                bar.update()
        producer.flush()
    finally:
        producer.close()
    if errors:
        raise DemoPublishError(f"{len(errors)} of {sent} demo messages failed: {errors[0]}")
    return sent


def _resolve_end(end: datetime | None) -> datetime:
    if end is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if end.tzinfo is None or end.utcoffset() is None:
        raise ValueError(f"end: must be timezone-aware, got {end.isoformat()}")
    return end


def _epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _stream(days: int, seed: int, end_ms: int) -> Iterator[DemoMessage]:
    flaws = _Flaws(seed, end_ms - days * DAY, end_ms)
    held: list[tuple[int, int, DemoMessage]] = []  # (publish at, order, message)
    for n, record in enumerate(simulate(days, seed, end_ms)):
        at = _at(record)
        while held and held[0][0] <= at:
            yield heapq.heappop(held)[2]
        etype, key, event = _event(record, seed)
        message = DemoMessage(key, orjson.dumps(event))
        late = flaws.held_until(record)
        if late is not None:
            heapq.heappush(held, (late, n, message))
            continue
        yield message
        again = flaws.redelivery(etype, at)
        if again is not None:
            heapq.heappush(held, (at + again, n, message))
        if etype == "job.completed" and (bad := flaws.malformed(at, event, seed)) is not None:
            yield DemoMessage(key, bad)
    while held:
        yield heapq.heappop(held)[2]


def _at(record: Record) -> int:
    return record.end_ms if isinstance(record, JobRun) else record.at_ms


class _Flaws:
    """Where the stream's planted flaws go: fixed shares of the period, jittered by the seed."""

    def __init__(self, seed: int, start_ms: int, end_ms: int) -> None:
        rng = random.Random(f"demo-flaws-{seed}")
        span = end_ms - start_ms
        self.late = {}  # worker -> (outage begins, outage ends, backlog published)
        for wid, share in zip(LATE_WORKERS, (0.35, 0.7), strict=True):
            begin = start_ms + int(span * share)
            stop = begin + LATE_WINDOW_MS
            self.late[wid] = (begin, stop, stop + rng.randint(20, 40) * MINUTE)
        self.redeliveries = [
            (start_ms + int(span * (i + rng.random()) / len(_REDELIVERIES)), kind,
             rng.randint(24, 72) * HOUR if days_later else rng.randint(2, 40) * MINUTE)
            for i, (kind, days_later) in enumerate(_REDELIVERIES)
        ]  # fmt: skip
        self.bad = [
            start_ms + int(span * (i + 0.2 + 0.6 * rng.random()) / DEMO_MALFORMED)
            for i in range(DEMO_MALFORMED)
        ]
        self.bad_done = 0

    def held_until(self, record: Record) -> int | None:
        """When a sample from a worker whose agent lost its connection finally goes out."""
        if not isinstance(record, Sample) or record.worker.id not in self.late:
            return None
        begin, stop, published = self.late[record.worker.id]
        return published if begin <= record.at_ms < stop else None

    def redelivery(self, etype: str, at: int) -> int | None:
        """The delay after which this message is sent again, if it is the next one chosen."""
        if not self.redeliveries:
            return None
        when, kind, delay = self.redeliveries[0]
        if at >= when and (etype == kind or at >= when + 2 * HOUR):
            self.redeliveries.pop(0)
            return delay
        return None

    def malformed(self, at: int, event: dict[str, Any], seed: int) -> bytes | None:
        if self.bad_done == DEMO_MALFORMED or at < self.bad[self.bad_done]:
            return None
        self.bad_done += 1
        return _malformed(DEMO_MALFORMED_KINDS[self.bad_done - 1], event, seed, self.bad_done)


def _malformed(kind: str, event: dict[str, Any], seed: int, n: int) -> bytes:
    """A copy of a real job.completed event that breaks exactly one rule."""
    bad = {**event, "event_id": f"demo-{seed}-bad-{n:02d}"}
    when = bad["occurred_at"]
    if kind == "truncated_json":  # the producer died mid-write
        return orjson.dumps(bad)[:180]
    if kind == "not_utf8":  # a Latin-1 note from an old script
        return orjson.dumps(bad)[:-1] + b',"note":"r\xe9essai manuel"}'
    if kind == "not_object":  # two events batched into one message
        return b"[" + orjson.dumps(bad) + b"," + orjson.dumps(bad) + b"]"
    edits: dict[str, Any] = {
        "schema_version_2": {"schema_version": 2},
        "unknown_event_type": {"event_type": "job.started"},
        "null_required": {"worker_id": None},
        "frame_count_zero": {"frame_count": 0},
        "negative_gpu_time": {"total_gpu_time_ms": -bad["total_gpu_time_ms"]},
        "wrong_type": {"frame_count": str(bad["frame_count"])},
        "no_offset": {"occurred_at": when[:19]},
        "bad_date": {"occurred_at": f"{when[:4]}-02-30{when[10:]}"},
        "score_out_of_range": {"quality_scores": {**bad["quality_scores"], "likeness": 91.7}},
        "far_future": {"occurred_at": f"{int(when[:4]) + 73}{when[4:]}"},
        "empty_event_id": {"event_id": ""},
    }
    if kind in edits:
        bad.update(edits[kind])
    else:
        del bad[
            {"schema_version_missing": "schema_version", "missing_required": "workflow_id"}[kind]
        ]
    return orjson.dumps(bad)


# --- the wire format ------------------------------------------------------------------------


@functools.cache
def _date(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


def _ts(ms: int, offset_min: int = 0, millis: bool = True) -> str:
    """RFC 3339 in the producer's offset; second-precision producers drop a zero fraction."""
    day, rest = divmod(ms + offset_min * MINUTE, DAY)
    secs, milli = divmod(rest, 1000)
    frac = f".{milli:03d}" if millis or milli else ""
    clock = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return f"{_date(day)}T{clock}{frac}{_ZONES[offset_min]}"


def _event(record: Record, seed: int) -> tuple[str, bytes, dict[str, Any]]:
    if isinstance(record, JobRun):
        event = _job_event(record, seed)
        return event["event_type"], record.job_id.encode(), event
    if isinstance(record, Sample):
        return "worker.sample", record.worker.id.encode(), _sample_event(record, seed)
    if isinstance(record, Review):
        event = _review_event(record, seed)
        return "review.completed", event["review_id"].encode(), event
    return "character.delivered", record.character.id.encode(), _delivery_event(record, seed)


def _envelope(seed: int, eid: str, etype: str, at: str, producer: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"demo-{seed}-{eid}",
        "event_type": etype,
        "occurred_at": at,
        "producer": producer,
    }


def _job_event(run: JobRun, seed: int) -> dict[str, Any]:
    worker, scene, failed = run.worker, run.scene, run.error is not None
    off = 60 if worker.shard == "scheduler-eu" else 0
    etype = "job.failed" if failed else "job.completed"
    event = _envelope(
        seed, f"{run.job_id}-a{run.attempt}", etype, _ts(run.end_ms, off), worker.shard
    )
    event |= {"job_id": run.job_id, "attempt": run.attempt, "workflow_id": run.workflow.id}
    if not failed:  # the failure path of the scheduler never looked the name up
        event["workflow_name"] = run.workflow.name
    event |= {
        "workflow_version": run.version,
        "worker_id": worker.id,
        "gpu_model": worker.gpu.model,
        "project_id": scene.character.project.id,
        "character_id": scene.character.id,
        "scene_id": scene.id,
        "scene_type": scene.scene_type,
        "resolution_tier": scene.resolution,
        "queued_at": _ts(run.queued_ms, off),
        "started_at": _ts(run.start_ms, off),
        "frame_count": run.frames,
        "total_gpu_time_ms": sum(d for _, d, _ in run.stages),
        "total_wall_time_ms": run.end_ms - run.start_ms,
    }
    if not failed:
        event["time_per_frame_ms"] = run.tpf_ms
    event["vram_peak_mb"] = run.vram_peak_mb if worker.monitored else None
    event["vram_total_mb"] = worker.gpu.vram_mb
    if run.scores is not None:
        event["quality_scores"] = run.scores
    event["pipeline_stages"] = [_stage(stage, worker.monitored) for stage in run.stages]
    event["params"] = run.params
    if run.error is not None:
        etype_, message, stage, retry = run.error
        event |= {"error_type": etype_, "error_message": message, "failed_stage": stage}
        event["will_retry"] = retry
        return event
    event["qa_passed"] = run.qa_passed
    if run.cost_usd is not None:
        event["cost_usd"] = run.cost_usd
    return event


def _stage(stage: tuple[str, int, int | None], monitored: bool) -> dict[str, Any]:
    name, duration, peak = stage
    out: dict[str, Any] = {"name": name, "duration_ms": duration}
    if peak is not None and monitored:
        out["gpu_mem_peak_mb"] = peak
    if name == "load_model":
        out["cpu_mem_peak_mb"] = int((peak or 0) * 1.3) + 2048
    return out


def _sample_event(smp: Sample, seed: int) -> dict[str, Any]:
    worker = smp.worker
    eid = f"{worker.id}-0-{smp.at_ms // 1000}"
    event = _envelope(seed, eid, "worker.sample", _ts(smp.at_ms, millis=False), "gpu-agent")
    event |= {
        "worker_id": worker.id,
        "gpu_index": 0,
        "gpu_model": worker.gpu.model,
        "state": smp.state,
        "interval_s": SAMPLE_MS // 1000,
    }
    if smp.job_id is not None:
        event["job_id"] = smp.job_id
    event["gpu_util_pct"] = smp.util_pct
    if smp.vram_used_mb is not None:
        event["vram_used_mb"] = smp.vram_used_mb
    event["vram_total_mb"] = worker.gpu.vram_mb
    if smp.power_w is not None:  # an offline card reports no power or temperature
        event["power_w"] = smp.power_w
        event["temperature_c"] = smp.temperature_c
    return event


def _review_event(rev: Review, seed: int) -> dict[str, Any]:
    scene, review_id = rev.scene, f"rev-{rev.number:06d}"
    at = _ts(rev.at_ms, -300, millis=False)
    event = _envelope(seed, review_id, "review.completed", at, "review-tool")
    event |= {
        "review_id": review_id,
        "reviewer_id": rev.reviewer,
        "project_id": scene.character.project.id,
        "character_id": scene.character.id,
        "scene_id": scene.id,
    }
    if scene.last_job is not None:
        event["job_id"] = scene.last_job
    event |= {
        "submitted_at": _ts(rev.submitted_ms, -300, millis=False),
        "decision": "approved" if rev.approved else "rejected",
        "segment_count": rev.segments,
        "annotation_count": rev.annotations,
    }
    return event


def _delivery_event(delivery: Delivery, seed: int) -> dict[str, Any]:
    char = delivery.character
    at = _ts(delivery.at_ms, millis=False)
    event = _envelope(seed, f"deliv-{char.id}", "character.delivered", at, "delivery-service")
    event |= {
        "character_id": char.id,
        "project_id": char.project.id,
        "onboarded_at": _ts(char.onboarded_ms, millis=False),
        "scene_count": len(char.scenes),
    }
    return event
