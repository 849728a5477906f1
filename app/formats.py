"""How the app writes a number in a metric or a sentence: units, separators, "n/a" for null.

Knows no query and no page.
"""

from __future__ import annotations

NONE = "n/a"


def count(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def ms(value: float | None) -> str:
    """Milliseconds, as seconds from 10 s on."""
    if value is None:
        return NONE
    return f"{value / 1000:,.1f} s" if value >= 10_000 else f"{value:,.0f} ms"


def hours(value: float | None) -> str:
    return NONE if value is None else f"{value:,.1f} h"


def mb(value: float | None) -> str:
    """Megabytes, as GB from 10 GB on."""
    if value is None:
        return NONE
    return f"{value / 1024:,.1f} GB" if value >= 10_240 else f"{value:,.0f} MB"


def pct(value: float | None, digits: int = 1) -> str:
    """A share (0..1) as a percentage."""
    return NONE if value is None else f"{value * 100:.{digits}f}%"


def number(value: float | None) -> str:
    """Any measure: up to four significant digits."""
    return NONE if value is None else f"{value:,.4g}"


def change(value: float | None, before: float | None) -> str | None:
    """`value` against `before` as a signed percentage (None when either is missing or 0)."""
    if value is None or not before:
        return None
    return f"{(value - before) / before * 100:+.1f}%"
