"""`perflake query`: every view prints, JSON is a list of row objects, bad flags fail by name."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from app.cli import QUERY_VIEWS, main
from tests.lakes import write_events


def _job(eid: str, workflow: str, day: str, gpu_ms: int, likeness: float) -> dict:
    return {
        "event_type": "job.completed",
        "event_id": eid,
        "occurred_at": f"{day}T10:00:00Z",
        "job_id": f"job-{eid}",
        "workflow_id": workflow,
        "worker_id": "gpu-01",
        "gpu_model": "NVIDIA L40S",
        "frame_count": 10,
        "total_gpu_time_ms": gpu_ms,
        "quality_scores": {"likeness": likeness},
        "params": {"steps": 20 + gpu_ms // 100},
    }


# wf-a: 100 and 300 ms per frame (avg 200) on 06-01 and 06-02; wf-b: 400 ms per frame on 06-03.
EVENTS = [
    _job("a1", "wf-a", "2025-06-01", 1000, 0.5),
    _job("a2", "wf-a", "2025-06-02", 3000, 0.7),
    _job("b1", "wf-b", "2025-06-03", 4000, 0.9),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("query") / "lake", EVENTS)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_workflows_json_is_a_list_of_row_objects(lake: Path, capsys) -> None:
    code, out, _ = _run(capsys, "query", "workflows", "--lake", str(lake), "--format", "json")
    rows = json.loads(out)
    assert code == 0
    assert [(r["workflow_id"], r["jobs"], r["avg_time_per_frame_ms"]) for r in rows] == [
        ("wf-a", 2, 200.0),
        ("wf-b", 1, 400.0),
    ]


def test_date_range_and_csv_header(lake: Path, capsys) -> None:
    code, out, _ = _run(
        capsys, "query", "workflows", "--lake", str(lake), "--from", "2025-06-02",
        "--to", "2025-06-03", "--format", "csv",
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [(r["workflow_id"], r["jobs"], r["avg_time_per_frame_ms"]) for r in rows] == [
        ("wf-a", "1", "300.0"),
        ("wf-b", "1", "400.0"),
    ]


def test_empty_range_prints_the_header_only(lake: Path, capsys) -> None:
    code, out, _ = _run(
        capsys, "query", "workflows", "--lake", str(lake), "--from", "2030-01-01", "--format", "csv"
    )
    assert code == 0
    assert out.splitlines()[0].startswith("workflow_id,workflow_name,jobs,")
    assert len(out.splitlines()) == 1


@pytest.mark.parametrize("view", [v for v in QUERY_VIEWS if v != "compare"])
def test_every_view_prints_a_table(view: str, lake: Path, capsys) -> None:
    code, out, err = _run(capsys, "query", view, "--lake", str(lake))
    assert code == 0, err
    assert out.rstrip().endswith(("row)", "rows)"))


def test_compare_prints_one_row_per_metric(lake: Path, capsys) -> None:
    code, out, err = _run(
        capsys, "query", "compare", "--lake", str(lake), "--workflow", "wf-a", "--workflow", "wf-b",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    rows = {r["metric"]: r for r in json.loads(out)}
    tpf = rows["avg_time_per_frame_ms"]
    assert (tpf["a"], tpf["b"], tpf["pct_diff"]) == (200.0, 400.0, -50.0)
    # Two jobs against one: no method can support a claim.
    assert {r["verdict"] for r in rows.values()} <= {"no clear difference", "not enough data"}
    for metric in ("p95_time_per_frame_ms", "avg_likeness", "avg_vram_peak_mb", "failure_rate"):
        assert metric in rows


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2025-13-01"], "--from: must be a date YYYY-MM-DD, got '2025-13-01'"),
        (["--grain", "hour"], "invalid choice: 'hour'"),
    ],
)
def test_bad_flags_fail_at_start_up_naming_the_flag(argv, message, lake: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["query", "timeseries", "--lake", str(lake), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--from", "2025-06-03", "--to", "2025-06-01"],
            "from: 2025-06-03 is after to: 2025-06-01",
        ),
        (["--metric", "colour"], "colour"),
    ],
)
def test_contradicting_flags_fail_naming_the_flag(argv, message, lake: Path, capsys) -> None:
    code, _, err = _run(capsys, "query", "timeseries", "--lake", str(lake), *argv)
    assert code == 2
    assert message in err


def test_compare_needs_two_workflows(lake: Path, capsys) -> None:
    code, _, err = _run(capsys, "query", "compare", "--lake", str(lake), "--workflow", "wf-a")
    assert code == 2
    assert "--workflow: compare needs at least two" in err
