"""The "Reports" page through AppTest on (a copy of) the farm lake of conftest.py: presets and the
preview, downloads built only when clicked, the schedule form, and the report history."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from app import exports, sidebar
from lake import report_runs, schedules
from lake.schedules import Period, Schedule
from tests.app.apptest import downloads, open_page, rerun

#: The farm lake's five days as a custom period.
FARM_PERIOD = {"period": "custom", "report_from": "2025-06-01", "report_to": "2025-06-05"}
OWNER = "test-scheduler"
LEASE = timedelta(minutes=15)


@pytest.fixture
def lake(farm_lake: Path, tmp_path: Path) -> Path:
    """A copy of the farm lake whose schedule store a test may change."""
    return Path(shutil.copytree(farm_lake, tmp_path / "farm"))


@pytest.fixture
def deferred(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Callable[[], Any], str, str]]:
    """File name -> (callable, media type, coordinates) of each download built on click."""
    found: dict[str, tuple[Callable[[], Any], str, str]] = {}
    register = MediaFileManager.add_deferred

    def add(self: MediaFileManager, data: Any, mimetype: Any, coordinates: str, **kw: Any) -> str:
        found[kw["file_name"]] = (data, mimetype, coordinates)
        return register(self, data, mimetype, coordinates, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add)
    return found


def _metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.proto.delta) for m in at.metric}


def _caption(at: AppTest) -> str:
    return at.caption[0].value


def _frame(at: AppTest, column: str) -> Any:
    """The page's table that has `column`."""
    [found] = [d.value for d in at.dataframe if column in d.value.columns]
    return found


def test_preview_of_a_custom_period(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    assert [t.value for t in at.title] == ["Reports"]
    assert [s.value for s in at.subheader] == ["Performance summary"]
    assert _caption(at) == (
        "2025-06-01 to 2025-06-05 (UTC days) against 2025-05-27 to 2025-05-31; "
        "the lake holds data from 2025-06-01 to 2025-06-05."
    )
    metrics = _metrics(at)
    # 90 jobs and 5 failures; per workflow 30 jobs, on gpu-03 (x1.4) on 1 (wf-a) or 2 days:
    # (24*1000 + 6*1400 + 18*1200 + 12*1680 + 18*1500 + 12*2100) / 90 = 1404 ms a frame.
    assert metrics["Jobs"] == ("90", "")
    assert metrics["Failures"] == ("5", "")
    assert metrics["Failure rate"] == ("5.3%", "")
    assert metrics["Average time per frame (ms)"] == ("1,404.0", "")
    assert metrics["Peak VRAM (MB)"] == ("23,500", "")
    assert metrics["Alerts"] == ("2", "")
    assert metrics["Critical alerts"] == ("1", "")
    # The five days before hold nothing: no change is shown.
    [summary] = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert "- Failure rate: 5.3% of attempts (5 of 95); the previous 5 days have no data" in summary
    # Markdown marks in a sentence are escaped, so `vram_peak_pct` keeps its underscores.
    assert "vram\\_peak\\_pct" in summary
    # GPU hours per day and by workflow; the ranking needs data in both periods.
    assert len(at.get("vega_lite_chart")) == 2
    assert "No rows in this period." in [c.value for c in at.caption]
    assert downloads(at) == [
        "rep:export-csv", "rep:export-json", "rep:export-pdf",
        "workflows", "top_bottom_workflows", "daily", "alerts",
        "report_schedules",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("today", "preset", "span"),
    [
        (date(2025, 6, 5), "week", "2025-06-02 to 2025-06-05 (UTC days) against 2025-05-29 to 2025-06-01"),
        (date(2025, 6, 2), "week", "2025-06-02 to 2025-06-02 (UTC days) against 2025-06-01 to 2025-06-01"),
        (date(2025, 6, 5), "month", "2025-06-01 to 2025-06-05 (UTC days) against 2025-05-27 to 2025-05-31"),
        (date(2025, 6, 5), "quarter", "2025-01-01 to 2025-03-31 (UTC days) against 2024-10-03 to 2024-12-31"),
        (date(2025, 7, 1), "quarter", "2025-04-01 to 2025-06-30 (UTC days) against 2024-12-31 to 2025-03-31"),
        (date(2026, 1, 15), "quarter", "2025-10-01 to 2025-12-31 (UTC days) against 2025-07-01 to 2025-09-30"),
    ],
    ids=["week", "week-on-monday", "month", "quarter", "quarter-on-its-first-day", "quarter-of-last-year"],
)  # fmt: skip
def test_presets_set_the_period(
    today: date, preset: str, span: str, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sidebar, "today", lambda: today)
    at = open_page(lake, "reports", monkeypatch, period=preset)
    assert _caption(at).startswith(span + ";")
    # The default preset (this month) is left out of the URL.
    assert at.query_params.get("period") == (None if preset == "month" else preset)


def test_this_week_against_the_week_before(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sidebar, "today", lambda: date(2025, 6, 5))  # a Thursday
    at = open_page(lake, "reports", monkeypatch, period="month")
    assert _metrics(at)["Jobs"] == ("90", "")
    rerun(at.selectbox(key="url:period").set_value("week"))
    metrics = _metrics(at)
    # June 2-5 (4 days of 18 jobs, one failure each) against May 29 - June 1 (June 1 only).
    assert metrics["Jobs"] == ("72", "+300.0%")
    assert metrics["Failures"] == ("4", "+300.0%")
    # 4 of 76 attempts against 1 of 19: the same share, shown in points.
    assert metrics["Failure rate"] == ("5.3%", "+0.0 pts")
    # Both alerts were raised on June 1.
    assert metrics["Alerts"] == ("0", "-100.0%")
    rerun(at.selectbox(key="url:period").set_value("quarter"))
    assert _metrics(at)["Jobs"] == ("0", "")
    [summary] = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert summary == (
        "- No data in the period 1 Jan 2025 to 31 Mar 2025: no job completed or failed.\n"
        "- The lake holds data from 1 Jun 2025 to 5 Jun 2025."
    )


def test_report_type_and_project(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    assert at.selectbox(key="url:report_project").options == ["All projects", "p-1", "p-2"]
    rerun(at.selectbox(key="url:report_project").set_value("p-1"))
    # p-1 holds the even jobs: 45 of them, and the day's first job (n = 0) failures: 5.
    assert _metrics(at)["Jobs"] == ("45", "")
    assert [s.value for s in at.subheader] == ["Performance summary, project p-1"]
    rerun(at.selectbox(key="url:report").set_value("throughput"))
    assert [s.value for s in at.subheader] == ["Throughput, project p-1"]
    assert at.query_params["report"] == "throughput"


def test_downloads_are_built_only_when_clicked(
    lake: Path, monkeypatch: pytest.MonkeyPatch, deferred: dict
) -> None:
    built: list[str] = []
    export = exports.export

    def counted(report: Any, fmt: str) -> bytes:
        built.append(fmt)
        return export(report, fmt)

    monkeypatch.setattr(exports, "export", counted)
    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    labels = [b.proto.label for b in at.get("download_button")][:3]
    assert labels == ["Download CSV", "Download JSON", "Download PDF"]
    assert built == []
    name = "perflake-performance-2025-06-01_2025-06-05"
    assert {n: m for n, (_, m, _) in deferred.items() if n.startswith(name)} == {
        f"{name}.zip": "application/zip",  # four tables
        f"{name}.json": "application/json",
        f"{name}.pdf": "application/pdf",
    }
    pdf = deferred[f"{name}.pdf"][0]()
    assert pdf.startswith(b"%PDF")
    as_json = json.loads(deferred[f"{name}.json"][0]())
    assert (as_json["period"], as_json["headline"]["jobs"]) == (
        {"from": "2025-06-01", "to": "2025-06-05"},
        90,
    )
    assert built == ["pdf", "json"]


# --- schedules ---------------------------------------------------------------------------------


def _fill(at: AppTest, **values: object) -> None:
    widgets = {
        "kind": at.selectbox, "project": at.selectbox, "zone": at.selectbox,
        "cadence": at.radio, "day": at.text_input, "time": at.time_input,
        "recipients": at.text_area, "formats": at.multiselect,
    }  # fmt: skip
    for field, value in values.items():
        widgets[field](key=f"sch:{field}").set_value(value)


def _stored(lake: Path) -> list[tuple]:
    return [
        (s.kind, s.project, s.cadence, s.day, s.time, s.zone, s.recipients, s.formats, s.paused)
        for s in schedules.list_schedules(lake)
    ]


def test_create_edit_pause_delete_a_schedule(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    assert _frame(at, "timing").empty
    _fill(
        at, kind="delivery", project="p-1", cadence="monthly", day="last", time=time(7, 30),
        zone="Europe/Paris", recipients="ana@example.com;\nbo@example.org", formats=["pdf", "csv"],
    )  # fmt: skip
    rerun(at.button(key="sch:save").click())
    assert not at.error
    assert _stored(lake) == [
        ("delivery", "p-1", "monthly", "last", "07:30", "Europe/Paris",
         ("ana@example.com", "bo@example.org"), ("csv", "pdf"), False),
    ]  # fmt: skip
    [created] = schedules.list_schedules(lake)
    table = _frame(at, "timing")
    assert table.drop(columns="next_due").to_dict("records") == [
        {
            "id": created.id,
            "report": "Delivery summary",
            "project": "p-1",
            "timing": "monthly on the last day at 07:30 Europe/Paris",
            "recipients": "ana@example.com, bo@example.org",
            "formats": "csv, pdf",
            "state": "active",
        }
    ]
    assert at.selectbox(key="sch:editing").value == created.id
    # Edit: weekly on Tuesdays.
    _fill(at, cadence="weekly", day="tue")
    rerun(at.button(key="sch:save").click())
    assert _stored(lake)[0][2:5] == ("weekly", 1, "07:30")
    assert at.text_input(key="sch:day").value == "Tuesday"
    # Pause: no next due time; then resume.
    rerun(at.button(key="sch:pause").click())
    assert _stored(lake)[0][-1] is True
    assert list(_frame(at, "timing")["state"]) == ["paused"]
    assert _frame(at, "timing")["next_due"].isna().all()
    assert f"Schedule #{created.id} paused: nothing is sent until it is resumed." in [
        s.value for s in at.success
    ]
    assert at.button(key="sch:pause").label == "Resume"
    rerun(at.button(key="sch:pause").click())
    assert _stored(lake)[0][-1] is False
    # Delete: the form is back to a new schedule.
    rerun(at.button(key="sch:delete").click())
    assert _stored(lake) == []
    assert at.selectbox(key="sch:editing").value == 0
    assert f"Deleted schedule #{created.id}; its runs and files stay in the history." in [
        s.value for s in at.success
    ]


def test_a_stored_schedule_is_edited_through_the_picker(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = schedules.save_schedule(
        lake, Schedule(kind="cost", day=4, time="18:05", recipients=("ops@example.com",))
    )
    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    rerun(at.selectbox(key="sch:editing").set_value(stored.id))
    assert at.text_input(key="sch:day").value == "Friday"
    assert at.time_input(key="sch:time").value == time(18, 5)
    assert at.button(key="sch:save").label == "Save"
    _fill(at, recipients="ops@example.com, cfo@example.com", formats=["json"])
    rerun(at.button(key="sch:save").click())
    assert _stored(lake) == [
        ("cost", None, "weekly", 4, "18:05", "UTC", ("ops@example.com", "cfo@example.com"),
         ("json",), False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"recipients": ""}, "recipients: at least one e-mail address is required"),
        ({"recipients": "ana@example.com, bob@"}, "recipients: not an e-mail address: 'bob@'"),
        (
            {"cadence": "monthly", "day": "31"},
            "day: must be a day of the month 1-28 or 'last' (29-31 do not exist in every month), "
            "got '31'",
        ),
        ({"day": "someday"}, "day: must be a weekday (monday..sunday, or 0-6 with Monday=0)"),
        ({"formats": []}, "formats: choose at least one of csv, json, pdf"),
    ],
    ids=["no-recipients", "malformed-address", "day-31", "not-a-weekday", "no-format"],
)
def test_an_invalid_schedule_is_refused_with_the_reason(
    values: dict, reason: str, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    _fill(at, **({"recipients": "ana@example.com"} | values))
    rerun(at.button(key="sch:save").click())
    [error] = at.error
    assert error.value.startswith(reason), error.value
    # Nothing stored, and the form keeps what was typed.
    assert _stored(lake) == []
    for field, value in values.items():
        widget = {"cadence": at.radio, "day": at.text_input, "formats": at.multiselect}
        assert widget.get(field, at.text_area)(key=f"sch:{field}").value == value


# --- history -----------------------------------------------------------------------------------


def _run(lake: Path, schedule: Schedule, start: date, files: dict[str, bytes]) -> report_runs.Run:
    """A run claimed for the week from `start`, with `files` kept in the report history."""
    period = Period(start, start + timedelta(days=6))
    now = datetime.now(UTC)
    run = report_runs.claim_period(lake, schedule, period, OWNER, now, LEASE)
    assert run is not None
    folder = report_runs.run_dir(lake, run)
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    assert report_runs.record_files(lake, run.id, OWNER, list(files), "subject", "body")
    return run


def test_history_shows_a_failed_run_with_its_error_and_retries_it(
    lake: Path, monkeypatch: pytest.MonkeyPatch, deferred: dict
) -> None:
    schedule = schedules.save_schedule(lake, Schedule(recipients=("ana@example.com",)))
    now = datetime.now(UTC)
    sent = _run(lake, schedule, date(2025, 6, 2), {"week.json": b'{"ok": true}\n'})
    assert report_runs.start_send(lake, sent.id, OWNER, now, LEASE)
    report_runs.finish_run(lake, sent.id, OWNER, now, sent=True)
    failed = _run(lake, schedule, date(2025, 6, 9), {"week.pdf": b"%PDF-1.4 test"})
    error = "SMTP 451 4.3.0 mail server temporarily rejected message"
    retry_at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    report_runs.finish_run(lake, failed.id, OWNER, now, error, retry_at)

    at = open_page(lake, "reports", monkeypatch, **FARM_PERIOD)
    runs = _frame(at, "attempts")
    assert list(runs["id"]) == [failed.id, sent.id]  # newest period first
    assert list(runs["status"]) == ["failed", "sent"]
    assert list(runs["attempts"]) == [1, 1]
    assert list(runs["last_error"].fillna("")) == [error, ""]
    assert runs["sent_at"].isna().tolist() == [True, False]
    assert [e.value for e in at.error] == [
        f"Run #{failed.id}: Performance summary, 2025-06-09 to 2025-06-15 failed after 1 "
        f"attempt(s): {error}"
    ]
    assert "Next automatic attempt at 2030-01-01 12:00 UTC (while its schedule runs)." in [
        c.value for c in at.caption
    ]
    # Retry now: the next attempt is at the scheduler's next pass.
    rerun(at.button(key=f"hist:retry-{failed.id}").click())
    waiting = report_runs.get_run(lake, failed.id)
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at <= datetime.now(UTC)
    assert [s.value for s in at.success] == [
        f"Run #{failed.id} will be tried again at the scheduler's next pass."
    ]
    # The chosen run's files, read from the history only when clicked.
    assert downloads(at)[-1] == f"hist:file-{failed.id}-week.pdf"
    assert deferred["week.pdf"][0]() == b"%PDF-1.4 test"
    rerun(at.selectbox(key="hist:run").set_value(sent.id))
    assert downloads(at)[-1] == f"hist:file-{sent.id}-week.json"
    assert deferred["week.json"][0]() == b'{"ok": true}\n'


def test_an_empty_lake_shows_an_empty_report(
    empty_lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(empty_lake, "reports", monkeypatch, period="month")
    assert _metrics(at)["Jobs"] == ("0", "")
    assert _caption(at).endswith("; the lake holds no data.")
    [summary] = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert summary.endswith("The lake holds no data yet.")
    assert [i.value for i in at.info] == ["No scheduled report has run yet."]
