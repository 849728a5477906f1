"""Parameter/quality correlations, scatter and top configurations against a tiny hand-made lake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from queries import correlations
from queries.base import Filters
from tests.lakes import write_events

ALL = Filters()


def _job(workflow: str, n: int, params: dict | None, scores: dict | None, **fields) -> dict:
    event = {
        "event_type": "job.completed",
        "event_id": f"{workflow}-{n}",
        "occurred_at": "2025-06-02T12:00:00Z",
        "job_id": f"job-{workflow}-{n}",
        "workflow_id": workflow,
        "worker_id": "gpu-01",
        "frame_count": 10,
        "total_gpu_time_ms": 1000,
    }
    if params is not None:
        event["params"] = params
    if scores is not None:
        event["quality_scores"] = scores
    return event | fields


# wf-a, five jobs (the last ends 23:30 on 06-01 at -01:00: 00:30 on 06-02 UTC):
#   cfg     1    2    3    4    5
#   steps   10   10   20   20   30
#   tile    512 on every job (constant: no correlation)
#   likeness 0.2 0.4 0.5 0.4 0.5
#   lip_sync  -  0.5   -  0.7  0.6   (custom score on three jobs)
#   loop_seam 0.9 0.8  -   -    -    (two jobs: too few)
# plus a job with parameters and no scores and one with scores and no parameters.
# wf-b on 06-01: cfg 7 (constant), denoise 0.1 0.2 0.3, likeness 0.9 0.8 0.7, face_confidence 0.5.
# wf-c: configurations of sampler and steps, seed different on every job (never a setting).
CFG = [1, 2, 3, 4, 5]
STEPS = [10, 10, 20, 20, 30]
LIKENESS = [0.2, 0.4, 0.5, 0.4, 0.5]
EXTRA = [{"loop_seam": 0.9}, {"lip_sync": 0.5, "loop_seam": 0.8}, {}, {"lip_sync": 0.7}]
EXTRA += [{"lip_sync": 0.6}]
CONFIGURATIONS = [
    # sampler, steps, likeness, time per frame
    ("euler", 20, 0.80, 100.0),
    ("euler", 20, 0.82, 110.0),
    ("euler", 30, 0.90, 150.0),
    ("euler", 30, 0.92, 150.0),
    ("euler", 30, 0.94, 150.0),
    ("dpm", 20, 0.70, 90.0),
    ("dpm", 20, 0.72, 90.0),
    ("dpm", 20, 0.74, 90.0),
    ("dpm", 30, 0.85, 200.0),
]


def _events() -> list[dict]:
    events = []
    for n in range(5):
        params = {"cfg": CFG[n], "steps": STEPS[n], "tile": 512, "sampler": "euler"}
        scores = {"likeness": LIKENESS[n]} | EXTRA[n]
        at = "2025-06-01T23:30:00-01:00" if n == 4 else "2025-06-02T12:00:00Z"
        events.append(_job("wf-a", n, params, scores, occurred_at=at))
    events.append(_job("wf-a", 5, {"cfg": 9, "steps": 90}, None))
    events.append(_job("wf-a", 6, None, {"likeness": 0.1, "lip_sync": 0.1}))
    for n, (denoise, like) in enumerate([(0.1, 0.9), (0.2, 0.8), (0.3, 0.7)]):
        params = {"cfg": 7.0, "denoise": denoise}
        scores = {"likeness": like, "face_confidence": 0.5}
        events.append(_job("wf-b", n, params, scores, occurred_at="2025-06-01T12:00:00Z"))
    for n, (sampler, steps, like, tpf) in enumerate(CONFIGURATIONS):
        params = {"sampler": sampler, "steps": steps, "seed": 1000 + n}
        events.append(_job("wf-c", n, params, {"likeness": like}, time_per_frame_ms=tpf))
    return events


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("correlations") / "lake", _events())


CORRELATION_SCHEMA = pl.Schema(
    {
        "workflow_id": pl.String(),
        "param": pl.String(),
        "score": pl.String(),
        "pearson_r": pl.Float64(),
        "spearman_r": pl.Float64(),
        "n": pl.Int64(),
    }
)


def test_correlations_worked_out_by_hand(lake: Path) -> None:
    result = correlations.correlations(lake, Filters(workflows=("wf-a", "wf-b")))
    assert result.schema == CORRELATION_SCHEMA
    expected = [
        # Pearson: deviations (-8, -8, 2, 2, 12) and (-.2, 0, .1, 0, .1): 3 / sqrt(280 * .06)
        # = 0.731925. Spearman: ranks (1.5, 1.5, 3.5, 3.5, 5) and (1, 2.5, 4.5, 2.5, 4.5):
        # 7.25 / sqrt(9 * 9) = 0.805556.
        ("wf-a", "steps", "likeness", 0.731925, 0.805556, 5),
        # Pearson: 0.6 / sqrt(10 * 0.06) = 0.774597; Spearman 7 / sqrt(10 * 9) = 0.737865.
        ("wf-a", "cfg", "likeness", 0.774597, 0.737865, 5),
        # lip_sync on jobs with cfg 2, 4, 5: Pearson 0.2 / sqrt(4.6667 * 0.02) = 0.654654;
        # ranks within those three jobs (1, 2, 3) and (1, 3, 2): Spearman 1 / 2 = 0.5.
        ("wf-a", "cfg", "lip_sync", 0.654654, 0.5, 3),
        # steps 10, 20, 30 on those jobs: Pearson 1 / sqrt(200 * 0.02) = 0.5, Spearman 0.5.
        ("wf-a", "steps", "lip_sync", 0.5, 0.5, 3),
        # denoise against likeness falls in a straight line.
        ("wf-b", "denoise", "likeness", -1.0, -1.0, 3),
    ]
    rows = result.rows()
    assert [row[:3] for row in rows] == [row[:3] for row in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got[3] == pytest.approx(want[3], abs=1e-6), got[:3]
        assert got[4] == pytest.approx(want[4], abs=1e-6), got[:3]
        assert got[5] == want[5]


def test_the_job_at_23_30_minus_one_hour_counts_on_the_next_utc_day(lake: Path) -> None:
    day = date(2025, 6, 2)
    result = correlations.correlations(lake, Filters(start=day, end=day, workflows=("wf-a",)))
    assert set(result.get_column("n")) == {5, 3}
    before = correlations.correlations(lake, Filters(end=date(2025, 6, 1)))
    assert before.select("workflow_id", "param", "score").rows() == [
        ("wf-b", "denoise", "likeness")
    ]


def test_no_jobs_in_range_is_an_empty_typed_frame(lake: Path) -> None:
    result = correlations.correlations(lake, Filters(start=date(2030, 1, 1)))
    assert result.is_empty()
    assert result.schema == CORRELATION_SCHEMA


def test_a_big_workflow_is_sampled_to_about_max_jobs(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With at most 2 jobs per workflow, about 2 of wf-a's 6 with parameters are kept: r needs 3.
    monkeypatch.setattr(correlations, "MAX_JOBS", 2)
    result = correlations.correlations(lake, Filters(workflows=("wf-a",)))
    assert result.height < 4
    assert (result.get_column("n") <= 5).all()


def test_scatter(lake: Path) -> None:
    result = correlations.scatter(lake, ALL, "wf-a", "cfg", "likeness")
    assert result.schema == pl.Schema(
        {"job_id": pl.String(), "param_value": pl.Float64(), "score_value": pl.Float64()}
    )
    assert result.rows() == [
        ("job-wf-a-0", 1.0, 0.2),
        ("job-wf-a-1", 2.0, 0.4),
        ("job-wf-a-2", 3.0, 0.5),
        ("job-wf-a-3", 4.0, 0.4),
        ("job-wf-a-4", 5.0, 0.5),
    ]
    custom = correlations.scatter(lake, ALL, "wf-a", "cfg", "lip_sync")
    assert custom.get_column("job_id").to_list() == ["job-wf-a-1", "job-wf-a-3", "job-wf-a-4"]


def test_scatter_limit_keeps_a_fixed_sample(lake: Path) -> None:
    first = correlations.scatter(lake, ALL, "wf-a", "cfg", "likeness", limit=2)
    again = correlations.scatter(lake, ALL, "wf-a", "cfg", "likeness", limit=2)
    assert first.height == 2
    assert first.equals(again)
    assert set(first.get_column("job_id")) <= {f"job-wf-a-{n}" for n in range(5)}


@pytest.mark.parametrize(("param", "score"), [("nope", "likeness"), ("cfg", "nope")])
def test_scatter_of_an_unknown_name_is_empty(lake: Path, param: str, score: str) -> None:
    result = correlations.scatter(lake, ALL, "wf-a", param, score)
    assert result.is_empty()
    assert result.columns == ["job_id", "param_value", "score_value"]


def test_scatter_limit_must_be_positive(lake: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        correlations.scatter(lake, ALL, "wf-a", "cfg", "likeness", limit=0)


WF_C = Filters(workflows=("wf-c",))


def test_top_and_bottom_configurations_by_likeness(lake: Path) -> None:
    # euler/30: (0.90 + 0.92 + 0.94) / 3 = 0.92; euler/20: 0.81; dpm/20: 0.72; dpm/30 has 1 job.
    result = correlations.top_configurations(lake, WF_C, min_jobs=2, n=1)
    assert result.rows() == [
        ("wf-c", "sampler=euler, steps=30", 3, pytest.approx(0.92), "top", 1, 1),
        ("wf-c", "sampler=dpm, steps=20", 3, pytest.approx(0.72), "bottom", 1, 1),
    ]
    # With n=2, euler/20 is second best and second worst: listed once, among the top.
    wider = correlations.top_configurations(lake, WF_C, min_jobs=2, n=2)
    assert wider.select("params", "rank_group", "rank").rows() == [
        ("sampler=euler, steps=30", "top", 1),
        ("sampler=euler, steps=20", "top", 2),
        ("sampler=dpm, steps=20", "bottom", 1),
    ]


def test_configurations_by_time_rank_the_fastest_first(lake: Path) -> None:
    # Nothing has the default 5 jobs. From 1 job: dpm/20 at 90 ms is best, dpm/30 (one job at
    # 200) worst; euler/20 averages 105, euler/30 150.
    result = correlations.top_configurations(lake, WF_C, by="time_per_frame_ms", n=1)
    assert result.select("params", "jobs", "value", "rank_group", "rank").rows() == []
    result = correlations.top_configurations(lake, WF_C, min_jobs=1, by="time_per_frame_ms", n=1)
    assert result.select("params", "jobs", "value", "rank_group", "rank").rows() == [
        ("sampler=dpm, steps=20", 3, 90.0, "top", 1),
        ("sampler=dpm, steps=30", 1, 200.0, "bottom", 1),
    ]


def test_too_few_jobs_is_an_empty_typed_frame(lake: Path) -> None:
    result = correlations.top_configurations(lake, WF_C, min_jobs=4)
    assert result.is_empty()
    assert result.schema == pl.Schema(
        {
            "workflow_id": pl.String(),
            "params": pl.String(),
            "jobs": pl.Int64(),
            "value": pl.Float64(),
            "rank_group": pl.String(),
            "rank": pl.Int64(),
            "sample_rate": pl.Int64(),
        }
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"by": "bogus"}, "by:"), ({"min_jobs": 0}, "min_jobs:"), ({"n": 0}, "n:")],
)
def test_bad_configuration_arguments(lake: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        correlations.top_configurations(lake, WF_C, **kwargs)


def test_jobs_without_any_setting_are_not_a_configuration(tmp_path: Path) -> None:
    # wf-d: four jobs with a seed alone (never a setting) at likeness 0.5, four with sampler
    # euler too at 0.6: only sampler=euler is a configuration, not the four without a setting.
    events = [_job("wf-d", n, {"seed": n}, {"likeness": 0.5}) for n in range(4)]
    events += [
        _job("wf-d", n, {"sampler": "euler", "seed": n}, {"likeness": 0.6}) for n in range(4, 8)
    ]
    lake = write_events(tmp_path / "lake", events)
    result = correlations.top_configurations(lake, Filters(), min_jobs=2, n=3)
    assert result.select("params", "jobs", "value", "rank_group", "rank").rows() == [
        ("sampler=euler", 4, pytest.approx(0.6), "top", 1)
    ]


def test_a_parameter_with_few_values_a_day_but_many_in_range_is_not_a_setting(
    tmp_path: Path,
) -> None:
    # wf-e: steps takes 8 values on 06-01 and 8 others on 06-02 (16 in range, past MAX_LEVELS);
    # sampler takes two. Only the sampler makes the configurations.
    events = [
        _job("wf-e", n, {"steps": n, "sampler": "ab"[n % 2]}, {"likeness": 0.5 + (n % 2) / 10},
             occurred_at=f"2025-06-0{1 + n // 8}T12:00:00Z")
        for n in range(16)
    ]  # fmt: skip
    lake = write_events(tmp_path / "lake", events)
    result = correlations.top_configurations(lake, Filters(), min_jobs=2, n=1)
    assert result.select("params", "jobs", "value", "rank_group").rows() == [
        ("sampler=b", 8, pytest.approx(0.6), "top"),
        ("sampler=a", 8, pytest.approx(0.5), "bottom"),
    ]
    # One day alone: steps takes 8 values among 8 jobs, more than half of them: not a setting.
    one_day = Filters(start=date(2025, 6, 1), end=date(2025, 6, 1))
    assert correlations.top_configurations(lake, one_day, min_jobs=2, n=1).height == 2
