"""The PDF of a report, for a reader who never opened the app: a first page with the report's name,
period, filters, executive summary and key figures, then one section per table with its charts;
every page stamped with the data range, the generation time and "Page N of M".

Gets a built report and its charts as PNGs (app.exports draws them); runs no query.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

import polars as pl
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import BaseDocTemplate

from app.formats import NONE
from queries.reports import ChartSpec, Report
from queries.reports.wording import period as _period

# Binary streams: without reportlab's C accelerator its ASCII85 encoder takes ~0.1 s per chart.
rl_config.useA85 = 0

PAGE = landscape(A4)
MARGIN = 15 * mm
#: Room kept at the top and bottom of each page for the running header and the footer.
BAND = 8 * mm
#: What a page's frame holds: reportlab pads it by 6 pt on every side.
WIDTH = PAGE[0] - 2 * MARGIN - 12
HEIGHT = PAGE[1] - 2 * MARGIN - 2 * BAND - 12
FONT, BOLD = "Helvetica", "Helvetica-Bold"
#: Table font sizes tried in turn before a wide table is split into column groups.
SIZES = (8.0, 7.0, 6.5)
PAD = 3.0
#: Text cells wider than this wrap.
MAX_TEXT = 210.0
#: A table longer than this is cut in the PDF (the CSV and JSON exports carry every row).
MAX_ROWS = 300
INK, MUTED, RULE, SHADE = (
    colors.HexColor("#1f2933"),
    colors.HexColor("#616e7c"),
    colors.HexColor("#9aa5b1"),
    colors.HexColor("#eef1f4"),
)

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=10, leading=13.5, textColor=INK)
_STYLES = {
    "kicker": ParagraphStyle("kicker", _BODY, fontSize=9, textColor=MUTED, spaceAfter=2),
    "title": ParagraphStyle("title", _BODY, fontName=BOLD, fontSize=22, leading=27, spaceAfter=8),
    # Headings keep with what follows them: no heading alone at the foot of a page.
    "h2": ParagraphStyle(
        "h2",
        _BODY,
        fontName=BOLD,
        fontSize=14,
        leading=18,
        spaceBefore=8,
        spaceAfter=4,
        keepWithNext=1,
    ),
    "h3": ParagraphStyle(
        "h3", _BODY, fontName=BOLD, fontSize=10.5, spaceBefore=6, spaceAfter=3, keepWithNext=1
    ),
    "bullet": ParagraphStyle("bullet", _BODY, fontSize=10.5, leading=14.5, leftIndent=12),
    "note": ParagraphStyle("note", _BODY, fontSize=8.5, leading=11, textColor=MUTED),
    "part": ParagraphStyle(
        "part", _BODY, fontSize=8.5, leading=11, textColor=MUTED, spaceAfter=2, keepWithNext=1
    ),
}
_WORDS = {
    "gpu": "GPU",
    "vram": "VRAM",
    "cpu": "CPU",
    "qa": "QA",
    "usd": "USD",
    "ssim": "SSIM",
    "avg": "average",
    "p50": "median",
    "p90": "90th percentile",
    "p95": "95th percentile",
    "p99": "99th percentile",
}
_UNITS = {"ms": "ms", "mb": "MB", "gb": "GB", "usd": "USD", "pct": "%", "s": "s", "h": "h"}


def report_pdf(report: Report, charts: Sequence[tuple[ChartSpec, bytes]]) -> bytes:
    """The report as PDF bytes; `charts` are (spec, PNG) pairs, drawn in their table's section."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + BAND,
        bottomMargin=MARGIN + BAND,
        title=f"{report.title}, {_period(report.start, report.end)}",
        author="perflake",
        subject=_filters(report),
        creator="perflake",
    )
    story = _first_page(report) + _sections(report, charts)
    doc.build(
        story,
        onFirstPage=lambda c, d: _stamp(c, d, report, first=True),
        onLaterPages=lambda c, d: _stamp(c, d, report, first=False),
        canvasmaker=_NumberedCanvas,
    )
    return buffer.getvalue()


def label(name: str) -> str:
    """A column or figure name as a heading: `avg_time_per_frame_ms` -> `Average time per frame
    (ms)`, `worker_id` -> `Worker`."""
    words = name.split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    if len(words) > 1 and words[-1] == "id":
        words = words[:-1]
    text = " ".join(_WORDS.get(w, w) for w in words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def figure(key: str, value: Any) -> str:
    """A headline figure as read on the first page: separators, shares as percentages."""
    if value is None or isinstance(value, str):
        return NONE if value is None else value
    if isinstance(value, float) and not math.isfinite(value):
        return NONE
    if _is_share(key):
        return f"{value * 100:,.1f}%"
    if key.endswith("_pct"):
        return f"{value:,.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{_decimals(abs(value))}f}"


def change(key: str, headline: Mapping[str, Any]) -> str:
    """How `key` moved against the previous period: relative in %, a share's in points."""
    now, before = headline.get(key), headline.get(f"{key}_previous")
    if _is_share(key):
        if not isinstance(now, int | float) or not isinstance(before, int | float):
            return NONE
        return f"{(now - before) * 100:+,.1f} pts"
    pct = headline.get(f"{key}_change_pct")
    if pct is None:
        return "no change" if now is not None and now == before else NONE
    return f"{pct:+,.1f}%"


def _is_share(name: str) -> bool:
    """Shares (0..1) end in `_rate` or `_share`, by the reports' naming rule."""
    return name.endswith(("_rate", "_share")) or name in ("rate", "share")


class _NumberedCanvas(Canvas):
    """Keeps every page until the end, so each can say "Page N of M"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont(FONT, 8)
            self.setFillColor(MUTED)
            self.drawRightString(PAGE[0] - MARGIN, MARGIN, f"Page {number} of {total}")
            super().showPage()
        super().save()


def _stamp(canvas: Canvas, _doc: BaseDocTemplate, report: Report, first: bool) -> None:
    """Footer on every page (data range, generation time), running header after the first."""
    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.setFillColor(MUTED)
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.4)
    canvas.line(MARGIN, MARGIN + BAND - 3 * mm, PAGE[0] - MARGIN, MARGIN + BAND - 3 * mm)
    canvas.drawString(
        MARGIN, MARGIN, f"Data in the lake: {_data_range(report)}. Generated {_generated(report)}."
    )
    if not first:
        top = PAGE[1] - MARGIN - 3 * mm
        canvas.drawString(
            MARGIN,
            top,
            f"perflake · {report.title} · {_period(report.start, report.end)} · {_filters(report)}",
        )
        canvas.line(MARGIN, top - 2 * mm, PAGE[0] - MARGIN, top - 2 * mm)
    canvas.restoreState()


def _first_page(report: Report) -> list[Flowable]:
    """Name, period, filters; the summary with the key figures beside it when both fit."""
    days = (report.end - report.start).days + 1
    facts = [
        ("Period", f"{_period(report.start, report.end)} ({_days(days)}, UTC)"),
        (
            "Compared with",
            f"{_period(report.previous_start, report.previous_end)} (the previous {_days(days)})",
        ),
        ("Filters", _filters(report)),
        ("Data in the lake", _data_range(report)),
        ("Generated", _generated(report)),
    ]
    head: list[Flowable] = [
        Paragraph("perflake report", _STYLES["kicker"]),
        Paragraph(_escape(report.title), _STYLES["title"]),
        _facts(facts),
    ]
    summary: list[Flowable] = [
        Paragraph("Executive summary", _STYLES["h2"]),
        *[Paragraph(_escape(s), _STYLES["bullet"], bulletText="•") for s in report.summary],
    ]
    figures = _key_figures(report)
    note = Paragraph(
        "Days are UTC days. Changes compare this period with the previous one of the same "
        "length; a share (a rate) changes in percentage points. The tables that follow are in "
        "the CSV and JSON exports of this report too, every row included.",
        _STYLES["note"],
    )
    if figures is None:
        return [*head, *summary, Spacer(1, 10), note]
    right = [Paragraph("Key figures", _STYLES["h2"]), figures]
    left_width = WIDTH - figures.wrap(WIDTH, HEIGHT)[0] - 12 * mm
    beside = Table([[summary, right]], colWidths=[left_width, WIDTH - left_width])
    beside.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), *_padding(0)]))
    # The head's paragraphs and the note, with their spacing, take about this much.
    used = sum(f.wrap(WIDTH, HEIGHT)[1] for f in [*head, note]) + 50
    if beside.wrap(WIDTH, HEIGHT)[1] <= HEIGHT - used:
        return [*head, beside, Spacer(1, 10), note]
    return [*head, *summary, *right, Spacer(1, 10), note]


def _facts(rows: list[tuple[str, str]]) -> Table:
    data = [[Paragraph(f"<b>{k}</b>", _BODY), Paragraph(_escape(v), _BODY)] for k, v in rows]
    table = Table(data, colWidths=[35 * mm, WIDTH - 35 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), *_padding(1)]))
    return table


def _key_figures(report: Report) -> Table | None:
    """This period, the previous one and the change, for each headline figure."""
    suffixes = ("_previous", "_change_pct")
    keys = [k for k in report.headline if not k.endswith(suffixes)]
    if not keys:
        return None
    rows = [["Figure", "This period", "Previous period", "Change"]]
    for key in keys:
        rows.append(
            [
                label(key),
                figure(key, report.headline[key]),
                figure(key, report.headline.get(f"{key}_previous")),
                change(key, report.headline),
            ]
        )
    widths = [_text_width(column, BOLD, 9.5) for column in zip(*rows, strict=True)]
    table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
    table.setStyle(_grid_style(9.5, numeric=[1, 2, 3]))
    return table


def _sections(report: Report, charts: Sequence[tuple[ChartSpec, bytes]]) -> list[Flowable]:
    """One section per table: its heading, its charts, then the table itself."""
    out: list[Flowable] = [PageBreak()]
    for name, frame in report.tables.items():
        out += [CondPageBreak(40 * mm), Paragraph(_escape(label(name)), _STYLES["h2"])]
        for spec, png in charts:
            if spec.table == name:
                out += [Paragraph(_escape(spec.title), _STYLES["h3"]), _image(png), Spacer(1, 6)]
        out += _table(frame)
    return out


def _image(png: bytes) -> Image:
    """A PNG across the page's width, smaller where it would be taller than most of a page."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    scale = min(WIDTH / width, 0.7 * HEIGHT / height)
    # The charts are drawn opaque (app.exports): no alpha mask to split off.
    return Image(
        io.BytesIO(png), width=width * scale, height=height * scale, hAlign="LEFT", mask=None
    )


def _table(frame: pl.DataFrame) -> list[Flowable]:
    """The rows as one table, or several column groups (first column repeated) when too wide."""
    if frame.height == 0:
        return [Paragraph("No rows in this period.", _STYLES["note"])]
    shown = frame.head(MAX_ROWS)
    cells = [_cells(shown[c]) for c in shown.columns]
    numeric = [shown[c].dtype.is_numeric() for c in shown.columns]
    headers = [label(c) for c in shown.columns]
    for size in SIZES:
        widths = [_column_width(h, col, size) for h, col in zip(headers, cells, strict=True)]
        if sum(widths) <= WIDTH:
            widths = _widened(headers, widths, size)
            break
    groups = _column_groups(widths)
    out: list[Flowable] = []
    for number, group in enumerate(groups, start=1):
        if len(groups) > 1:
            shown_cols = f"{label(shown.columns[group[1]])} to {label(shown.columns[group[-1]])}"
            text = f"Part {number} of {len(groups)}: {shown_cols}"
            out.append(Paragraph(_escape(text), _STYLES["part"]))
        out += [
            _grid(
                [headers[i] for i in group],
                [cells[i] for i in group],
                [numeric[i] for i in group],
                [widths[i] for i in group],
                size,
            ),
            Spacer(1, 6),
        ]
    if frame.height > MAX_ROWS:
        note = f"First {MAX_ROWS:,} of {frame.height:,} rows; the CSV and JSON exports have all."
        out.append(Paragraph(note, _STYLES["note"]))
    return out


def _grid(
    headers: list[str],
    columns: list[list[str]],
    numeric: list[bool],
    widths: list[float],
    size: float,
) -> Table:
    head = ParagraphStyle("head", _BODY, fontName=BOLD, fontSize=size, leading=size * 1.2)
    wrap = ParagraphStyle("wrap", _BODY, fontSize=size, leading=size * 1.2)
    header_row = [
        Paragraph(_escape(h), ParagraphStyle("r", head, alignment=TA_RIGHT) if n else head)
        for h, n in zip(headers, numeric, strict=True)
    ]
    body = [
        [
            Paragraph(_escape(v), wrap) if stringWidth(v, FONT, size) > w - 2 * PAD else v
            for v, w in zip(row, widths, strict=True)
        ]
        for row in zip(*columns, strict=True)
    ]
    table = Table([header_row, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = _grid_style(size, numeric=[i for i, n in enumerate(numeric) if n])
    # No page break right after the header's first rows or before the last two.
    style.add("NOSPLIT", (0, 0), (-1, min(3, len(body))))
    style.add("NOSPLIT", (0, max(1, len(body) - 1)), (-1, -1))
    table.setStyle(style)
    return table


def _grid_style(size: float, numeric: list[int]) -> TableStyle:
    return TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, size),
            ("FONT", (0, 0), (-1, 0), BOLD, size),
            ("TEXTCOLOR", (0, 0), (-1, -1), INK),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, RULE),
            ("LINEBELOW", (0, -1), (-1, -1), 0.4, RULE),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, SHADE]),
            *[("ALIGN", (i, 0), (i, -1), "RIGHT") for i in numeric],
            *_padding(PAD),
        ]
    )


def _padding(pad: float) -> list[tuple[Any, ...]]:
    return [
        (side, (0, 0), (-1, -1), pad)
        for side in ("LEFTPADDING", "RIGHTPADDING", "TOPPADDING", "BOTTOMPADDING")
    ]


def _column_width(header: str, cells: list[str], size: float) -> float:
    """Wide enough for the widest cell (text wraps past MAX_TEXT) and the header's longest word."""
    values = max((stringWidth(v, FONT, size) for v in cells), default=0.0)
    natural = stringWidth(header, BOLD, size)
    word = max(stringWidth(w, BOLD, size) for w in header.split())
    inner = max(min(values, MAX_TEXT), word, min(natural, max(values, 40.0)))
    return inner + 2 * PAD


def _widened(headers: list[str], widths: list[float], size: float) -> list[float]:
    """The page's spare width given to the columns whose header wraps, in proportion to the
    width each lacks."""
    wants = [
        max(0.0, stringWidth(h, BOLD, size) + 2 * PAD - w)
        for h, w in zip(headers, widths, strict=True)
    ]
    share = min(1.0, (WIDTH - sum(widths)) / sum(wants)) if sum(wants) else 0.0
    return [w + want * share for w, want in zip(widths, wants, strict=True)]


def _column_groups(widths: list[float]) -> list[list[int]]:
    """Columns split into groups that fit the page, each starting with the first column."""
    groups: list[list[int]] = []
    group = [0]
    for i in range(1, len(widths)):
        if len(group) > 1 and sum(widths[j] for j in group) + widths[i] > WIDTH:
            groups.append(group)
            group = [0]
        group.append(i)
    groups.append(group)
    return groups


def _cells(column: pl.Series) -> list[str]:
    """A column's values as shown: separators and 1-3 decimals for numbers, ISO days."""
    dtype = column.dtype
    if dtype.is_integer():
        return [NONE if v is None else f"{v:,}" for v in column]
    if dtype.is_float():
        if _is_share(column.name):
            return [figure(column.name, v) for v in column]
        values = column.drop_nulls()
        places = (
            1
            if column.name.endswith("_pct")
            else _decimals(values.filter(values.is_finite()).abs().max())
        )
        return [NONE if v is None or not math.isfinite(v) else f"{v:,.{places}f}" for v in column]
    if dtype == pl.Boolean():
        return [NONE if v is None else ("yes" if v else "no") for v in column]
    if isinstance(dtype, pl.Datetime):
        return [NONE if v is None else f"{v:%Y-%m-%d %H:%M}" for v in column]
    return [NONE if v is None else str(v) for v in column]


def _decimals(largest: Any) -> int:
    """3 decimals for values under 1, 2 under 100, 1 from there on."""
    if largest is None or largest < 1:
        return 3
    return 2 if largest < 100 else 1


def _text_width(values: Sequence[str], font: str, size: float) -> float:
    return max(stringWidth(v, font, size) for v in values) + 2 * PAD + 4


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _filters(report: Report) -> str:
    parts = [f"{label(k)}: {v}" for k, v in report.filters.items() if v]
    return ", ".join(parts) if parts else "no filter (all data)"


def _data_range(report: Report) -> str:
    first, last = report.data_range
    if first is None or last is None:
        return "no data"
    return f"{first.isoformat()} to {last.isoformat()}"


def _generated(report: Report) -> str:
    return f"{report.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _escape(text: str) -> str:
    """Text for a Paragraph, which reads a little XML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
