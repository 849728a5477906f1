"""`perflake report`, `perflake schedule` and `perflake scheduler` from the command line."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.cli import main
from tests.lakes import write_events

JOBS = [
    {
        "event_type": "job.completed",
        "event_id": f"j{i}",
        "occurred_at": f"2025-06-0{1 + i % 3}T10:00:00Z",
        "job_id": f"job-{i}",
        "workflow_id": "wf-a",
        "worker_id": "gpu-01",
        "gpu_model": "NVIDIA L40S",
        "project_id": "proj-a",
        "frame_count": 10,
        "total_gpu_time_ms": 3_600_000,  # one GPU-hour each
    }
    for i in range(6)
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("report") / "lake", JOBS)


def _report(lake: Path, out: Path, fmt: str, kind: str = "performance") -> int:
    argv = ["report", kind, "--lake", str(lake), "--from", "2025-06-01", "--to", "2025-06-03"]
    return main([*argv, "--format", fmt, "--out", str(out)])


def test_performance_report_json_holds_the_period_and_its_gpu_hours(lake: Path, tmp_path: Path):
    out = tmp_path / "perf.json"
    assert _report(lake, out, "json") == 0
    doc = json.loads(out.read_text())
    assert doc["report"] == "performance"
    assert doc["period"] == {"from": "2025-06-01", "to": "2025-06-03"}
    assert doc["headline"]["gpu_hours"] == 6.0


def test_report_into_a_folder_takes_its_own_name(lake: Path, tmp_path: Path):
    assert _report(lake, tmp_path, "pdf") == 0
    (pdf,) = tmp_path.glob("*.pdf")
    assert pdf.name == "perflake-performance-2025-06-01_2025-06-03.pdf"
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Performance summary" in text


def test_multi_table_csv_is_a_zip_of_csv_files(lake: Path, tmp_path: Path):
    out = tmp_path / "cost.zip"
    assert _report(lake, out, "csv", kind="cost") == 0
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert names and all(n.endswith(".csv") for n in names)
        first = next(csv.reader(io.StringIO(z.read(names[0]).decode())))
        assert first  # a header row


def test_bad_report_flags_fail_naming_the_flag(lake: Path, tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        main(["report", "performance", "--lake", str(lake), "--from", "2025-06-01"])
    assert "--to" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "cost", "--lake", str(lake), "--from", "2025-06-01", "--to",
              "2025-06-02", "--gpu-rate", "H100"])  # fmt: skip
    assert "--gpu-rate: must be MODEL=USD_PER_HOUR" in capsys.readouterr().err


def test_schedule_lifecycle_from_the_cli(tmp_path: Path, capsys):
    lake = write_events(tmp_path / "lake", JOBS)
    add = ["schedule", "add", "--lake", str(lake), "--report", "delivery", "--cadence", "weekly"]
    assert main([*add, "--day", "mon", "--to", "a@example.com", "--format", "csv"]) == 0
    assert "schedule 1 saved" in capsys.readouterr().out
    assert main(["schedule", "pause", "--lake", str(lake), "1"]) == 0
    assert main(["schedule", "list", "--lake", str(lake), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [(r["id"], r["report"], r["state"], r["recipients"]) for r in rows] == [
        (1, "delivery", "paused", "a@example.com")
    ]
    assert main(["schedule", "delete", "--lake", str(lake), "1"]) == 0
    assert main(["schedule", "list", "--lake", str(lake), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("id,report,")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--day", "31", "--to", "a@example.com"], "day: must be a day of the month 1-28"),
        (["--day", "1", "--to", "not-an-address"], "not-an-address"),
    ],
)
def test_invalid_schedules_are_refused_with_the_reason(flags, message, tmp_path: Path, capsys):
    lake = write_events(tmp_path / "lake", JOBS)
    add = ["schedule", "add", "--lake", str(lake), "--report", "quality", "--cadence", "monthly"]
    assert main([*add, *flags]) == 2
    assert message in capsys.readouterr().err


def test_scheduler_refuses_a_bad_smtp_setting_at_start_up(lake: Path, capsys):
    assert main(["scheduler", "--lake", str(lake), "--once", "--smtp-port", "70000"]) == 2
    assert "--smtp-port: must be 1-65535, got 70000" in capsys.readouterr().err
