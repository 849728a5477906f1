"""The PDF of a report, for a reader who never opened the app: a first page with the report's name,
period, filters, executive summary and key figures, then one section per table with its charts;
every page stamped with the data range, the generation time and "Page N of M".

Gets a built report and its charts as PNGs (app.exports draws them); runs no query.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from reportlab import rl_config
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

from app.pdf_tables import (
    BODY,
    BOLD,
    FONT,
    MUTED,
    NOTE,
    PAD,
    RULE,
    change,
    escape,
    figure,
    grid_style,
    label,
    padding,
    table_flowables,
)
from queries.reports import ChartSpec, Report
from queries.reports.wording import period as _period

# Binary streams: without reportlab's C accelerator its ASCII85 encoder takes ~0.1 s per chart.
rl_config.useA85 = 0

PAGE = landscape(A4)
MARGIN = 15 * mm
#: Room kept at the top and bottom of each page for the running header and the footer.
BAND = 8 * mm
#: What a page's frame holds: reportlab pads it by 6 pt on every side.
LEFT, RIGHT = MARGIN + 6, PAGE[0] - MARGIN - 6
WIDTH = RIGHT - LEFT
HEIGHT = PAGE[1] - 2 * MARGIN - 2 * BAND - 12
#: Between the summary and the key figures beside it.
GAP = 10 * mm
_STYLES = {
    "kicker": ParagraphStyle("kicker", BODY, fontSize=9, textColor=MUTED, spaceAfter=2),
    "title": ParagraphStyle("title", BODY, fontName=BOLD, fontSize=22, leading=27, spaceAfter=8),
    # Headings keep with what follows them: no heading alone at the foot of a page.
    "h2": ParagraphStyle(
        "h2",
        BODY,
        fontName=BOLD,
        fontSize=14,
        leading=18,
        spaceBefore=8,
        spaceAfter=4,
        keepWithNext=1,
    ),
    "h3": ParagraphStyle(
        "h3", BODY, fontName=BOLD, fontSize=10.5, spaceBefore=6, spaceAfter=3, keepWithNext=1
    ),
    "bullet": ParagraphStyle("bullet", BODY, fontSize=10.5, leading=14.5, leftIndent=12),
    "note": NOTE,
}


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
            self.drawRightString(RIGHT, MARGIN, f"Page {number} of {total}")
            super().showPage()
        super().save()


def _stamp(canvas: Canvas, _doc: BaseDocTemplate, report: Report, first: bool) -> None:
    """Footer on every page (data range, generation time), running header after the first."""
    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.setFillColor(MUTED)
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.4)
    canvas.line(LEFT, MARGIN + BAND - 3 * mm, RIGHT, MARGIN + BAND - 3 * mm)
    canvas.drawString(
        LEFT, MARGIN, f"Data in the lake: {_data_range(report)}. Generated {_generated(report)}."
    )
    if not first:
        top = PAGE[1] - MARGIN - 3 * mm
        canvas.drawString(
            LEFT,
            top,
            f"perflake · {report.title} · {_period(report.start, report.end)} · {_filters(report)}",
        )
        canvas.line(LEFT, top - 2 * mm, RIGHT, top - 2 * mm)
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
        Paragraph(escape(report.title), _STYLES["title"]),
        _facts(facts),
    ]
    summary: list[Flowable] = [
        Paragraph("Executive summary", _STYLES["h2"]),
        *[Paragraph(escape(s), _STYLES["bullet"], bulletText="•") for s in report.summary],
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
    figures_width = figures.wrap(WIDTH, HEIGHT)[0]
    beside = Table([[summary, right]], colWidths=[WIDTH - figures_width, figures_width])
    beside.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                *padding(0),
                ("RIGHTPADDING", (0, 0), (0, 0), GAP),
            ]
        )
    )
    # The head's paragraphs and the note, with their spacing, take about this much.
    used = sum(f.wrap(WIDTH, HEIGHT)[1] for f in [*head, note]) + 50
    if beside.wrap(WIDTH, HEIGHT)[1] <= HEIGHT - used:
        return [*head, beside, Spacer(1, 10), note]
    return [*head, *summary, *right, Spacer(1, 10), note]


def _facts(rows: list[tuple[str, str]]) -> Table:
    data = [[Paragraph(f"<b>{k}</b>", BODY), Paragraph(escape(v), BODY)] for k, v in rows]
    table = Table(data, colWidths=[35 * mm, WIDTH - 35 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), *padding(1)]))
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
    table.setStyle(grid_style(9.5, numeric=[1, 2, 3]))
    return table


def _sections(report: Report, charts: Sequence[tuple[ChartSpec, bytes]]) -> list[Flowable]:
    """One section per table: its heading, its charts, then the table itself."""
    out: list[Flowable] = [PageBreak()]
    for name, frame in report.tables.items():
        out += [CondPageBreak(40 * mm), Paragraph(escape(label(name)), _STYLES["h2"])]
        for spec, png in charts:
            if spec.table == name:
                out += [Paragraph(escape(spec.title), _STYLES["h3"]), _image(png), Spacer(1, 6)]
        out += table_flowables(frame, WIDTH, HEIGHT)
    return out


def _image(png: bytes) -> Image:
    """A PNG across the page's width, smaller where it would be taller than most of a page."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    scale = min(WIDTH / width, 0.7 * HEIGHT / height)
    # The charts are drawn opaque (app.exports): no alpha mask to split off.
    return Image(
        io.BytesIO(png), width=width * scale, height=height * scale, hAlign="LEFT", mask=None
    )


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
