"""How a report writes its figures and comparisons in plain English, for a reader who never
opened the app: units on every number, the previous period named, no change claimed where the
previous period had no data.

Text only: knows no query and no frame.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from queries.reports.model import Context

Format = Callable[[float], str]

#: A relative change below this (in %) reads "about the same".
SAME_PCT = 0.5
#: A change of a rate below this (in percentage points) reads "the same".
SAME_POINTS = 0.05


def day(d: date) -> str:
    """'1 Jun 2025'."""
    return f"{d.day} {d:%b %Y}"


def period(start: date, end: date) -> str:
    """'1 Jun 2025 to 30 Jun 2025', or one day."""
    return day(start) if start == end else f"{day(start)} to {day(end)}"


def previous(ctx: Context) -> str:
    """'the previous 30 days' (the period of the same length just before)."""
    return "the previous day" if ctx.days == 1 else f"the previous {ctx.days:,} days"


def count(value: float) -> str:
    return f"{value:,.0f}"


def hours(value: float) -> str:
    """GPU or wall hours: '1,240 h', '12.5 h', '0.25 h'."""
    if abs(value) >= 100:
        return f"{value:,.0f} h"
    return f"{value:.1f} h" if abs(value) >= 1 or value == 0 else f"{value:.2f} h"


def ms(value: float, scale: float | None = None) -> str:
    """Milliseconds, as seconds from 10 s on (of `scale` when given: one unit for a pair)."""
    big = (value if scale is None else scale) >= 10_000
    return f"{value / 1000:,.1f} s" if big else f"{value:,.0f} ms"


def mb(value: float, scale: float | None = None) -> str:
    """Megabytes, as GB from 10 GB on (of `scale` when given: one unit for a pair)."""
    big = (value if scale is None else scale) >= 10_240
    return f"{value / 1024:,.1f} GB" if big else f"{value:,.0f} MB"


#: Formats whose unit depends on the size: a value and its comparison share the larger's unit.
SCALED: tuple[Callable[..., str], ...] = (ms, mb)


def _paired(fmt: Format, value: float, before: float | None) -> Format:
    if fmt not in SCALED:
        return fmt
    scale = max(abs(value), abs(before or 0))
    return lambda v: fmt(v, scale)  # type: ignore[call-arg]


def share(value: float) -> str:
    """A share 0..1 as a percentage: '12.3%'."""
    return f"{value * 100:.1f}%"


def usd(value: float) -> str:
    """'$1,234' from $100 on, '$12.34' below."""
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def days(value: float) -> str:
    return f"{value:,.1f} days"


def score(value: float) -> str:
    return f"{value:.3f}"


def percent(size: float) -> str:
    """A size of change in %: whole numbers from 10% on, one decimal below."""
    return f"{size:.0f}%" if size >= 9.95 else f"{size:.1f}%"


def versus(
    ctx: Context, value: float, before: float | None, fmt: Format, points: bool = False
) -> str:
    """The clause comparing `value` with the previous period's `before`, starting with ', ' or
    '; ': ', up 12% on the previous 30 days (1,107 h)'. `points`: a rate (0..1) whose change reads
    in percentage points."""
    then = previous(ctx)
    fmt = _paired(fmt, value, before)
    if before is None:
        return f"; {then} {'has' if ctx.days == 1 else 'have'} no data to compare with"
    if points:
        diff = (value - before) * 100
        if abs(diff) < SAME_POINTS:
            return f", the same as {then} ({fmt(before)})"
        direction = "up" if diff > 0 else "down"
        return f", {direction} {abs(diff):.1f} points on {then} ({fmt(before)})"
    if value == before:
        return f", the same as {then}" if value == 0 else f", the same as {then} ({fmt(before)})"
    if before == 0 or value == 0:
        return f", {'up' if value > before else 'down'} from {fmt(before)} in {then}"
    pct = (value - before) / before * 100
    if abs(pct) < SAME_PCT:
        return f", about the same as {then} ({fmt(before)})"
    direction = "up" if pct > 0 else "down"
    return f", {direction} {percent(abs(pct))} on {then} ({fmt(before)})"


def figure(
    ctx: Context,
    label: str,
    value: float | None,
    before: float | None,
    fmt: Format,
    points: bool = False,
    detail: str = "",
) -> str:
    """'GPU time: 1,240 h<detail>, up 12% on the previous 30 days (1,107 h).'; a missing value
    reads 'not measured'."""
    if value is None:
        return f"{label}: not measured in the period."
    shown = _paired(fmt, value, before)(value)
    return f"{label}: {shown}{detail}{versus(ctx, value, before, fmt, points)}."


def no_data(ctx: Context, what: str) -> list[str]:
    """The summary of a period without data: what is missing, and where the lake has data."""
    scope = f" for project {ctx.project}" if ctx.project else ""
    first, last = ctx.data_range
    lines = [f"No data in the period {period(ctx.start, ctx.end)}{scope}: {what}."]
    if first is None or last is None:
        lines.append("The lake holds no data yet.")
    else:
        lines.append(f"The lake holds data from {day(first)} to {day(last)}.")
    return lines


def coverage(ctx: Context) -> list[str]:
    """A warning when the lake's data begins inside the previous period (a partial comparison)."""
    first = ctx.data_range[0]
    if first is not None and ctx.previous_start < first <= ctx.previous_end:
        return [
            f"The lake's data begins on {day(first)}, so {previous(ctx)} "
            f"{'is' if ctx.days == 1 else 'are'} only partly covered by it."
        ]
    return []


def plural(n: float, word: str, words: str | None = None) -> str:
    """'1 job', '1,240 jobs'."""
    return f"{n:,.0f} {word if n == 1 else (words or word + 's')}"


def joined(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
