"""What a report is made of: the Report and ChartSpec the exports and the scheduler read, the
options a caller may set, and the context every report builder gets.

Pure data and small rules (money rates, compared figures); no SQL and no Streamlit here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import polars as pl

from queries.base import Filters

#: USD per GPU-hour by GPU model, rounded on-demand cloud list prices of 2025 (a studio's own
#: farm costs less; set `ReportOptions.gpu_hourly_usd`). "*" prices any model not listed.
DEFAULT_GPU_RATES: Mapping[str, float] = MappingProxyType(
    {"H100": 2.50, "A100": 1.50, "L40S": 1.00, "RTX 4090": 0.50, "*": 1.00}
)
ANY_MODEL = "*"


@dataclass(frozen=True)
class ReportOptions:
    """Settings of a report build; the defaults suit a first look."""

    #: GPU model -> USD per GPU-hour. A key prices every model whose name contains it as whole
    #: words ("L4" is not in "L40S"; case ignored; an exact name first, then the longest key);
    #: "*" prices the rest.
    gpu_hourly_usd: Mapping[str, float] = field(default_factory=lambda: DEFAULT_GPU_RATES)
    #: Reviewers report: one row per reviewer only when True; the report aggregates otherwise.
    per_reviewer: bool = False

    def __post_init__(self) -> None:
        if ANY_MODEL not in self.gpu_hourly_usd:
            raise ValueError("gpu_hourly_usd: needs a '*' rate for GPU models not listed")
        for model, rate in self.gpu_hourly_usd.items():
            if not isinstance(model, str) or not model.strip():
                raise ValueError(f"gpu_hourly_usd: a GPU model must be a name, got {model!r}")
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValueError(f"gpu_hourly_usd: rate of {model} must be a number, got {rate!r}")
            if not math.isfinite(rate) or rate < 0:
                raise ValueError(f"gpu_hourly_usd: rate of {model} must be >= 0, got {rate}")
        # A read-only copy: the caller's dict may change later, a report's options may not.
        object.__setattr__(self, "gpu_hourly_usd", MappingProxyType(dict(self.gpu_hourly_usd)))

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.gpu_hourly_usd.items())), self.per_reviewer))

    def __reduce__(self) -> tuple:
        # A mapping proxy does not pickle; its items do (caches and worker processes pickle).
        return (ReportOptions, (dict(self.gpu_hourly_usd), self.per_reviewer))

    def rate_of(self, gpu_model: str | None) -> float:
        """USD per GPU-hour of `gpu_model`: its exact name, else the longest key it contains,
        else the "*" rate."""
        if gpu_model is None:
            return float(self.gpu_hourly_usd[ANY_MODEL])
        name = gpu_model.casefold()
        keys = [k for k in self.gpu_hourly_usd if k != ANY_MODEL]
        exact = [k for k in keys if k.casefold() == name]
        contained = sorted((k for k in keys if _names(k, name)), key=lambda k: (-len(k), k))
        key = (exact or contained or [ANY_MODEL])[0]
        return float(self.gpu_hourly_usd[key])


def _names(key: str, name: str) -> bool:
    """Whether `key` occurs in the casefolded model `name`, not inside a longer word."""
    pattern = rf"(?<![0-9a-z]){re.escape(key.casefold())}(?![0-9a-z])"
    return re.search(pattern, name) is not None


@dataclass(frozen=True)
class ChartSpec:
    """One chart of a report: `kind` "bar" | "line" | "stacked_bar" of `y` against `x` from the
    report table `table`, one series per value of `color` when given."""

    title: str
    table: str
    kind: str
    x: str
    y: str
    color: str | None = None


Headline = dict[str, float | int | str | None]


@dataclass(frozen=True)
class Report:
    """A built report: its period and the previous one (UTC days, both ends included), the key
    figures, the summary sentences, the tables (name -> frame) and the charts to draw."""

    kind: str
    title: str
    start: date
    end: date
    previous_start: date
    previous_end: date
    filters: dict[str, str | None]
    generated_at: datetime
    data_range: tuple[date | None, date | None]
    headline: Headline
    summary: list[str]
    tables: dict[str, pl.DataFrame]
    charts: list[ChartSpec]


@dataclass(frozen=True)
class Section:
    """What one report builder returns; `build_report` wraps it into a Report."""

    headline: Headline
    summary: list[str]
    tables: dict[str, pl.DataFrame]
    charts: list[ChartSpec] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """The request a builder answers: the lake, the period and the previous one, the project."""

    lake: Path
    start: date
    end: date
    project: str | None
    options: ReportOptions
    data_range: tuple[date | None, date | None]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous_start(self) -> date:
        return self.start - timedelta(days=self.days)

    @property
    def previous_end(self) -> date:
        return self.start - timedelta(days=1)

    @property
    def filters(self) -> Filters:
        """The period, restricted to the project when one is given."""
        return Filters(self.start, self.end, projects=(self.project,) if self.project else ())

    @property
    def previous_filters(self) -> Filters:
        return self.filters.previous()

    def span(self, periods: int) -> Filters:
        """The `periods` periods of the report's length that end with this one, as one range."""
        return Filters(
            self.start - timedelta(days=self.days * (periods - 1)),
            self.end,
            projects=self.filters.projects,
        )

    def period_starts(self, periods: int) -> list[date]:
        """First days of the `periods` periods that end with this one, oldest first."""
        return [self.start - timedelta(days=self.days * i) for i in range(periods - 1, -1, -1)]


def change_pct(value: float | None, previous: float | None) -> float | None:
    """(value - previous) / previous * 100; None when either is missing or previous is 0."""
    if value is None or previous is None or previous == 0:
        return None
    return (value - previous) / previous * 100


def compared(headline: Headline, key: str, value: float | None, previous: float | None) -> None:
    """Record a compared figure: `key`, `<key>_previous` and `<key>_change_pct`."""
    headline[key] = value
    headline[f"{key}_previous"] = previous
    headline[f"{key}_change_pct"] = change_pct(value, previous)


def empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A frame with these columns and no rows."""
    return pl.DataFrame(schema=dict(schema))
