"""The "Ingest health" page through streamlit's AppTest, on a tiny lake and on an empty one."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import parse_settings
from tests.app.apptest import open_page


def _run(lake: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_page(lake, "health", monkeypatch)


def test_page_on_the_tiny_lake(tiny_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(tiny_lake, monkeypatch)
    assert [t.value for t in at.title] == ["Ingest health"]
    assert str(tiny_lake) in at.caption[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Jobs completed": "1",
        "Jobs failed": "1",
        "Job stages": "1",
        "Worker samples": "1",
        "Reviews": "1",
        "Deliveries": "1",
        "Quarantined": "2",
        "Alerts raised": "0",
        "Ingest lag": "0 msgs",
        "Ingest rate": "12.5 events/s",
        "Status reported": metrics["Status reported"],
        "Last row ingested": metrics["Last row ingested"],
    }
    assert metrics["Status reported"].endswith(" ago")
    assert metrics["Last row ingested"].endswith(" ago")
    assert len(at.get("vega_lite_chart")) == 2  # rows per day, quarantine reasons
    # Totals, latest events, reasons and quarantined messages, each with its CSV.
    assert len(at.dataframe) == 4
    buttons = at.get("download_button")
    assert [b.key for b in buttons] == [
        "csv-rows_per_day",
        "csv-table_totals",
        "csv-latest_events",
        "csv-quarantine_reasons",
        "csv-quarantine",
    ]
    assert {b.proto.label for b in buttons} == {"Download CSV"}
    assert not at.info and not at.error


def test_page_tables_show_the_lake(tiny_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(tiny_lake, monkeypatch)
    totals, events, reasons, quarantined = (d.value for d in at.dataframe)
    assert list(totals["table"]) == [
        "jobs",
        "job_failures",
        "job_stages",
        "worker_samples",
        "reviews",
        "deliveries",
        "quarantine",
        "alerts",
    ]
    assert list(events["event_id"]) == ["d1", "r1", "gpu-01:0:1", "f1", "j1"]
    assert list(reasons["rule"]) == [
        "event_type: must be one of job.completed, job.failed, worker.sample, review.completed, "
        "character.delivered",
        "value: not UTF-8 JSON",
    ]
    assert list(quarantined["preview"]) == [
        '{"schema_version":1,"event_type":"job.exploded"}',
        "not json",
    ]


def test_page_on_an_empty_lake_says_why(empty_lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(empty_lake, monkeypatch)
    [info] = at.info
    assert f"The lake at `{empty_lake}` has no data yet" in info.value
    assert "make run" in info.value and "perflake ingest" in info.value
    assert not at.get("vega_lite_chart") and not at.dataframe
    assert {m.label: m.value for m in at.metric} == {
        "Ingest lag": "none reported",
        "Ingest rate": "none reported",
        "Status reported": "never",
        "Last row ingested": "never",
    }


def test_page_on_a_missing_lake_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    at = _run(missing, monkeypatch)
    [info] = at.info
    assert f"The lake at `{missing}` does not exist yet" in info.value


@pytest.mark.parametrize(
    ("argv", "environ", "lake"),
    [
        (["--lake", "/data/a"], {"PERFLAKE_LAKE": "/data/b"}, "/data/a"),
        (["--lake=/data/a"], {}, "/data/a"),
        ([], {"PERFLAKE_LAKE": "/data/b"}, "/data/b"),
        # Someone else's arguments (a test runner's) are not ours.
        (["tests/app", "-q", "--timeout=30"], {}, str(Path("demo-lake").resolve())),
    ],
)
def test_settings_from_argv_then_env_then_default(argv: list, environ: dict, lake: str) -> None:
    assert parse_settings(argv, environ).lake == Path(lake)
