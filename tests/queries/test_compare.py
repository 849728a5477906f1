"""Workflow, period and version comparisons against a tiny lake written through the ingest pipeline."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from queries import compare
from queries import statistics as st
from queries.base import Filters
from queries.compare import COMPARISON_SCHEMA
from tests.lakes import write_events

HIGHER, LOWER, NO_CLEAR, NOT_ENOUGH = st.HIGHER, st.LOWER, st.NO_CLEAR, st.NOT_ENOUGH
ALL = Filters()


def _job(workflow: str, n: int, tpf: float, **fields: object) -> dict:
    """A completed job: 10 frames at `tpf` ms, so total GPU time is 10 * tpf."""
    event = {
        "event_type": "job.completed",
        "event_id": f"{workflow}-{n}",
        "occurred_at": "2025-06-03T10:00:00Z",
        "job_id": f"job-{workflow}-{n}",
        "workflow_id": workflow,
        "worker_id": "gpu-01",
        "frame_count": 10,
        "total_gpu_time_ms": round(tpf * 10),
        "time_per_frame_ms": tpf,
    }
    return event | fields


def _failure(workflow: str, n: int, **fields: object) -> dict:
    return {
        "event_type": "job.failed",
        "event_id": f"{workflow}-f{n}",
        "occurred_at": "2025-06-03T11:00:00Z",
        "job_id": f"job-{workflow}-f{n}",
        "workflow_id": workflow,
        "worker_id": "gpu-01",
        "error_type": "oom",
    } | fields


def _two(n: int, low: float, high: float) -> float:
    """Alternate between two values: the mean of an even run is (low + high) / 2."""
    return low if n % 2 else high


def _events() -> list[dict]:
    events: list[dict] = []
    # wf-a against wf-b: 20% slower (120 vs 100 ms), 15% more likeness (0.69 vs 0.60), the
    # same VRAM (1100 on average), no failures; no other score.
    for n in range(40):
        events.append(
            _job(
                "wf-a",
                n,
                _two(n, 115, 125),
                vram_peak_mb=_two(n, 1000, 1200),
                quality_scores={"likeness": _two(n, 0.68, 0.70)},
            )
        )
        events.append(
            _job(
                "wf-b",
                n,
                _two(n, 95, 105),
                vram_peak_mb=_two(n, 1200, 1000),
                quality_scores={"likeness": _two(n, 0.59, 0.61), "lip_sync": 0.5},
            )
        )
    # wf-c against wf-d: 101 against 100 ms with a spread of 20: no clear difference.
    for n in range(40):
        events.append(_job("wf-c", n, _two(n, 81, 121), vram_peak_mb=1000))
        events.append(_job("wf-d", n, _two(n, 80, 120), vram_peak_mb=1000))
    # wf-m against wf-n on different mixes of work; each is 10% slower in each tier.
    #   wf-m: 720p 20 jobs at 110 (no VRAM monitor), 4k 60 at 440 (VRAM 2000), 1080p 5 at 999
    #         (b never ran 1080p), 30 failures on 4k
    #   wf-n: 720p 60 jobs at 100 (VRAM 1500), 4k 40 at 400 (VRAM 2200), 4 failures on 4k
    for n in range(20):
        events.append(_job("wf-m", n, _two(n, 105, 115), resolution_tier="720p"))
    for n in range(20, 80):
        events.append(
            _job(
                "wf-m",
                n,
                _two(n, 430, 450),
                resolution_tier="4k",
                vram_peak_mb=_two(n, 1900, 2100),
            )
        )
    for n in range(80, 85):
        events.append(_job("wf-m", n, 999, resolution_tier="1080p", vram_peak_mb=5000))
    events += [_failure("wf-m", n, resolution_tier="4k") for n in range(30)]
    for n in range(60):
        events.append(_job("wf-n", n, _two(n, 95, 105), resolution_tier="720p", vram_peak_mb=1500))
    for n in range(60, 100):
        events.append(
            _job(
                "wf-n",
                n,
                _two(n, 390, 410),
                resolution_tier="4k",
                vram_peak_mb=_two(n, 2100, 2300),
            )
        )
    events += [_failure("wf-n", n, resolution_tier="4k") for n in range(4)]
    # wf-p against wf-q: 100 jobs each at 10, 20, ..., 1000 ms and 5, 10, ..., 500 ms.
    for n in range(1, 101):
        events.append(_job("wf-p", n, 10.0 * n))
        events.append(_job("wf-q", n, 5.0 * n))
    # wf-v: version 1.0 on 2025-06-01 at 200 ms; 1.1 from 2025-06-02 (UTC) at 150 ms. One 1.1 job
    # ends at 23:30 on 06-01 at -01:00, which is 00:30 on 06-02 UTC.
    for n in range(40):
        at = "2025-06-01T12:00:00Z"
        events.append(_job("wf-v", n, _two(n, 195, 205), occurred_at=at, workflow_version="1.0"))
    for n in range(40, 80):
        at = "2025-06-01T23:30:00-01:00" if n == 40 else "2025-06-02T12:00:00Z"
        events.append(_job("wf-v", n, _two(n, 145, 155), occurred_at=at, workflow_version="1.1"))
    return events


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("compare") / "lake", _events())


def _rows(result: pl.DataFrame) -> dict[str, dict]:
    return {row["metric"]: row for row in result.iter_rows(named=True)}


def test_tradeoff_rows_and_sentence(lake: Path) -> None:
    result = compare.compare_workflows(lake, ALL, ["wf-a", "wf-b"])
    assert result.schema == pl.Schema(COMPARISON_SCHEMA)
    assert result.get_column("metric").to_list() == list(compare.COMPARE_METRICS)
    assert set(result.get_column("workflow_a")) == {"wf-a"}
    assert set(result.get_column("workflow_b")) == {"wf-b"}
    rows = _rows(result)
    expected = {
        # metric: (a, b, pct_diff, n_a, n_b, verdict)
        "avg_time_per_frame_ms": (120.0, 100.0, 20.0, 40, 40, HIGHER),
        # 20 values of 115 then 20 of 125: the 38th of 40 is 125; b's is 105.
        "p95_time_per_frame_ms": (125.0, 105.0, 19.047619, 40, 40, NOT_ENOUGH),
        "avg_gpu_time_ms": (1200.0, 1000.0, 20.0, 40, 40, HIGHER),
        "avg_vram_peak_mb": (1100.0, 1100.0, 0.0, 40, 40, NO_CLEAR),
        "failure_rate": (0.0, 0.0, None, 40, 40, NO_CLEAR),
        "avg_likeness": (0.69, 0.60, 15.0, 40, 40, HIGHER),
        "avg_face_confidence": (None, None, None, 0, 0, NOT_ENOUGH),
        "avg_motion_quality": (None, None, None, 0, 0, NOT_ENOUGH),
        "avg_boundary_ssim": (None, None, None, 0, 0, NOT_ENOUGH),
    }
    for metric, (a, b, pct, n_a, n_b, verdict) in expected.items():
        row = rows[metric]
        assert (row["a"], row["b"]) == (pytest.approx(a), pytest.approx(b)), metric
        assert row["pct_diff"] == (None if pct is None else pytest.approx(pct)), metric
        assert (row["n_a"], row["n_b"], row["verdict"]) == (n_a, n_b, verdict), metric
    time = rows["avg_time_per_frame_ms"]
    assert 0 < time["ci_low"] < 20 < time["ci_high"]
    assert time["p_value"] < 0.05 / 9
    assert rows["avg_vram_peak_mb"]["p_value"] == 1.0
    assert rows["p95_time_per_frame_ms"]["ci_low"] is None
    assert compare.tradeoff_sentences(result) == [
        "wf-a is 20% slower and uses 20% more GPU time per job but produces 15% higher "
        "likeness scores than wf-b; no clear difference in VRAM peak or failure rate; not "
        "enough data for p95 time per frame, face_confidence, motion_quality and boundary_ssim."
    ]


def test_a_big_group_is_sampled_but_its_failure_rate_counts_every_attempt(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wf-m: 85 jobs and 30 failures; wf-n: 100 jobs and 4 failures. Past 40 jobs a group keeps
    # a pseudo-random sample of about 40 for the means, never for the attempt counts.
    monkeypatch.setattr(compare, "MAX_JOBS", 40)
    sampled = _rows(compare.compare_workflows(lake, ALL, ["wf-m", "wf-n"], match_on=()))
    again = _rows(compare.compare_workflows(lake, ALL, ["wf-m", "wf-n"], match_on=()))
    assert sampled == again  # the same sample every time
    time = sampled["avg_time_per_frame_ms"]
    assert 25 <= time["n_a"] <= 60 and 25 <= time["n_b"] <= 60
    failures = sampled["failure_rate"]
    assert (failures["n_a"], failures["n_b"]) == (115, 104)
    assert (failures["a"], failures["b"]) == (pytest.approx(30 / 115), pytest.approx(4 / 104))


def test_no_clear_difference(lake: Path) -> None:
    result = compare.compare_workflows(lake, ALL, ["wf-c", "wf-d"])
    rows = _rows(result)
    assert rows["avg_time_per_frame_ms"]["pct_diff"] == pytest.approx(1.0)
    assert rows["avg_time_per_frame_ms"]["verdict"] == NO_CLEAR
    assert rows["avg_time_per_frame_ms"]["ci_low"] < 0 < rows["avg_time_per_frame_ms"]["ci_high"]
    assert compare.tradeoff_sentences(result) == [
        "No clear difference between wf-c and wf-d in time per frame, GPU time per job, VRAM "
        "peak or failure rate; not enough data for p95 time per frame, likeness, "
        "face_confidence, motion_quality and boundary_ssim."
    ]


def test_matched_work_weights_each_tier_to_the_common_mix(lake: Path) -> None:
    rows = _rows(compare.compare_workflows(lake, ALL, ["wf-m", "wf-n"]))
    time = rows["avg_time_per_frame_ms"]
    # 720p: 20 + 60 jobs, 4k: 60 + 40 (1080p only on wf-m: left out): weights 80/180, 100/180.
    # a = 4/9 * 110 + 5/9 * 440 = 293.33, b = 4/9 * 100 + 5/9 * 400 = 266.67: 10% slower.
    assert time["a"] == pytest.approx(293.3333333)
    assert time["b"] == pytest.approx(266.6666667)
    assert time["pct_diff"] == pytest.approx(10.0)
    assert (time["n_a"], time["n_b"], time["verdict"]) == (80, 100, HIGHER)
    # VRAM: wf-m has no monitor on 720p, so only 4k is matched: 2000 against 2200.
    vram = rows["avg_vram_peak_mb"]
    assert (vram["a"], vram["b"]) == (pytest.approx(2000.0), pytest.approx(2200.0))
    assert vram["pct_diff"] == pytest.approx(-9.0909091)
    assert (vram["n_a"], vram["n_b"], vram["verdict"]) == (60, 40, LOWER)
    # Attempts 720p: 20 + 60, 4k: 90 + 44 (weights 80/214, 134/214); failures only on 4k:
    # a = 134/214 * 30/90 = 0.208723, b = 134/214 * 4/44 = 0.056924; a / b = 11/3.
    fail = rows["failure_rate"]
    assert (fail["a"], fail["b"]) == (pytest.approx(0.2087227), pytest.approx(0.0569244))
    assert fail["pct_diff"] == pytest.approx(266.6666667)
    assert (fail["n_a"], fail["n_b"], fail["verdict"]) == (110, 104, HIGHER)


def test_unmatched_comparison_takes_plain_averages(lake: Path) -> None:
    rows = _rows(compare.compare_workflows(lake, ALL, ["wf-m", "wf-n"], match_on=()))
    time = rows["avg_time_per_frame_ms"]
    # (20 * 110 + 60 * 440 + 5 * 999) / 85 = 395.235; (60 * 100 + 40 * 400) / 100 = 220.
    assert time["a"] == pytest.approx(395.2352941)
    assert time["b"] == pytest.approx(220.0)
    assert (time["n_a"], time["n_b"]) == (85, 100)
    # 30 of 115 attempts against 4 of 104.
    assert rows["failure_rate"]["a"] == pytest.approx(30 / 115)
    assert rows["failure_rate"]["b"] == pytest.approx(4 / 104)


def test_p95_from_a_hundred_jobs(lake: Path) -> None:
    rows = _rows(compare.compare_workflows(lake, ALL, ["wf-p", "wf-q"]))
    p95 = rows["p95_time_per_frame_ms"]
    assert (p95["a"], p95["b"], p95["pct_diff"]) == (950.0, 475.0, pytest.approx(100.0))
    assert (p95["n_a"], p95["n_b"], p95["verdict"]) == (100, 100, HIGHER)
    assert rows["avg_time_per_frame_ms"]["a"] == pytest.approx(505.0)
    assert rows["avg_time_per_frame_ms"]["b"] == pytest.approx(252.5)


def test_more_than_two_workflows_compare_against_the_first(lake: Path) -> None:
    result = compare.compare_workflows(lake, ALL, ["wf-b", "wf-a", "wf-d"])
    assert result.height == 2 * len(compare.COMPARE_METRICS)
    pairs = result.select("workflow_a", "workflow_b").unique(maintain_order=True).rows()
    assert pairs == [("wf-a", "wf-b"), ("wf-d", "wf-b")]
    # The level is shared by 2 pairs x 9 metrics: 20% and 15% still clear it.
    assert _rows(result.head(9))["avg_likeness"]["verdict"] == HIGHER
    assert len(compare.tradeoff_sentences(result)) == 2


def test_the_compared_workflows_replace_the_workflow_filter(lake: Path) -> None:
    narrowed = Filters(workflows=("wf-c",))
    rows = _rows(compare.compare_workflows(lake, narrowed, ["wf-a", "wf-b"]))
    assert (rows["avg_time_per_frame_ms"]["n_a"], rows["avg_time_per_frame_ms"]["n_b"]) == (40, 40)


def test_versions(lake: Path) -> None:
    result = compare.compare_versions(lake, ALL, "wf-v", "1.1", "1.0")
    row = _rows(result)["avg_time_per_frame_ms"]
    assert (row["workflow_a"], row["workflow_b"]) == ("wf-v 1.1", "wf-v 1.0")
    assert (row["a"], row["b"], row["pct_diff"]) == (150.0, 200.0, pytest.approx(-25.0))
    assert (row["n_a"], row["n_b"], row["verdict"]) == (40, 40, LOWER)
    assert compare.tradeoff_sentences(result)[0] == (
        "wf-v 1.1 is 25% faster and uses 25% less GPU time per job than wf-v 1.0; no clear "
        "difference in failure rate; not enough data for p95 time per frame, VRAM peak, "
        "likeness, face_confidence, motion_quality and boundary_ssim."
    )


def test_before_and_since_a_day_in_utc(lake: Path) -> None:
    result = compare.compare_periods(lake, ALL, "wf-v", date(2025, 6, 2))
    row = _rows(result)["avg_time_per_frame_ms"]
    assert (row["workflow_a"], row["workflow_b"]) == (
        "wf-v since 2025-06-02",
        "wf-v before 2025-06-02",
    )
    # The job at 23:30 -01:00 on 06-01 counts after the split: 40 and 40, not 39 and 41.
    assert (row["a"], row["b"], row["n_a"], row["n_b"]) == (150.0, 200.0, 40, 40)
    assert row["verdict"] == LOWER


def test_a_period_without_jobs_is_not_enough_data(lake: Path) -> None:
    result = compare.compare_periods(lake, ALL, "wf-v", date(2025, 6, 1))
    assert set(result.get_column("verdict")) == {NOT_ENOUGH}
    assert set(result.get_column("n_b")) == {0}
    assert compare.tradeoff_sentences(result) == [
        "Not enough data to compare wf-v since 2025-06-01 and wf-v before 2025-06-01."
    ]


def test_an_empty_range_has_every_row_and_no_data(lake: Path) -> None:
    result = compare.compare_workflows(lake, Filters(start=date(2030, 1, 1)), ["wf-a", "wf-b"])
    assert result.schema == pl.Schema(COMPARISON_SCHEMA)
    assert result.height == len(compare.COMPARE_METRICS)
    assert set(result.get_column("verdict")) == {NOT_ENOUGH}
    assert result.get_column("a").null_count() == result.height
    assert set(result.get_column("n_a")) == {0}


@pytest.mark.parametrize(
    ("workflows", "message"),
    [(["wf-a"], "workflows: need at least 2"), (["wf-a", "wf-a"], "workflows: each")],
)
def test_bad_workflow_lists(lake: Path, workflows: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare.compare_workflows(lake, ALL, workflows)


def test_the_same_version_twice_is_refused(lake: Path) -> None:
    with pytest.raises(ValueError, match="version_b"):
        compare.compare_versions(lake, ALL, "wf-v", "1.0", "1.0")


@pytest.mark.parametrize("match_on", [("bogus",), ("qa_passed",)])
def test_a_match_column_both_tables_lack_is_refused(lake: Path, match_on: tuple[str]) -> None:
    # qa_passed is a column of jobs only: failures could not be matched on it.
    with pytest.raises(ValueError, match="not a known"):
        compare.compare_workflows(lake, ALL, ["wf-a", "wf-b"], match_on=match_on)


def _frame(rows: list[tuple[str, float | None, str]]) -> pl.DataFrame:
    full = [
        {"metric": m, "workflow_a": "new", "workflow_b": "old", "pct_diff": p, "verdict": v}
        for m, p, v in rows
    ]
    return pl.DataFrame(full, schema={k: COMPARISON_SCHEMA[k] for k in full[0]})


@pytest.mark.parametrize(
    ("rows", "sentence"),
    [
        (
            [("avg_time_per_frame_ms", -20.4, LOWER), ("avg_likeness", -3.14, LOWER)],
            "new is 20% faster but produces 3.1% lower likeness scores than old.",
        ),
        (
            [("failure_rate", None, HIGHER), ("avg_vram_peak_mb", -9.96, LOWER)],
            "new uses 10% less VRAM but fails more often than old.",
        ),
        (
            [
                ("avg_likeness", 7.24, HIGHER),
                ("avg_face_confidence", 0.87, HIGHER),
                ("p95_time_per_frame_ms", 24.0, HIGHER),
            ],
            "new has a 24% slower p95 time per frame but produces 7.2% higher likeness and "
            "0.87% higher face_confidence scores than old.",
        ),
        (
            [("avg_time_per_frame_ms", 1.0, NO_CLEAR), ("failure_rate", 3.0, NO_CLEAR)],
            "No clear difference between new and old in any metric.",
        ),
        (
            [("avg_gpu_time_ms", -12.0, LOWER), ("avg_vram_peak_mb", None, NOT_ENOUGH)],
            "new uses 12% less GPU time per job than old; not enough data for VRAM peak.",
        ),
    ],
)
def test_sentences(rows: list[tuple[str, float | None, str]], sentence: str) -> None:
    assert compare.tradeoff_sentences(_frame(rows)) == [sentence]


def test_no_rows_no_sentences() -> None:
    empty = pl.DataFrame(schema=COMPARISON_SCHEMA)
    assert compare.tradeoff_sentences(empty) == []
