"""A built report as files: CSV (one file per table, zipped when there are several), one JSON
object, and a PDF (drawn by `app.pdf`), with the file names and media types downloads and e-mails
need. Takes a `queries.reports.Report`, never runs a query, and knows no page.

CSV: a header row of the column names, dates as `YYYY-MM-DD`, instants as `YYYY-MM-DDTHH:MM:SSZ`,
numbers plain (no separators, no exponent), booleans `true`/`false`, missing values empty. A
period without data gives each table's header row alone.

JSON: one object per report, keys in this order, names stable:

    {
      "report": "performance",                  # the report type id
      "title": "Performance summary",
      "period": {"from": "2025-06-01", "to": "2025-06-30"},           # UTC days, both included
      "previous_period": {"from": "2025-05-02", "to": "2025-05-31"},  # compared against
      "filters": {"project": "proj-aurora"},    # null where not filtered
      "generated_at": "2025-07-01T06:00:00Z",
      "data_range": {"from": "2025-01-01", "to": "2025-06-30"},       # days with data in the lake
      "headline": {"jobs": 1234, "jobs_previous": 1100, "jobs_change_pct": 12.2, ...},
      "summary": ["Sentence one.", "..."],     # the executive summary
      "columns": {"<table>": [{"name": "workflow_id", "type": "string"}, ...]},
      "tables": {"<table>": [{"workflow_id": "wf-a", "jobs": 12, ...}, ...]}
    }

Column types are `string`, `integer`, `number`, `date`, `datetime` or `boolean`; `columns` keeps a
table's shape when the period has no rows. Dates and instants are written as in the CSV, a number
that is not finite as null.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import altair as alt
import polars as pl
import vl_convert as vlc

from app import charts, pdf
from app.pdf_tables import label
from queries.reports import ChartSpec, Report

FORMATS = ("csv", "json", "pdf")
INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: Chart width in CSS pixels: the PDF draws it across a landscape A4 page at about 0.75 pt a pixel.
CHART_WIDTH = 860
#: Twice the pixels of the spec, so the PNG stays sharp when printed.
CHART_SCALE = 2

_MEDIA_TYPES = {
    "csv": "text/csv",
    "zip": "application/zip",
    "json": "application/json",
    "pdf": "application/pdf",
}


def export(report: Report, fmt: str) -> bytes:
    """The report as the bytes of one file in `fmt` (one of FORMATS)."""
    _check(fmt)
    if fmt == "json":
        text = json.dumps(report_json(report), indent=2, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode()
    if fmt == "pdf":
        return pdf.report_pdf(report, _chart_pngs(report))
    if len(report.tables) == 1:
        return table_csv(next(iter(report.tables.values())))
    return _zipped(report)


def file_name(report: Report, fmt: str) -> str:
    """`perflake-<type>[-<project>]-<from>_<to>.<ext>`; `.zip` for a CSV export of several tables."""
    parts = ["perflake", report.kind, *(_slug(v) for v in report.filters.values() if v)]
    return f"{'-'.join(parts)}-{report.start}_{report.end}.{_extension(report, fmt)}"


def media_type(report: Report, fmt: str) -> str:
    """The MIME type of `export(report, fmt)`."""
    return _MEDIA_TYPES[_extension(report, fmt)]


def report_json(report: Report) -> dict[str, Any]:
    """The documented JSON object of the report (see the module docstring)."""
    return {
        "report": report.kind,
        "title": report.title,
        "period": _span(report.start, report.end),
        "previous_period": _span(report.previous_start, report.previous_end),
        "filters": dict(report.filters),
        "generated_at": _instant(report.generated_at),
        "data_range": _span(*report.data_range),
        "headline": {k: _value(v) for k, v in report.headline.items()},
        "summary": list(report.summary),
        "columns": {
            name: [{"name": c, "type": _json_type(t)} for c, t in frame.schema.items()]
            for name, frame in report.tables.items()
        },
        "tables": {
            name: [{k: _value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]
            for name, frame in report.tables.items()
        },
    }


def table_csv(frame: pl.DataFrame) -> bytes:
    """One table as CSV bytes (UTF-8): header row, ISO dates, plain numbers, nulls empty."""
    finite = frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))
    text = finite.write_csv(float_scientific=False, datetime_format=INSTANT_FORMAT)
    return text.encode()


def report_chart(report: Report, chart: ChartSpec) -> alt.Chart:
    """The app's Altair chart for `chart`, drawn from its table in `report`, without selections.

    Over days: a line, or one bar per day or per period (stacked by `color`). Over a category:
    horizontal bars largest first (stacked by `color`), whatever the kind.
    """
    frame = report.tables[chart.table]
    title = label(chart.y)
    over_days = frame.schema[chart.x] in (pl.Date(),) or isinstance(
        frame.schema[chart.x], pl.Datetime
    )
    if chart.kind == "line" and over_days:
        built = charts.lines(frame, chart.x, chart.y, title, chart.color)
    elif over_days and _days_apart(frame[chart.x]) > 1:
        built = charts.period_bars(frame, chart.x, chart.y, title, chart.color)
    elif over_days:
        built = charts.day_bars(frame, chart.x, chart.y, title, chart.color)
    elif chart.color:
        built = charts.stacked_bars(frame, chart.x, chart.y, chart.color, title)
    else:
        built = charts.bars(frame, chart.x, chart.y, title)
    return built.properties(width=CHART_WIDTH)


def _days_apart(days: pl.Series) -> int:
    """The fewest days between two of `days` (1 when there are fewer than two)."""
    distinct = days.cast(pl.Date).unique().drop_nulls().sort()
    gaps = distinct.diff().drop_nulls().dt.total_days().to_list()
    return min(gaps, default=1)


def chart_png(report: Report, chart: ChartSpec) -> bytes:
    """`chart` as a PNG drawn by vl-convert (no browser) from the same spec the app shows."""
    return _png(_spec(report, chart))


def _spec(report: Report, chart: ChartSpec) -> dict[str, Any]:
    if chart.kind not in ("bar", "line", "stacked_bar"):
        raise ValueError(f"chart.kind: {chart.kind!r} is not one of bar, line, stacked_bar")
    if chart.table not in report.tables:
        raise ValueError(f"chart.table: {chart.table!r} is not a table of the report")
    # The builders are checked against the Vega-Lite schema in the tests; 0.1 s a chart spared here.
    return report_chart(report, chart).to_dict(validate=False)


def _png(spec: dict[str, Any]) -> bytes:
    # Opaque white: the PDF then embeds the pixels without an alpha mask.
    return bytes(vlc.vegalite_to_png(spec, scale=CHART_SCALE, config={"background": "white"}))


def _chart_pngs(report: Report) -> list[tuple[ChartSpec, bytes]]:
    """The PNG of each chart whose table has rows (an empty table says so instead of a plot)."""
    drawn = [c for c in report.charts if report.tables.get(c.table, pl.DataFrame()).height]
    specs = [_spec(report, c) for c in drawn]
    # vl-convert rasterises outside the GIL: charts drawn side by side take about half the time.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(zip(drawn, pool.map(_png, specs), strict=True))


def _zipped(report: Report) -> bytes:
    buffer = io.BytesIO()
    # Entries dated by the report, so the same report gives the same bytes.
    stamp = report.generated_at.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, frame in report.tables.items():
            entry = zipfile.ZipInfo(f"{name}.csv", date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, table_csv(frame))
    return buffer.getvalue()


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt: {fmt!r} is not one of {', '.join(FORMATS)}")


def _extension(report: Report, fmt: str) -> str:
    _check(fmt)
    return "zip" if fmt == "csv" and len(report.tables) != 1 else fmt


def _slug(value: str) -> str:
    """A filter value safe in a file name on every system."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("._-") or "_"


def _span(start: date | None, end: date | None) -> dict[str, str | None]:
    return {"from": _value(start), "to": _value(end)}


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime(INSTANT_FORMAT)


def _value(value: Any) -> Any:
    """A cell or figure as JSON: dates ISO, instants in UTC with Z, non-finite numbers null."""
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_type(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean():
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Date():
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "string"
