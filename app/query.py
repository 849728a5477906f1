"""`perflake query NAME`: the app's views on the command line, from the same `queries/` functions.

Each NAME maps to one query function; the flags build its `Filters` (and the few view-specific
arguments), and the rows print as a table, CSV or a JSON list of row objects.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from queries import alerts, compare, correlations, overview, timeseries, workers, workflows
from queries.base import Filters


@dataclass(frozen=True)
class View:
    """One `perflake query` name: what it shows and how it is computed from the flags."""

    help: str
    run: Callable[[Path, Filters, argparse.Namespace], pl.DataFrame]


def _compare(lake: Path, filters: Filters, args: argparse.Namespace) -> pl.DataFrame:
    if len(args.workflow or []) < 2:
        raise ValueError("--workflow: compare needs at least two, e.g. --workflow A --workflow B")
    # The workflows to compare are the subject, not a filter of the rows they are drawn from.
    return compare.compare_workflows(lake, _without_workflows(filters), args.workflow)


def _without_workflows(filters: Filters) -> Filters:
    return Filters(
        start=filters.start,
        end=filters.end,
        projects=filters.projects,
        workers=filters.workers,
        scene_types=filters.scene_types,
        resolution_tiers=filters.resolution_tiers,
    )


VIEWS: dict[str, View] = {
    "overview": View(
        "one row of farm totals: GPU hours, jobs, frames, time per frame, VRAM, success rate",
        lambda lake, f, a: overview.overview_totals(lake, f),
    ),
    "workflows": View(
        "one row per workflow: speed percentiles, GPU time, VRAM, quality, failures",
        lambda lake, f, a: workflows.workflow_summary(lake, f),
    ),
    "workers": View(
        "one row per worker: relative speed on matched work, utilization, frames per GPU-hour",
        lambda lake, f, a: workers.worker_summary(lake, f),
    ),
    "timeseries": View(
        "one row per period of --metric (by --grain), with its moving average",
        lambda lake, f, a: timeseries.metric_series(lake, f, a.metric, a.grain),
    ),
    "stages": View(
        "one row per pipeline stage: total time, share, p50/p95",
        lambda lake, f, a: workflows.stage_breakdown(lake, f),
    ),
    "correlations": View(
        "one row per workflow, numeric param and quality score: Pearson and Spearman r, n",
        lambda lake, f, a: correlations.correlations(lake, f),
    ),
    "compare": View(
        "one row per metric and workflow pair: a, b, pct_diff, verdict (two or more --workflow)",
        _compare,
    ),
    "alerts": View(
        "one row per alert, newest first",
        lambda lake, f, a: alerts.alerts(lake, f),
    ),
}


def filters_of(args: argparse.Namespace) -> Filters:
    """The Filters the flags ask for (ValueError naming the flag when they contradict)."""
    return Filters(
        start=args.start,
        end=args.end,
        projects=tuple(args.project or ()),
        workflows=tuple(args.workflow or ()),
        workers=tuple(args.worker or ()),
        scene_types=tuple(args.scene_type or ()),
        resolution_tiers=tuple(args.resolution_tier or ()),
    )


def run(args: argparse.Namespace) -> pl.DataFrame:
    """The rows of the view `args.view` over `args.lake`."""
    return VIEWS[args.view].run(args.lake, filters_of(args), args)


def print_frame(frame: pl.DataFrame, fmt: str, out: Any = None) -> None:
    """Print rows as an aligned table, CSV with a header row, or a JSON list of row objects."""
    out = out or sys.stdout
    columns = frame.columns
    rows = frame.rows()
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_cell(v) for v in r] for r in rows])
    elif fmt == "json":
        records = frame.to_dicts()
        out.write(orjson.dumps(records, default=_json_default, option=orjson.OPT_INDENT_2).decode())
        out.write("\n")
    else:
        cells = [columns] + [[_text_cell(v) for v in r] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        for n, row in enumerate(cells):
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            out.write("\n")
            if n == 0:
                out.write("  ".join("-" * w for w in widths) + "\n")
        out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "" if value is None else value


def _text_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
