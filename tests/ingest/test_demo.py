"""The demo studio's stream: deterministic, on contract, flawed exactly as documented, and realistic
enough that the planted differences show in the data an analyst would compute."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
import pytest

from ingest import demo
from ingest.demo import (
    DEMO_LATE,
    DEMO_MALFORMED,
    DEMO_MALFORMED_KINDS,
    DEMO_REDELIVERED,
    LATE_WORKERS,
    DemoMessage,
    DemoPublishError,
    count_messages,
    studio_messages,
)

END = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday noon: 5 days hold two weekend days
DAYS = 5
VRAM = {"NVIDIA H100 80GB HBM3": 81559, "NVIDIA L40S": 46068, "NVIDIA RTX 4090": 24564}
STANDARD = ("likeness", "face_confidence", "motion_quality", "boundary_ssim")
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


# --- an independent reading of shared/contract/EVENTS.md --------------------------------------


def _is_int(v: Any, low: int) -> bool:
    return type(v) is int and v >= low


def _is_num(v: Any, low: float | None = None, high: float | None = None) -> bool:
    ok = type(v) in (int, float)
    return ok and (low is None or v >= low) and (high is None or v <= high)


def _is_ts(v: Any) -> bool:
    if type(v) is not str or not TS.fullmatch(v):
        return False
    try:
        return datetime.fromisoformat(v).tzinfo is not None
    except ValueError:
        return False


def _is_text(v: Any) -> bool:
    return type(v) is str and v != ""


def _params_ok(v: Any) -> bool:
    return type(v) is dict and all(type(x) in (int, float, str, bool) for x in v.values())


def _stages_ok(v: Any) -> bool:
    return type(v) is list and all(
        type(st) is dict
        and _is_text(st.get("name"))
        and _is_num(st.get("duration_ms"), 0)
        and all(_is_num(st[k]) for k in ("gpu_mem_peak_mb", "cpu_mem_peak_mb") if k in st)
        for st in v
    )


def _scores_ok(v: Any) -> bool:
    return type(v) is dict and all(
        _is_num(x, 0, 1) if k in STANDARD else _is_num(x) for k, x in v.items()
    )


JOB = {
    "job_id": (_is_text, True),
    "attempt": (lambda v: _is_int(v, 1), False),
    "workflow_id": (_is_text, True),
    "worker_id": (_is_text, True),
    **{k: (_is_text, False) for k in ("workflow_name", "workflow_version", "gpu_model")},
    **{k: (_is_text, False) for k in ("project_id", "character_id", "scene_id")},
    **{k: (_is_text, False) for k in ("scene_type", "resolution_tier")},
    "queued_at": (_is_ts, False),
    "started_at": (_is_ts, False),
    "total_wall_time_ms": (lambda v: _is_int(v, 0), False),
    "vram_peak_mb": (lambda v: v is None or _is_int(v, 0), False),
    "vram_total_mb": (lambda v: _is_int(v, 1), False),
    "params": (_params_ok, False),
    "pipeline_stages": (_stages_ok, False),
}
RULES: dict[str, dict[str, tuple[Any, bool]]] = {
    "job.completed": {
        **JOB,
        "frame_count": (lambda v: _is_int(v, 1), True),
        "total_gpu_time_ms": (lambda v: _is_int(v, 0), True),
        "time_per_frame_ms": (lambda v: _is_num(v, 0), False),
        "quality_scores": (_scores_ok, False),
        "qa_passed": (lambda v: type(v) is bool, False),
        "cost_usd": (lambda v: _is_num(v, 0), False),
    },
    "job.failed": {
        **JOB,
        "frame_count": (lambda v: _is_int(v, 0), False),
        "total_gpu_time_ms": (lambda v: _is_int(v, 0), False),
        "error_type": (_is_text, True),
        "error_message": (lambda v: type(v) is str, False),
        "failed_stage": (_is_text, False),
        "will_retry": (lambda v: type(v) is bool, False),
    },
    "worker.sample": {
        "worker_id": (_is_text, True),
        "gpu_index": (lambda v: _is_int(v, 0), False),
        "gpu_model": (_is_text, False),
        "state": (lambda v: v in ("generating", "idle", "offline"), True),
        "interval_s": (lambda v: _is_num(v) and v > 0, True),
        "job_id": (_is_text, False),
        "gpu_util_pct": (lambda v: _is_num(v, 0, 100), False),
        "vram_used_mb": (lambda v: _is_int(v, 0), False),
        "vram_total_mb": (lambda v: _is_int(v, 0), False),
        "power_w": (_is_num, False),
        "temperature_c": (_is_num, False),
    },
    "review.completed": {
        **{k: (_is_text, True) for k in ("review_id", "reviewer_id", "project_id", "character_id")},
        "scene_id": (_is_text, False),
        "job_id": (_is_text, False),
        "submitted_at": (_is_ts, True),
        "decision": (lambda v: v in ("approved", "rejected"), True),
        "segment_count": (lambda v: _is_int(v, 1), True),
        "annotation_count": (lambda v: _is_int(v, 0), True),
    },
    "character.delivered": {
        "character_id": (_is_text, True),
        "project_id": (_is_text, True),
        "onboarded_at": (_is_ts, True),
        "scene_count": (lambda v: _is_int(v, 0), False),
    },
}


def contract_problems(value: bytes) -> list[str]:
    """Every rule of the contract this message value breaks; empty when it is a valid event."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ["value: not UTF-8 JSON"]
    if type(doc) is not dict:
        return ["value: not an object"]
    problems = []
    if doc.get("schema_version") != 1 or type(doc.get("schema_version")) is not int:
        problems.append("schema_version")
    eid = doc.get("event_id")
    if type(eid) is not str or not 1 <= len(eid) <= 128:
        problems.append("event_id")
    if not _is_ts(doc.get("occurred_at")):
        problems.append("occurred_at")
    elif datetime.fromisoformat(doc["occurred_at"]) > END + timedelta(days=1):
        problems.append("occurred_at: future")
    if doc.get("event_type") not in RULES:
        return [*problems, "event_type"]
    for name, (check, required) in RULES[doc["event_type"]].items():
        if name not in doc or (doc[name] is None and name != "vram_peak_mb"):
            problems.extend([name] if required or name in doc else [])
        elif not check(doc[name]):
            problems.append(name)
    return problems


# --- the stream, read once --------------------------------------------------------------------


@dataclass
class Reading:
    messages: list[DemoMessage]
    events: list[dict[str, Any]]  # valid, first deliveries, in publish order
    malformed: list[tuple[DemoMessage, list[str]]]
    copies: list[DemoMessage]
    late: list[dict[str, Any]]


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])


@pytest.fixture(scope="module")
def reading() -> Reading:
    messages = list(studio_messages(DAYS, 7, END))
    seen: set[tuple[bytes | None, bytes]] = set()
    events, malformed, copies, late = [], [], [], []
    latest = None
    for msg in messages:
        if (msg.key, msg.value) in seen:
            copies.append(msg)
            continue
        seen.add((msg.key, msg.value))
        if problems := contract_problems(msg.value):
            malformed.append((msg, problems))
            continue
        event = orjson.loads(msg.value)
        events.append(event)
        if latest is not None and _at(event) < latest:
            late.append(event)
        latest = max(latest or _at(event), _at(event))
    return Reading(messages, events, malformed, copies, late)


def _of(reading: Reading, *types: str) -> list[dict[str, Any]]:
    return [e for e in reading.events if e["event_type"] in types]


# --- determinism and the API ------------------------------------------------------------------


def test_same_arguments_give_the_same_bytes(reading: Reading) -> None:
    assert list(studio_messages(DAYS, 7, END)) == reading.messages


def test_another_seed_gives_another_stream() -> None:
    assert list(studio_messages(1, 8, END)) != list(studio_messages(1, 7, END))


def test_count_messages_matches_the_stream(reading: Reading) -> None:
    assert count_messages(DAYS, 7, END) == len(reading.messages)


@pytest.mark.parametrize("days", [0, -1, 1.5])
def test_bad_days_are_refused(days: Any) -> None:
    with pytest.raises(ValueError, match="days"):
        studio_messages(days, 7, END)


def test_naive_end_is_refused() -> None:
    with pytest.raises(ValueError, match="end"):
        studio_messages(1, 7, datetime(2026, 3, 2, 12))


def test_an_end_off_the_hour_is_used_exactly() -> None:
    end = datetime(2026, 3, 2, 12, 34, 56, 789000, tzinfo=UTC)
    valid = [m.value for m in studio_messages(1, 7, end) if not contract_problems(m.value)]
    times = [_at(orjson.loads(v)) for v in valid]
    assert end - timedelta(days=1) <= min(times) and max(times) < end


def test_event_ids_come_from_the_seed(reading: Reading) -> None:
    assert all(e["event_id"].startswith("demo-7-") for e in reading.events)


# --- the contract and the planted flaws -------------------------------------------------------


def test_all_but_the_planted_malformed_messages_follow_the_contract(reading: Reading) -> None:
    assert len(reading.malformed) == DEMO_MALFORMED == len(DEMO_MALFORMED_KINDS) == 16
    # Each malformed message breaks one rule, and they do not all break the same one.
    assert all(len(problems) == 1 for _, problems in reading.malformed)
    assert len({problems[0] for _, problems in reading.malformed}) >= 10


def test_no_event_lies_outside_the_period(reading: Reading) -> None:
    times = [_at(e) for e in reading.events]
    assert min(times) >= END - timedelta(days=DAYS)
    assert max(times) < END


def test_the_decoder_rejects_exactly_the_malformed_messages(reading: Reading) -> None:
    decode = pytest.importorskip("ingest.decode")
    rejected = [m for m in reading.messages if hasattr(decode.decode_value(m.value, END), "reason")]
    assert rejected == [m for m, _ in reading.malformed]


def test_redeliveries_are_byte_identical_copies(reading: Reading) -> None:
    assert len(reading.copies) == DEMO_REDELIVERED == 12
    ids = Counter(e["event_id"] for e in reading.events)
    assert ids.most_common(1)[0][1] == 1  # no event id is reused except by a redelivery
    first = {m.value: i for i, m in reversed(list(enumerate(reading.messages)))}
    gaps = [
        i - first[m.value] for i, m in enumerate(reading.messages) if first[m.value] != i
    ]  # publish positions between the original and its copy
    assert min(gaps) > 0
    assert max(gaps) > 10 * min(gaps)  # some minutes later, some days later


def test_late_samples_are_one_workers_backlog_published_hours_late(reading: Reading) -> None:
    assert len(reading.late) == DEMO_LATE == 72
    assert {e["event_type"] for e in reading.late} == {"worker.sample"}
    assert {e["worker_id"] for e in reading.late} == set(LATE_WORKERS)


def test_keys_follow_the_contract(reading: Reading) -> None:
    key_field = {
        "job.completed": "job_id",
        "job.failed": "job_id",
        "worker.sample": "worker_id",
        "review.completed": "review_id",
        "character.delivered": "character_id",
    }
    for msg in reading.messages:
        if not contract_problems(msg.value):
            event = orjson.loads(msg.value)
            assert msg.key == event[key_field[event["event_type"]]].encode()


def test_timestamps_mostly_utc_some_with_offsets(reading: Reading) -> None:
    zones = Counter(e["occurred_at"][-6:] if e["occurred_at"][-1] != "Z" else "Z"
                    for e in reading.events)  # fmt: skip
    assert set(zones) == {"Z", "+01:00", "-05:00"}
    assert zones["Z"] > 0.8 * len(reading.events)


# --- a realistic studio -----------------------------------------------------------------------


def test_the_cast(reading: Reading) -> None:
    jobs = _of(reading, "job.completed", "job.failed")
    models = {e["worker_id"]: (e["gpu_model"], e["vram_total_mb"]) for e in jobs}
    assert len(models) >= 16
    assert set(models.values()) == set(VRAM.items())
    assert len({e["workflow_id"] for e in jobs}) == 20
    versions = defaultdict(set)
    for e in jobs:
        versions[e["workflow_id"]].add(e["workflow_version"])
    assert sum(len(v) == 2 for v in versions.values()) >= 15  # a release mid-period
    assert len({e["project_id"] for e in jobs}) == 4
    assert {e["scene_type"] for e in jobs} == {"idle", "walk", "dialogue", "action"}
    assert {e["resolution_tier"] for e in jobs} == {"720p", "1080p", "4k"}


def test_jobs_per_day_fewer_at_weekends(reading: Reading) -> None:
    per_day = Counter(_at(e).astimezone(UTC).date() for e in _of(reading, "job.completed"))
    weekdays = [n for d, n in per_day.items() if d.weekday() < 5 and d != END.date()]
    weekend = [n for d, n in per_day.items() if d.weekday() >= 5]
    assert all(1500 <= n <= 2800 for n in weekdays[1:])  # the first day is half a day
    assert len(weekend) == 2
    assert max(weekend) < 0.7 * min(weekdays[1:])


def test_completed_jobs_add_up(reading: Reading) -> None:
    for e in _of(reading, "job.completed"):
        stages = sum(st["duration_ms"] for st in e["pipeline_stages"])
        assert stages == e["total_gpu_time_ms"] < e["total_wall_time_ms"]
        assert e["total_gpu_time_ms"] >= e["frame_count"] * e["time_per_frame_ms"] - 1
        assert 48 <= e["frame_count"] <= 480
        assert _at(e) > datetime.fromisoformat(e["started_at"])
        assert datetime.fromisoformat(e["started_at"]) >= datetime.fromisoformat(e["queued_at"])
        assert e["vram_peak_mb"] is None or e["vram_peak_mb"] <= e["vram_total_mb"]
        assert set(STANDARD) <= set(e["quality_scores"])


def test_failures_are_a_few_percent_and_retried_with_the_same_job_id(reading: Reading) -> None:
    jobs = _of(reading, "job.completed", "job.failed")
    failed = [e for e in jobs if e["event_type"] == "job.failed"]
    assert 0.01 < len(failed) / len(jobs) < 0.05
    assert len({e["error_type"] for e in failed}) >= 5
    attempts = {(e["job_id"], e["attempt"]): e for e in jobs}
    retried = [e for e in failed if e["will_retry"] and (e["job_id"], e["attempt"] + 1) in attempts]
    assert len(retried) > 20
    for e in retried:
        again = attempts[e["job_id"], e["attempt"] + 1]
        assert datetime.fromisoformat(again["queued_at"]) > _at(e)
        assert again["params"] == e["params"]
    assert all((e["job_id"], 1) in attempts for e in jobs)


def test_samples_follow_each_workers_timeline(reading: Reading) -> None:
    samples = _of(reading, "worker.sample")
    per_worker = Counter(e["worker_id"] for e in samples)
    assert set(per_worker.values()) == {DAYS * 288}
    states = Counter(e["state"] for e in samples)
    assert states["generating"] > states["idle"] > states["offline"] > 0
    job_ids = {e["job_id"] for e in _of(reading, "job.completed", "job.failed")}
    running = [e["job_id"] for e in samples if e["state"] == "generating"]
    assert sum(j in job_ids for j in running) > 0.98 * len(running)


def test_reviews_and_deliveries(reading: Reading) -> None:
    reviews = _of(reading, "review.completed")
    assert len(reviews) > 50 * DAYS
    assert all(datetime.fromisoformat(e["submitted_at"]) < _at(e) for e in reviews)
    assert all(re.fullmatch(r"u-\d{4}", e["reviewer_id"]) for e in reviews)
    assert 0.3 < sum(e["decision"] == "approved" for e in reviews) / len(reviews) < 0.9
    deliveries = _of(reading, "character.delivered")
    assert deliveries
    assert all(datetime.fromisoformat(e["onboarded_at"]) < _at(e) for e in deliveries)


# --- the planted differences ------------------------------------------------------------------


def _median_by(events: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], float]:
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for e in events:
        groups[tuple(e[k] for k in keys)].append(e["time_per_frame_ms"])
    return {k: statistics.median(v) for k, v in groups.items() if len(v) >= 5}


def test_the_hq_workflow_is_slower_but_gives_higher_likeness(reading: Reading) -> None:
    done = _of(reading, "job.completed")
    fast = [e for e in done if e["workflow_id"] == "wf-liveportrait-v2"]
    hq = [e for e in done if e["workflow_id"] == "wf-liveportrait-hq"]
    fast_tpf = _median_by(fast, "gpu_model", "resolution_tier")
    hq_tpf = _median_by(hq, "gpu_model", "resolution_tier")
    ratios = [hq_tpf[k] / fast_tpf[k] for k in fast_tpf.keys() & hq_tpf.keys()]
    assert len(ratios) >= 4
    assert 1.15 < statistics.median(ratios) < 1.35
    gain = statistics.mean(e["quality_scores"]["likeness"] for e in hq) - statistics.mean(
        e["quality_scores"]["likeness"] for e in fast
    )
    assert gain > 0.04


def test_the_throttled_worker_is_slower_than_its_peers_on_the_same_work(reading: Reading) -> None:
    done = [e for e in _of(reading, "job.completed") if e["gpu_model"] == "NVIDIA L40S"]
    slow = _median_by(
        [e for e in done if e["worker_id"] == "gpu-08"], "workflow_id", "resolution_tier"
    )
    peers = _median_by(
        [e for e in done if e["worker_id"] != "gpu-08"], "workflow_id", "resolution_tier"
    )
    ratios = [slow[k] / peers[k] for k in slow.keys() & peers.keys()]
    assert len(ratios) >= 5
    assert 1.2 < statistics.median(ratios) < 1.4
    temps = defaultdict(list)
    for e in _of(reading, "worker.sample"):
        if e["state"] == "generating" and e["gpu_model"] == "NVIDIA L40S":
            temps[e["worker_id"] == "gpu-08"].append(e["temperature_c"])
    assert statistics.mean(temps[True]) > statistics.mean(temps[False]) + 5


def test_lora_strength_drives_likeness_within_a_workflow(reading: Reading) -> None:
    by_wf = defaultdict(list)
    for e in _of(reading, "job.completed"):
        if "lora_strength" in e["params"]:
            by_wf[e["workflow_id"]].append(
                (e["params"]["lora_strength"], e["quality_scores"]["likeness"])
            )
    # Pooled slope of likeness on lora_strength, each workflow centred on its own means.
    sxy = sxx = 0.0
    for pairs in by_wf.values():
        mx = statistics.mean(x for x, _ in pairs)
        my = statistics.mean(y for _, y in pairs)
        sxy += sum((x - mx) * (y - my) for x, y in pairs)
        sxx += sum((x - mx) ** 2 for x, _ in pairs)
    assert 0.15 < sxy / sxx < 0.25


def _setup(e: dict[str, Any]) -> tuple[str, str, str]:
    return e["workflow_id"], e["resolution_tier"], e["gpu_model"]


def test_ooms_happen_near_the_memory_limit(reading: Reading) -> None:
    jobs = _of(reading, "job.completed", "job.failed")
    use: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for e in jobs:
        if e["event_type"] == "job.completed" and e["vram_peak_mb"] is not None:
            use[_setup(e)].append(e["vram_peak_mb"] / e["vram_total_mb"])
    # Setups whose completed jobs peak at >= 85% of the card: where OOMs should cluster.
    near = {k for k, v in use.items() if statistics.median(v) >= 0.85}
    ooms = [e for e in jobs if e.get("error_type") == "oom"]
    assert len(ooms) >= 10
    assert sum(_setup(e) in near for e in ooms) >= 0.75 * len(ooms)
    assert sum(e["gpu_model"] == "NVIDIA RTX 4090" for e in ooms) >= 0.8 * len(ooms)
    near_jobs = sum(_setup(e) in near for e in jobs)
    rate_near = sum(_setup(e) in near for e in ooms) / near_jobs
    rate_far = sum(_setup(e) not in near for e in ooms) / (len(jobs) - near_jobs)
    assert rate_near > 20 * rate_far


# --- publishing, against a stand-in for kafka-python's producer -------------------------------


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def add_errback(self, fn: Any, *args: Any) -> _Future:
        if self.error is not None:
            fn(self.error, *args)
        return self


class _Producer:
    """Records what publish_studio asks of KafkaProducer (send, flush, close)."""

    made: ClassVar[list[_Producer]] = []

    def __init__(self, fail_every: int = 0, **config: Any) -> None:
        self.config, self.fail_every = config, fail_every
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.calls: list[str] = []
        _Producer.made.append(self)

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> _Future:
        self.sent.append((topic, key, value))
        failed = self.fail_every and len(self.sent) % self.fail_every == 0
        return _Future(RuntimeError("broker said no") if failed else None)

    def flush(self, timeout: float | None = None) -> None:
        self.calls.append("flush")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("close")


def test_publish_sends_the_stream_in_order_then_flushes_and_closes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _Producer.made.clear()
    monkeypatch.setattr(demo, "KafkaProducer", _Producer)
    sent = demo.publish_studio("localhost:9092", "perf.job-events", days=1, seed=7, end=END)
    [producer] = _Producer.made
    expected = list(studio_messages(1, 7, END))
    assert sent == len(expected) == len(producer.sent)
    assert producer.sent == [("perf.job-events", m.key, m.value) for m in expected]
    assert producer.config == {
        "bootstrap_servers": "localhost:9092",
        "linger_ms": 20,
        "batch_size": 1 << 20,
        "acks": "all",
    }
    assert producer.calls == ["flush", "close"]
    assert f"{sent}/{sent}" in capsys.readouterr().err  # the progress bar ran to its end


def test_publish_reports_messages_the_broker_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    _Producer.made.clear()
    monkeypatch.setattr(demo, "KafkaProducer", lambda **c: _Producer(fail_every=1000, **c))
    with pytest.raises(DemoPublishError, match="failed: broker said no"):
        demo.publish_studio("b:9092", "t", days=1, seed=7, end=END, progress=False)
    assert _Producer.made[0].calls == ["flush", "close"]


def test_the_producer_settings_are_kafka_python_settings() -> None:
    from kafka import KafkaProducer

    assert {"linger_ms", "batch_size", "acks"} <= set(KafkaProducer.DEFAULT_CONFIG)
