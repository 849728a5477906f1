"""How a report's names, figures and tables read on a PDF page: headings made from column
names, numbers with separators and 1-3 decimals, shares as percentages, and tables fitted to the
page's width (column groups when too wide, side by side when long and narrow).

Used by app.pdf; knows no query and no page layout beyond the width and height it is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from app.formats import NONE

FONT, BOLD = "Helvetica", "Helvetica-Bold"
#: Table font sizes tried in turn before a wide table is split into column groups.
SIZES = (8.0, 7.0, 6.5)
PAD = 3.0
#: Text cells wider than this wrap.
MAX_TEXT = 210.0
#: A narrow table flows in columns side by side from this many rows a column.
COLUMNS_FROM = 15
GUTTER = 8 * mm
#: A table longer than this is cut in the PDF (the CSV and JSON exports carry every row).
MAX_ROWS = 300
INK, MUTED, RULE, SHADE = (
    colors.HexColor("#1f2933"),
    colors.HexColor("#616e7c"),
    colors.HexColor("#9aa5b1"),
    colors.HexColor("#eef1f4"),
)

BODY = ParagraphStyle("body", fontName=FONT, fontSize=10, leading=13.5, textColor=INK)
NOTE = ParagraphStyle("note", BODY, fontSize=8.5, leading=11, textColor=MUTED)
#: The line that names a column group: it keeps with its table.
PART = ParagraphStyle("part", NOTE, spaceAfter=2, keepWithNext=1)
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
    if is_share(key):
        return f"{value * 100:,.1f}%"
    if key.endswith("_pct"):
        return f"{value:,.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{decimals(abs(value))}f}"


def change(key: str, headline: Mapping[str, Any]) -> str:
    """How `key` moved against the previous period: relative in %, a share's in points."""
    now, before = headline.get(key), headline.get(f"{key}_previous")
    if is_share(key):
        if not isinstance(now, int | float) or not isinstance(before, int | float):
            return NONE
        return f"{(now - before) * 100:+,.1f} pts"
    pct = headline.get(f"{key}_change_pct")
    if pct is None:
        return "no change" if now is not None and now == before else NONE
    return f"{pct:+,.1f}%"


def is_share(name: str) -> bool:
    """Shares (0..1), by the reports' naming rule: `share`, `utilization`, `…_rate`, `…_share`,
    `…_utilization`."""
    words = ("rate", "share", "utilization")
    return name in words or name.endswith(tuple(f"_{w}" for w in words))


def table_flowables(frame: pl.DataFrame, width: float, height: float) -> list[Flowable]:
    """The rows as one table `width` wide at most, or several column groups (first column
    repeated) when too wide, or side by side when long and narrow; a note when cut at MAX_ROWS."""
    if frame.height == 0:
        return [Paragraph("No rows in this period.", NOTE)]
    shown = frame.head(MAX_ROWS)
    cells = [column_cells(shown[c]) for c in shown.columns]
    numeric = [shown[c].dtype.is_numeric() for c in shown.columns]
    headers = [label(c) for c in shown.columns]
    for size in SIZES:
        widths = [_column_width(h, col, size) for h, col in zip(headers, cells, strict=True)]
        if sum(widths) <= width:
            widths = _widened(headers, widths, size, width)
            break
    groups = _column_groups(widths, width)
    out: list[Flowable] = []
    for number, group in enumerate(groups, start=1):
        if len(groups) > 1:
            shown_cols = f"{label(shown.columns[group[1]])} to {label(shown.columns[group[-1]])}"
            text = f"Part {number} of {len(groups)}: {shown_cols}"
            out.append(Paragraph(escape(text), PART))
        parts = (
            [headers[i] for i in group],
            [cells[i] for i in group],
            [numeric[i] for i in group],
            [widths[i] for i in group],
        )
        beside = _side_by_side(*parts, size, width, height)
        out += [*(beside or [_grid(*parts, size)]), Spacer(1, 6)]
    if frame.height > MAX_ROWS:
        note = f"First {MAX_ROWS:,} of {frame.height:,} rows; the CSV and JSON exports have all."
        out.append(Paragraph(note, NOTE))
    return out


def _side_by_side(
    headers: list[str],
    columns: list[list[str]],
    numeric: list[bool],
    widths: list[float],
    size: float,
    page_width: float,
    page_height: float,
) -> list[Flowable] | None:
    """A long narrow table as two or three tables side by side, each with its header, in blocks
    that fit a page; None for a table that is short, wide, or has text that wraps."""
    rows, width = len(columns[0]), sum(widths)
    fits = [n for n in (3, 2) if rows >= COLUMNS_FROM * n and n * (width + GUTTER) <= page_width]
    wraps = any(
        stringWidth(v, FONT, size) > w - 2 * PAD
        for column, w in zip(columns, widths, strict=True)
        for v in column
    )
    if not fits or wraps:
        return None
    n = fits[0]
    head = max(
        p.wrap(w, page_height)[1]
        for p, w in zip(_header_row(headers, numeric, size), widths, strict=True)
    )
    # Room for the section's heading above the first block.
    per_column = int((page_height - head - 2 * PAD - 40) // (size * 1.2 + 2 * PAD))
    blocks: list[Flowable] = []
    for start in range(0, rows, n * per_column):
        left = min(rows - start, n * per_column)
        height = -(-left // n)  # a shorter last block is balanced over its columns
        tables = [
            _grid(headers, [c[s : s + height] for c in columns], numeric, widths, size)
            for s in range(start, start + left, height)
        ]
        block = Table([tables], colWidths=[width + GUTTER] * len(tables), hAlign="LEFT")
        block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), *padding(0)]))
        blocks.append(block)
    return blocks


def _header_row(headers: list[str], numeric: list[bool], size: float) -> list[Paragraph]:
    head = ParagraphStyle("head", BODY, fontName=BOLD, fontSize=size, leading=size * 1.2)
    right = ParagraphStyle("right", head, alignment=TA_RIGHT)
    return [
        Paragraph(escape(h), right if n else head) for h, n in zip(headers, numeric, strict=True)
    ]


def _grid(
    headers: list[str],
    columns: list[list[str]],
    numeric: list[bool],
    widths: list[float],
    size: float,
) -> Table:
    wrap = ParagraphStyle("wrap", BODY, fontSize=size, leading=size * 1.2)
    header_row = _header_row(headers, numeric, size)
    body = [
        [
            Paragraph(escape(v), wrap) if stringWidth(v, FONT, size) > w - 2 * PAD else v
            for v, w in zip(row, widths, strict=True)
        ]
        for row in zip(*columns, strict=True)
    ]
    table = Table([header_row, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = grid_style(size, numeric=[i for i, n in enumerate(numeric) if n])
    # No page break right after the header's first rows or before the last two.
    style.add("NOSPLIT", (0, 0), (-1, min(3, len(body))))
    style.add("NOSPLIT", (0, max(1, len(body) - 1)), (-1, -1))
    table.setStyle(style)
    return table


def grid_style(size: float, numeric: list[int]) -> TableStyle:
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
            *padding(PAD),
        ]
    )


def padding(pad: float) -> list[tuple[Any, ...]]:
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


def _widened(headers: list[str], widths: list[float], size: float, width: float) -> list[float]:
    """The spare `width` given to the columns whose header wraps, in proportion to the
    width each lacks."""
    wants = [
        max(0.0, stringWidth(h, BOLD, size) + 2 * PAD - w)
        for h, w in zip(headers, widths, strict=True)
    ]
    share = min(1.0, (width - sum(widths)) / sum(wants)) if sum(wants) else 0.0
    return [w + want * share for w, want in zip(widths, wants, strict=True)]


def _column_groups(widths: list[float], width: float) -> list[list[int]]:
    """Columns split into groups that fit the page, each starting with the first column."""
    groups: list[list[int]] = []
    group = [0]
    for i in range(1, len(widths)):
        if len(group) > 1 and sum(widths[j] for j in group) + widths[i] > width:
            groups.append(group)
            group = [0]
        group.append(i)
    groups.append(group)
    return groups


def column_cells(column: pl.Series) -> list[str]:
    """A column's values as shown: separators and 1-3 decimals for numbers, ISO days."""
    dtype = column.dtype
    if dtype.is_integer():
        return [NONE if v is None else f"{v:,}" for v in column]
    if dtype.is_float():
        if is_share(column.name):
            return [figure(column.name, v) for v in column]
        values = column.drop_nulls()
        places = (
            1
            if column.name.endswith("_pct")
            else decimals(values.filter(values.is_finite()).abs().max())
        )
        return [NONE if v is None or not math.isfinite(v) else f"{v:,.{places}f}" for v in column]
    if dtype == pl.Boolean():
        return [NONE if v is None else ("yes" if v else "no") for v in column]
    if isinstance(dtype, pl.Datetime):
        return [NONE if v is None else f"{v:%Y-%m-%d %H:%M}" for v in column]
    return [NONE if v is None else str(v) for v in column]


def decimals(largest: Any) -> int:
    """3 decimals for values under 1, 2 under 100, 1 from there on."""
    if largest is None or largest < 1:
        return 3
    return 2 if largest < 100 else 1


def escape(text: str) -> str:
    """Text for a Paragraph, which reads a little XML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
