"""Reports: one period of the lake, with an optional project filter, set against the previous
period of the same length, as figures, plain-English sentences, tables and chart specs.

`build_report` is the one entry point; the exports (CSV, JSON, PDF) and the scheduler take the
`Report` it returns. One module per report type builds its `Section`; nothing here knows
Streamlit or a file format.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from lake.layout import ensure_lake, partition_days
from lake.tables import TABLES
from queries.reports import (
    cost,
    delivery,
    performance,
    quality,
    reviewers,
    throughput,
    utilization,
)
from queries.reports.model import (
    DEFAULT_GPU_RATES,
    ChartSpec,
    Context,
    Report,
    ReportOptions,
    Section,
)

__all__ = [
    "DEFAULT_GPU_RATES",
    "REPORT_TYPES",
    "ChartSpec",
    "Report",
    "ReportOptions",
    "build_report",
]

#: Report type id -> title, in the order a menu lists them.
REPORT_TYPES: dict[str, str] = {
    "performance": "Performance summary",
    "delivery": "Delivery summary",
    "throughput": "Throughput",
    "utilization": "GPU utilization",
    "quality": "Quality",
    "cost": "Cost per character",
    "reviewers": "Reviewer productivity",
}

_BUILDERS: dict[str, Callable[[Context], Section]] = {
    "performance": performance.build,
    "delivery": delivery.build,
    "throughput": throughput.build,
    "utilization": utilization.build,
    "quality": quality.build,
    "cost": cost.build,
    "reviewers": reviewers.build,
}

DEFAULT_OPTIONS = ReportOptions()

#: Tables whose days count as data: every event table (the quarantine holds rejected messages).
DATA_TABLES = tuple(name for name in TABLES if name != "quarantine")


def build_report(
    lake: Path,
    kind: str,
    start: date,
    end: date,
    project: str | None = None,
    options: ReportOptions = DEFAULT_OPTIONS,
    now: datetime | None = None,
) -> Report:
    """The `kind` report of the UTC days `start`..`end` (both included), of one project or all,
    compared with the period of the same length just before; `now` stamps it (UTC)."""
    if kind not in REPORT_TYPES:
        raise ValueError(f"kind: must be one of {', '.join(REPORT_TYPES)}, got {kind!r}")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValueError(f"{name}: must be a date, got {value!r}")
    if start > end:
        raise ValueError(f"start: {start} is after end: {end}")
    if project is not None and (not isinstance(project, str) or not project.strip()):
        raise ValueError(f"project: must be a project id or None, got {project!r}")
    if now is not None and now.utcoffset() is None:
        raise ValueError(f"now: must carry a time zone, got {now!r}")
    if not isinstance(options, ReportOptions):
        raise ValueError(f"options: must be a ReportOptions, got {type(options).__name__}")
    lake = ensure_lake(Path(lake))
    ctx = Context(lake, start, end, project, options, data_range(lake))
    section = _BUILDERS[kind](ctx)
    return Report(
        kind=kind,
        title=REPORT_TYPES[kind],
        start=start,
        end=end,
        previous_start=ctx.previous_start,
        previous_end=ctx.previous_end,
        filters={"project": project},
        generated_at=(now or datetime.now(UTC)).astimezone(UTC),
        data_range=ctx.data_range,
        headline=section.headline,
        summary=section.summary,
        tables=section.tables,
        charts=section.charts,
    )


def data_range(lake: Path) -> tuple[date | None, date | None]:
    """First and last UTC day with data in any event table (partition folders, no file read)."""
    days = [d for name in DATA_TABLES for d in partition_days(lake, name)]
    return (min(days), max(days)) if days else (None, None)
