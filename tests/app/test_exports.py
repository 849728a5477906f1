"""Report exports: CSV compared byte for byte, JSON against its documented shape, PDF by the text
pypdf reads out of it and its page count, charts as PNGs without selections."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader

from app import exports, pdf_tables
from queries.reports import ChartSpec, Report, build_report

GENERATED = datetime(2025, 7, 1, 6, 0, 5, tzinfo=UTC)

# Two workflows; wf-b's failure rate is NaN (no attempt) and its p95 missing, a tiny GPU time.
WORKFLOWS = pl.DataFrame(
    {
        "workflow_id": ["wf-a", "wf-b"],
        "jobs": [1234, 0],
        "gpu_hours": [1520.25, 0.0000001],
        "failure_rate": [0.0625, float("nan")],
        "p95_time_per_frame_ms": [1830.5, None],
    }
)
DAILY = pl.DataFrame(
    {
        "date": [date(2025, 6, 1), date(2025, 6, 2)],
        "jobs": [600, 634],
        "gpu_hours": [700.0, 820.25],
    }
)
HEADLINE = {
    "jobs": 1234,
    "jobs_previous": 1000,
    "jobs_change_pct": 23.4,
    "failure_rate": 0.0612,
    "failure_rate_previous": 0.05,
    "failure_rate_change_pct": 22.4,
    "avg_time_per_frame_ms": 1523.25,
    "avg_time_per_frame_ms_previous": None,
    "avg_time_per_frame_ms_change_pct": None,
}
SUMMARY = [
    "GPU time: 1,520 h across 1,234 completed jobs, up 12% on the previous 30 days (1,357 h).",
    "Most GPU time went to wf-a: 1,520 h, 100.0% of the total.",
]


def _report(**changes: object) -> Report:
    report = Report(
        kind="performance",
        title="Performance summary",
        start=date(2025, 6, 1),
        end=date(2025, 6, 30),
        previous_start=date(2025, 5, 2),
        previous_end=date(2025, 5, 31),
        filters={"project": None},
        generated_at=GENERATED,
        data_range=(date(2025, 1, 1), date(2025, 6, 30)),
        headline=dict(HEADLINE),
        summary=list(SUMMARY),
        tables={"workflows": WORKFLOWS, "daily": DAILY},
        charts=[
            ChartSpec("GPU hours per day", "daily", "line", "date", "gpu_hours"),
            ChartSpec("GPU hours by workflow", "workflows", "bar", "workflow_id", "gpu_hours"),
        ],
    )
    return replace(report, **changes)  # type: ignore[arg-type]


def _pages(data: bytes) -> list[str]:
    """The text of each page, runs of white space (pypdf puts a cell on each line) as one space."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_of_one_table_is_that_table_plain() -> None:
    report = _report(tables={"workflows": WORKFLOWS})
    assert exports.export(report, "csv") == (
        b"workflow_id,jobs,gpu_hours,failure_rate,p95_time_per_frame_ms\n"
        b"wf-a,1234,1520.25,0.0625,1830.5\n"
        b"wf-b,0,0.0000001,,\n"
    )
    assert exports.file_name(report, "csv") == "perflake-performance-2025-06-01_2025-06-30.csv"
    assert exports.media_type(report, "csv") == "text/csv"


def test_csv_of_an_empty_period_is_the_header_row() -> None:
    report = _report(tables={"daily": DAILY.clear()})
    assert exports.export(report, "csv") == b"date,jobs,gpu_hours\n"


def test_csv_dates_instants_booleans_and_quoting() -> None:
    table = pl.DataFrame(
        {
            "day": [date(2025, 6, 1)],
            "last_at": [datetime(2025, 6, 2, 23, 30, 15, 123456, tzinfo=UTC)],
            "flagged": [True],
            "note": ['slow, "hot"'],
        }
    )
    report = _report(tables={"t": table})
    assert exports.export(report, "csv") == (
        b'day,last_at,flagged,note\n2025-06-01,2025-06-02T23:30:15Z,true,"slow, ""hot"""\n'
    )


def test_csv_of_several_tables_is_a_zip_of_one_file_each() -> None:
    report = _report(tables={"workflows": WORKFLOWS, "daily": DAILY.clear()})
    data = exports.export(report, "csv")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["workflows.csv", "daily.csv"]
        assert archive.read("daily.csv") == b"date,jobs,gpu_hours\n"
        assert archive.read("workflows.csv").startswith(b"workflow_id,jobs,gpu_hours,")
        assert archive.getinfo("daily.csv").date_time == (2025, 7, 1, 6, 0, 4)
    assert exports.export(report, "csv") == data  # the same report, the same bytes
    assert exports.file_name(report, "csv") == "perflake-performance-2025-06-01_2025-06-30.zip"
    assert exports.media_type(report, "csv") == "application/zip"


# --- JSON ---------------------------------------------------------------------------------------

DOCUMENTED_KEYS = [
    "report",
    "title",
    "period",
    "previous_period",
    "filters",
    "generated_at",
    "data_range",
    "headline",
    "summary",
    "columns",
    "tables",
]


def test_json_has_the_documented_shape() -> None:
    report = _report(filters={"project": "proj-aurora"})
    data = exports.export(report, "json")
    obj = json.loads(data)
    assert list(obj) == DOCUMENTED_KEYS
    assert obj["report"] == "performance"
    assert obj["title"] == "Performance summary"
    assert obj["period"] == {"from": "2025-06-01", "to": "2025-06-30"}
    assert obj["previous_period"] == {"from": "2025-05-02", "to": "2025-05-31"}
    assert obj["filters"] == {"project": "proj-aurora"}
    assert obj["generated_at"] == "2025-07-01T06:00:05Z"
    assert obj["data_range"] == {"from": "2025-01-01", "to": "2025-06-30"}
    assert obj["headline"] == HEADLINE
    assert obj["summary"] == SUMMARY
    assert obj["columns"]["daily"] == [
        {"name": "date", "type": "date"},
        {"name": "jobs", "type": "integer"},
        {"name": "gpu_hours", "type": "number"},
    ]
    assert [c["type"] for c in obj["columns"]["workflows"]] == [
        "string",
        "integer",
        "number",
        "number",
        "number",
    ]
    assert obj["tables"]["daily"] == [
        {"date": "2025-06-01", "jobs": 600, "gpu_hours": 700.0},
        {"date": "2025-06-02", "jobs": 634, "gpu_hours": 820.25},
    ]
    # NaN and null both read null: JSON has no NaN.
    assert obj["tables"]["workflows"][1] == {
        "workflow_id": "wf-b",
        "jobs": 0,
        "gpu_hours": 0.0000001,
        "failure_rate": None,
        "p95_time_per_frame_ms": None,
    }
    assert obj == exports.report_json(report)
    assert exports.file_name(report, "json") == (
        "perflake-performance-proj-aurora-2025-06-01_2025-06-30.json"
    )
    assert exports.media_type(report, "json") == "application/json"


def test_json_of_an_empty_period_keeps_the_columns() -> None:
    report = _report(tables={"daily": DAILY.clear()}, data_range=(None, None))
    obj = json.loads(exports.export(report, "json"))
    assert obj["tables"] == {"daily": []}
    assert [c["name"] for c in obj["columns"]["daily"]] == ["date", "jobs", "gpu_hours"]
    assert obj["data_range"] == {"from": None, "to": None}


# --- names and formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "expected"),
    [
        (None, "perflake-performance-2025-06-01_2025-06-30.pdf"),
        ("proj-aurora", "perflake-performance-proj-aurora-2025-06-01_2025-06-30.pdf"),
        ("a/b c:d", "perflake-performance-a_b_c_d-2025-06-01_2025-06-30.pdf"),
        ("../..", "perflake-performance-_-2025-06-01_2025-06-30.pdf"),
    ],
)
def test_file_name_is_safe(project: str | None, expected: str) -> None:
    report = _report(filters={"project": project})
    assert exports.file_name(report, "pdf") == expected
    assert exports.media_type(report, "pdf") == "application/pdf"


@pytest.mark.parametrize("call", [exports.export, exports.file_name, exports.media_type])
def test_an_unknown_format_is_refused_naming_it(call: object) -> None:
    with pytest.raises(ValueError, match=r"fmt: 'xlsx' is not one of csv, json, pdf"):
        call(_report(), "xlsx")  # type: ignore[operator]


# --- charts ---------------------------------------------------------------------------------------


def _has_params(spec: object) -> bool:
    if isinstance(spec, dict):
        return "params" in spec or any(_has_params(v) for v in spec.values())
    if isinstance(spec, list):
        return any(_has_params(v) for v in spec)
    return False


RANKED = pl.DataFrame(
    {
        "rank_group": ["top", "bottom"],
        "workflow_id": ["wf-a", "wf-b"],
        "change_pct": [-12.5, 8.0],
    }
)


@pytest.mark.parametrize(
    "chart",
    [
        ChartSpec("GPU hours per day", "daily", "line", "date", "gpu_hours"),
        ChartSpec("Jobs per day", "daily", "bar", "date", "jobs"),
        ChartSpec("GPU hours by workflow", "workflows", "bar", "workflow_id", "gpu_hours"),
        ChartSpec("Change", "ranked", "bar", "workflow_id", "change_pct", color="rank_group"),
        ChartSpec("Change", "ranked", "stacked_bar", "workflow_id", "change_pct", "rank_group"),
        ChartSpec(
            "Per period", "periods", "stacked_bar", "period_start", "characters", "project_id"
        ),
    ],
)
def test_charts_are_static_pngs_of_the_app_builders(chart: ChartSpec) -> None:
    tables = {"workflows": WORKFLOWS, "daily": DAILY, "ranked": RANKED, "periods": PERIODS}
    report = _report(tables=tables)
    assert not _has_params(exports.report_chart(report, chart).to_dict())
    png = exports.chart_png(report, chart)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(png[16:20], "big")
    # The plot is CHART_WIDTH pixels plus its axis, legend and padding, twice over.
    assert 2 * exports.CHART_WIDTH < width < 2 * (exports.CHART_WIDTH + 260)


PERIODS = pl.DataFrame(
    {
        "period_start": [date(2025, 5, 2), date(2025, 5, 2), date(2025, 6, 1)],
        "project_id": ["p-1", "p-2", "p-1"],
        "characters": [3, 4, 5],
    }
)


@pytest.mark.parametrize(
    ("days", "x_type"),
    [
        ([date(2025, 5, 2), date(2025, 6, 1)], "ordinal"),
        ([date(2025, 6, 1), date(2025, 6, 2)], "temporal"),
    ],
)
def test_bars_over_periods_longer_than_a_day_get_one_bar_each(
    days: list[date], x_type: str
) -> None:
    table = PERIODS.with_columns(pl.Series("period_start", [days[0], days[0], days[1]]))
    chart = ChartSpec(
        "Per period", "periods", "stacked_bar", "period_start", "characters", "project_id"
    )
    spec = exports.report_chart(_report(tables={"periods": table}), chart).to_dict()
    assert spec["encoding"]["x"]["type"] == x_type
    assert spec["encoding"]["color"]["field"] == "project_id"


def test_an_unknown_chart_kind_is_refused() -> None:
    chart = ChartSpec("Pie", "daily", "pie", "date", "jobs")
    with pytest.raises(ValueError, match=r"chart\.kind: 'pie'"):
        exports.chart_png(_report(), chart)


# --- PDF ------------------------------------------------------------------------------------------


def test_pdf_first_page_tells_what_the_report_is() -> None:
    report = _report(filters={"project": "proj-aurora"})
    pages = _pages(exports.export(report, "pdf"))
    first = pages[0]
    for text in (
        "Performance summary",
        "1 Jun 2025 to 30 Jun 2025 (30 days, UTC)",
        "2 May 2025 to 31 May 2025 (the previous 30 days)",
        "Project: proj-aurora",
        "Executive summary",
        "up 12% on the previous 30 days (1,357 h).",
        "Key figures",
        # Figure, this period, previous period, change.
        "Jobs 1,234 1,000 +23.4%",
        # A share reads as a percentage and moves in points.
        "Failure rate 6.1% 5.0% +1.1 pts",
        "Average time per frame (ms) 1,523.2 n/a n/a",
        "Data in the lake: 2025-01-01 to 2025-06-30. Generated 2025-07-01 06:00 UTC.",
    ):
        assert text in first, text


def test_pdf_sections_hold_charts_and_formatted_tables() -> None:
    pages = _pages(exports.export(_report(), "pdf"))
    # The cover; Workflows (chart, table); Daily, whose line chart does not fit below it.
    assert len(pages) == 3
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of 3" in text
        assert "Generated 2025-07-01 06:00 UTC" in text
    assert "perflake · Performance summary · 1 Jun 2025 to 30 Jun 2025" in pages[1]
    assert "Workflows" in pages[1] and "GPU hours by workflow" in pages[1]
    # Separators, decimals by the column's largest value (1 from 100 on), shares as %, NaN and
    # null as n/a; halves round to even.
    assert "wf-a 1,234 1,520.2 6.2% 1,830.5" in pages[1]
    assert "wf-b 0 0.0 n/a n/a" in pages[1]
    assert "Daily" in pages[2] and "GPU hours per day" in pages[2]
    assert "2025-06-02 634 820.2" in pages[2]


def test_pdf_of_an_empty_period_says_so() -> None:
    report = _report(
        tables={"workflows": WORKFLOWS.clear(), "daily": DAILY.clear()},
        headline={},
        summary=["No data in the period 1 Jun 2025 to 30 Jun 2025: no job completed or failed."],
    )
    pages = _pages(exports.export(report, "pdf"))
    assert len(pages) == 2
    assert "No data in the period" in pages[0]
    assert "Key figures" not in pages[0]
    assert pages[1].count("No rows in this period.") == 2


def test_pdf_long_table_repeats_its_header_on_every_page() -> None:
    n = range(1, 121)
    rows = pl.DataFrame(
        {"day_number": n, "jobs": [1000 * i for i in n]}
        | {f"metric_{i}": [0.5] * 120 for i in n[:10]}
    )
    pages = _pages(exports.export(_report(tables={"long": rows}, charts=[]), "pdf"))
    # The cover, then 120 rows of 15.6 pt (8 pt text, 9.6 pt leading, 6 pt padding) below a header
    # as high, in a 453 pt frame: 26 rows under the section heading (30 pt), then 28 a page.
    assert len(pages) == 6
    for text in pages[1:]:
        assert "Day number Jobs Metric 1 Metric 2" in text
    assert "26 26,000" in pages[1] and "27 27,000" in pages[2]
    assert "120 120,000" in pages[-1]


def test_pdf_long_narrow_table_flows_in_columns() -> None:
    rows = pl.DataFrame({"day_number": range(1, 61), "jobs": [1000 * n for n in range(1, 61)]})
    pages = _pages(exports.export(_report(tables={"long": rows}, charts=[]), "pdf"))
    # Two columns are ~100 pt wide: three side by side, 20 rows each, fit on one page.
    assert len(pages) == 2
    assert pages[1].count("Day number Jobs") == 3
    assert "20 20,000 Day number Jobs 21 21,000" in pages[1]
    assert "60 60,000" in pages[1]


def test_pdf_cuts_a_table_past_max_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_tables, "MAX_ROWS", 3)
    rows = pl.DataFrame({"n": [1, 2, 3, 4, 5]})
    pages = _pages(exports.export(_report(tables={"t": rows}, charts=[]), "pdf"))
    assert "First 3 of 5 rows; the CSV and JSON exports have all." in pages[1]
    assert "\n4\n" not in pages[1]


def test_pdf_wide_table_is_split_into_column_groups() -> None:
    wide = pl.DataFrame(
        {"workflow_id": ["wf-liveportrait-hq"]}
        | {f"metric_{i:02d}_time_per_frame_ms": [123456.789] for i in range(24)}
    )
    text = " ".join(_pages(exports.export(_report(tables={"wide": wide}, charts=[]), "pdf")))
    # At the smallest size (6.5 pt) a metric column is 46 pt wide (its header wraps, its values
    # take 29 pt), the first 56 pt: 15 metrics fit beside it in a 757 pt frame, then 9.
    assert "Part 1 of 2: Metric 00 time per frame (ms) to Metric 14 time per frame (ms)" in text
    assert "Part 2 of 2: Metric 15 time per frame (ms) to Metric 23 time per frame (ms)" in text
    # The first column repeats in every part.
    assert text.count("wf-liveportrait-hq") == 2
    assert text.count("123,456.8") == 24


# --- a real report ---------------------------------------------------------------------------------


def test_every_format_of_a_built_report(farm_lake: Path) -> None:
    report = build_report(
        farm_lake, "performance", date(2025, 6, 1), date(2025, 6, 5), now=GENERATED
    )
    assert zipfile.is_zipfile(io.BytesIO(exports.export(report, "csv")))
    assert json.loads(exports.export(report, "json"))["report"] == "performance"
    pages = _pages(exports.export(report, "pdf"))
    assert "Performance summary" in pages[0]
    assert "1 Jun 2025 to 5 Jun 2025 (5 days, UTC)" in pages[0]
    assert f"Page 1 of {len(pages)}" in pages[0]
