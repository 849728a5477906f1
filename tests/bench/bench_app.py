"""App benchmark: every page's queries over a synthetic 10M-job, 365-day lake, cold and warm, for
the whole year and for its last 30 days, against pandas computing the Overview in the same run.

A page's queries are the `queries` calls its script in app/screens makes with the default widget
values (the sidebar's filter choices are timed as a row of their own: every analysis page runs
them over the whole lake). Each page and range runs in a fresh Python process:

- cold: the first run of the page's queries in that process, after the lake's Parquet files were
  dropped from the OS page cache (posix_fadvise DONTNEED, no root needed; the check below says
  whether the kernel honoured it). Imports are done before the clock starts, as in a running app
  server. Every query opens its own DuckDB connection (queries.base.frame), so no DuckDB cache
  outlives a query either way.
- warm: the median of the next runs of the same queries in the same process (files in the page
  cache). The app's st.cache_data is not involved: it would make a warm page free.

The baseline is the Overview page computed by pandas on data already loaded into memory (totals
of the range and of the period before, volume per day, the best and worst workflows); its figures
are checked against the queries'. Ratios against it are the figures that survive a noisy machine.

    make bench-app
    python -m tests.bench.bench_app --jobs 1000000 --lake /tmp/perflake-bench-1m
    python -m tests.bench.bench_app --pages Overview Workers --warm-runs 5
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.synthetic_lake import Spec, ensure

DEFAULT_LAKE = Path("/tmp/perflake-bench-10m")
EXPLAIN_DIR = Path("/tmp/perflake-bench-explain")
#: Seconds: (warm, cold) per range; "30d" holds the page to 300 ms warm (see the module docstring).
TARGETS = {"all": (1.0, 2.0), "30d": (0.3, 2.0)}
MEMORY_LIMIT_MB = 12_000
#: Queries listed per page that misses its target.
PRINTED_QUERIES = 5
QUERY_MODULES = (
    "alerts",
    "compare",
    "correlations",
    "health",
    "overview",
    "timeseries",
    "workers",
    "workflows",
)
Query = Callable[..., Any]


# --- the pages, as app/screens calls the queries ----------------------------------------------


def sidebar(q: Query, lake: Path, f: Any) -> None:
    from queries import workflows

    q(workflows.filter_choices, lake)


def overview_page(q: Query, lake: Path, f: Any) -> None:
    from queries import alerts, overview

    q(overview.overview_totals, lake, f)  # also the page's "anything in range?"
    q(overview.overview_totals, lake, f.previous(), note="previous period")
    q(overview.daily_volume, lake, f)
    q(overview.ranked_workflows, lake, f, next(iter(overview.METRICS)), 5)
    q(alerts.active_alerts, lake, f)


def workflows_page(q: Query, lake: Path, f: Any) -> None:
    from queries import overview, workflows

    q(overview.has_attempts, lake, f)  # empty.has_jobs
    summary = q(workflows.workflow_summary, lake, f)
    busiest = summary.sort(["jobs", "workflow_id"], descending=[True, False])
    shown = replace(f, workflows=tuple(busiest.get_column("workflow_id").head(5)))
    for metric in ("time_per_frame_ms", "likeness"):
        q(workflows.histogram, lake, shown, metric, 30)  # the page's shown workflows
    q(workflows.gpu_time_by_dimensions, lake, f)  # every tab of st.tabs, one scan
    q(workflows.stage_breakdown, lake, f)


def _busiest(counts: Any) -> list[str]:
    """The workflow ids of `workflows.workflow_jobs`, busiest first, as the pages pick them."""
    return list(counts.get_column("workflow_id").to_list())


def quality_page(q: Query, lake: Path, f: Any) -> None:
    import polars as pl

    from queries import correlations, overview, timeseries, workflows

    q(overview.has_attempts, lake, f)  # empty.has_jobs
    q(timeseries.metric_series, lake, f, "avg_time_per_frame_ms", "day")
    q(timeseries.quality_trends, lake, f, "day")
    workflow = _busiest(q(workflows.workflow_jobs, lake, f))[0]
    found = q(correlations.correlations, lake, replace(f, workflows=(workflow,)))  # its own
    rows = found.filter(pl.col("workflow_id") == workflow)
    if not rows.is_empty():
        strongest = rows.row(0, named=True)
        q(correlations.scatter, lake, f, workflow, strongest["param"], strongest["score"])
    q(correlations.top_configurations, lake, f, 5, "likeness", 5)


def compare_page(q: Query, lake: Path, f: Any) -> None:
    from queries import compare, overview, workflows

    q(overview.has_attempts, lake, f)  # empty.has_jobs
    ids = _busiest(q(workflows.workflow_jobs, lake, f))
    comparison = q(compare.compare_workflows, lake, f, tuple(ids[:2]))
    q(compare.tradeoff_sentences, comparison)


def workers_page(q: Query, lake: Path, f: Any) -> None:
    from queries import overview, workers

    q(overview.has_attempts, lake, f)  # empty.has_jobs
    q(workers.worker_summary, lake, f)


def alerts_page(q: Query, lake: Path, f: Any) -> None:
    from queries import alerts, overview

    q(overview.has_attempts, lake, f)  # empty.has_jobs
    q(alerts.active_alerts, lake, f)
    q(alerts.alerts, lake, f, None, alerts.LISTED)
    q(alerts.thresholds, lake)


def health_page(q: Query, lake: Path, f: Any) -> None:
    from queries import health

    q(health.table_totals, lake)
    q(health.rows_per_day, lake, 30)
    q(health.latest_events, lake, 20)
    q(health.quarantine_reasons, lake)
    q(health.quarantine, lake, 100)
    q(health.ingest_status, lake)


#: Page -> its queries and the ranges it is timed over (the sidebar and ingest health have none).
PAGES: dict[str, tuple[Callable[[Query, Path, Any], None], tuple[str, ...]]] = {
    "Sidebar (filter choices)": (sidebar, ("all",)),
    "Overview": (overview_page, ("all", "30d")),
    "Workflows": (workflows_page, ("all", "30d")),
    "Quality": (quality_page, ("all", "30d")),
    "Compare": (compare_page, ("all", "30d")),
    "Workers": (workers_page, ("all", "30d")),
    "Alerts & thresholds": (alerts_page, ("all", "30d")),
    "Ingest health": (health_page, ("all",)),
}


# --- one page in a fresh process --------------------------------------------------------------


class Recorder:
    """Times each query call, and inside it getting a DuckDB connection (`lake.views.cursor` on
    the shared one, else `lake.views.connect`) and executing the SQL (the rest is fetching rows
    and building the Polars frame); keeps each call's SQL for EXPLAIN ANALYZE."""

    def __init__(self) -> None:
        from lake import views

        self.calls: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None
        opener = "cursor" if hasattr(views, "cursor") else "connect"
        opens, run = getattr(views, opener), views.run

        def timed_open(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return opens(*args, **kwargs)
            finally:
                self._add("connect_s", time.perf_counter() - started)

        def timed_run(con: Any, sql: str, params: Any = ()) -> Any:
            started = time.perf_counter()
            try:
                return run(con, sql, params)
            finally:
                self._add("execute_s", time.perf_counter() - started)
                if self._current is not None:
                    self._current["sql"].append((sql, list(params)))

        setattr(views, opener, timed_open)
        views.run = timed_run
        self._undo: tuple[Any, str, Any, Any] = (views, opener, opens, run)

    def restore(self) -> None:
        """Put lake.views back as it was."""
        views, opener, opens, run = self._undo
        setattr(views, opener, opens)
        views.run = run

    def _add(self, key: str, seconds: float) -> None:
        if self._current is not None:
            self._current[key] += seconds

    def __call__(self, query: Callable[..., Any], *args: Any, note: str = "") -> Any:
        shown = [str(a) for a in args[2:] if isinstance(a, str | int)]
        shown += ["+".join(a) for a in args[2:] if isinstance(a, tuple)]
        label = f"{query.__name__}({', '.join([note, *shown] if note else shown)})"
        self._current = {"query": label, "connect_s": 0.0, "execute_s": 0.0, "sql": []}
        started = time.perf_counter()
        result = query(*args)
        self._current["total_s"] = time.perf_counter() - started
        self._current["rows"] = getattr(result, "height", None)
        self.calls.append(self._current)
        self._current = None
        return result


def child(args: argparse.Namespace) -> None:
    """Run one page over one range: once cold, then `warm_runs` times; print JSON."""
    # Imports before the clock starts: an app server has them loaded.
    for module in ("polars", *(f"queries.{m}" for m in QUERY_MODULES)):
        importlib.import_module(module)
    from queries.base import Filters

    page, _ = PAGES[args.child]
    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    start = first if args.range == "all" else last - timedelta(days=29)
    filters = Filters(start=start, end=last)
    runs: list[dict[str, Any]] = []
    for _ in range(1 + args.warm_runs):
        recorder = Recorder()
        started = time.perf_counter()
        page(recorder, args.lake, filters)
        recorder.restore()
        runs.append({"total_s": time.perf_counter() - started, "calls": recorder.calls})
    warm = runs[1:] or runs
    slow = statistics.median(r["total_s"] for r in warm) >= TARGETS[args.range][0]
    profiled = _profile(args, warm) if slow and args.profile_top else []
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"runs": runs, "rss_mb": rss, "profiled": profiled}, default=str))


def _profile(args: argparse.Namespace, warm: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE (JSON) of the page's --profile-top slowest queries (warm median): the
    plan goes to EXPLAIN_DIR, the operators that took the most time come back."""
    from contextlib import closing

    from lake import views

    medians = [statistics.median(run["calls"][k]["total_s"] for run in warm)
               for k in range(len(warm[0]["calls"]))]  # fmt: skip
    slowest = sorted(range(len(medians)), key=lambda k: -medians[k])[: args.profile_top]
    out = []
    for k in slowest:
        call = warm[0]["calls"][k]
        for j, (sql, params) in enumerate(call["sql"]):
            with closing(getattr(views, "cursor", views.connect)(args.lake)) as con:
                plan = json.loads(
                    con.execute("explain (analyze, format json) " + sql, params).fetchall()[0][-1]
                )
            slug = "".join(ch if ch.isalnum() else "-" for ch in f"{args.child}-{args.range}")
            path = EXPLAIN_DIR / f"{slug}-{call['query'].split('(')[0]}-{j}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"sql": sql, "params": params, "plan": plan}, default=str))
            # A plan DuckDB answers from file footers (a bare count) has no operators.
            operators = sorted(_operators(plan.get("operator", [])), key=lambda o: -o[1])
            read = plan.get("io", {}).get("total_bytes_read", 0)
            out.append({"query": call["query"], "statement": j, "warm_s": medians[k],
                        "path": str(path), "read_mb": read / 1e6,
                        "cpu_s": sum(o[1] for o in operators), "top": operators[:4]})  # fmt: skip
    return out


def _operators(nodes: list[dict[str, Any]]) -> list[tuple[str, float, int, str]]:
    """(type, seconds, rows out, what it does) of every operator of a JSON plan."""
    found = []
    for node in nodes:
        info = node.get("extra_info", {})
        what = "; ".join(
            f"{key}: {value if isinstance(value, str) else ', '.join(map(str, value))}"
            for key, value in info.items()
            if key in ("Groups", "Aggregates", "Function", "Join Type", "Conditions", "Order By")
        )
        found.append((node["type"], node.get("timing", 0.0), node.get("intermediate_rows", 0),
                      what[:160]))  # fmt: skip
        found += _operators(node.get("children", []))
    return found


# --- the pandas baseline, in a fresh process -----------------------------------------------------

#: Columns the Overview reads, per table.
BASELINE_COLUMNS = {
    "jobs": [
        "workflow_id",
        "total_gpu_time_ms",
        "frame_count",
        "time_per_frame_ms",
        "vram_peak_mb",
    ],
    "job_failures": ["workflow_id", "total_gpu_time_ms"],
    "alerts": ["metric", "level", "workflow_id", "worker_id", "occurred_at"],
}


def _load(lake: Path, table: str) -> Any:
    """One table's Overview columns (and its date) as a pandas frame, through pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lake.layout import data_files, partition_days, partition_dir

    parts = []
    for day in partition_days(lake, table):
        for path in data_files(partition_dir(lake, table, day)):
            part = pq.read_table(path, columns=BASELINE_COLUMNS[table])
            parts.append(part.append_column("date", pa.repeat(pa.scalar(day), part.num_rows)))
    return pa.concat_tables(parts).to_pandas(date_as_object=False)


def pandas_overview(data: dict[str, Any], start: date, end: date) -> dict[str, Any]:
    """The Overview page's figures from frames in memory: totals now and the period before,
    volume per day, best and worst 5 workflows by average time per frame, grouped alerts."""
    import numpy as np
    import pandas as pd

    def within(frame: Any, a: date, b: date) -> Any:
        days = frame["date"]
        return frame[(days >= np.datetime64(a)) & (days <= np.datetime64(b))]

    def totals(a: date, b: date) -> dict[str, Any]:
        jobs, failed = within(data["jobs"], a, b), within(data["job_failures"], a, b)
        attempts = len(jobs) + len(failed)
        gpu = jobs["total_gpu_time_ms"].sum() + failed["total_gpu_time_ms"].sum()
        return {"gpu_hours": gpu / 3.6e6, "jobs": len(jobs), "failures": len(failed),
                "frames": int(jobs["frame_count"].sum()),
                "avg_time_per_frame_ms": jobs["time_per_frame_ms"].mean(),
                "p95_time_per_frame_ms": jobs["time_per_frame_ms"].quantile(0.95),
                "peak_vram_mb": jobs["vram_peak_mb"].max(),
                "success_rate": len(jobs) / attempts if attempts else None}  # fmt: skip

    length = timedelta(days=(end - start).days + 1)
    now, before = totals(start, end), totals(start - length, start - timedelta(days=1))
    jobs, failed = within(data["jobs"], start, end), within(data["job_failures"], start, end)
    daily = pd.concat(
        [jobs.groupby("date").agg(jobs=("frame_count", "size"), frames=("frame_count", "sum"),
                                  gpu=("total_gpu_time_ms", "sum")),
         failed.groupby("date").agg(failures=("total_gpu_time_ms", "size"),
                                    failed_gpu=("total_gpu_time_ms", "sum"))],
        axis=1,
    ).fillna(0)  # fmt: skip
    daily["gpu_hours"] = (daily["gpu"] + daily["failed_gpu"]) / 3.6e6
    speed = jobs.groupby("workflow_id")["time_per_frame_ms"].mean().dropna()
    ranked = (speed.nsmallest(5), speed.nlargest(5))
    alerts = within(data["alerts"], start, end)
    grouped = alerts.groupby(["metric", "level", "workflow_id", "worker_id"]).agg(
        alerts=("occurred_at", "size"), last_at=("occurred_at", "max")
    )
    return {"now": now, "before": before, "days": len(daily), "ranked": ranked,
            "alert_groups": len(grouped)}  # fmt: skip


def baseline(args: argparse.Namespace) -> None:
    """Load the Overview's columns into pandas, time the Overview per range, check its figures
    against the queries'; print JSON."""
    import pandas  # noqa: F401  (imported before the clock, like the queries' modules)

    from queries.base import Filters
    from queries.overview import overview_totals

    started = time.perf_counter()
    data = {table: _load(args.lake, table) for table in BASELINE_COLUMNS}
    load_s = time.perf_counter() - started
    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    out: dict[str, Any] = {"load_s": load_s, "rows": {k: len(v) for k, v in data.items()}}
    for name, start in (("all", first), ("30d", last - timedelta(days=29))):
        times, result = [], {}
        for _ in range(1 + args.warm_runs):
            began = time.perf_counter()
            result = pandas_overview(data, start, last)
            times.append(time.perf_counter() - began)
        expected = overview_totals(args.lake, Filters(start=start, end=last)).row(0, named=True)
        # A p95 read off the job sample (percentile_sample_rate 16) is held to 1%, not 1e-9.
        sampled = expected["percentile_sample_rate"] > 1
        off = [
            k
            for k, v in result["now"].items()
            if not _close(v, expected[k], 0.01 if sampled and k.startswith("p95") else 1e-9)
        ]
        out[name] = {"first_s": times[0], "warm_s": statistics.median(times[1:] or times),
                     "mismatches": off, "jobs": result["now"]["jobs"]}  # fmt: skip
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def prepare_rollups(lake: Path) -> int:
    """Bring the lake's rollups (every kind of cells, the month copies of the samples) up to
    date; the month files now current."""
    from lake import rollup, sample_months, views
    from queries import cells
    from queries.base import Filters

    for kind in cells.KINDS:
        cells.cells(lake, Filters(), kind)
    with views.cursor(lake) as con:
        for table in sample_months.COPIES:
            sample_months.shadow(con, lake, f"select * from {table}")
    today = datetime.now(UTC).date()  # the UTC today the cells settle days by
    rollups = [k.rollup for k in cells.KINDS] + list(sample_months.COPIES.values())
    return sum(len(rollup.state(lake, r, None, None, today).current) for r in rollups)


def _close(a: Any, b: Any, tolerance: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))


# --- the run ------------------------------------------------------------------------------------


def evict(lake: Path) -> tuple[int, int]:
    """Ask the kernel to drop the lake's Parquet files from the page cache; (files, bytes)."""
    files = size = 0
    for path in lake.rglob("*.parquet"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            size += os.fstat(fd).st_size
            files += 1
        finally:
            os.close(fd)
    return files, size


def read_rate(folder: Path) -> float:
    """MB/s reading every file under `folder` once."""
    started, size = time.perf_counter(), 0
    for path in folder.rglob("*.parquet"):
        size += len(path.read_bytes())
    return size / 1e6 / (time.perf_counter() - started)


def spawn(lake: Path, extra: list[str], first: date, last: date, warm_runs: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.bench.bench_app", "--lake", str(lake), "--first",
           first.isoformat(), "--last", last.isoformat(), "--warm-runs", str(warm_runs), *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor() or "?")  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import duckdb
    import polars

    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, load {_load_average()}; "
            f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
            f"Polars {polars.__version__}")  # fmt: skip


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _cache_key_ms(lake: Path) -> float:
    """Milliseconds of computing the app's cache key (app.cached.lake_version), paid once per
    page view (it is reused for a second), cached results or not."""
    import streamlit.logger

    streamlit.logger.set_log_level("error")  # outside `streamlit run` it warns of no runtime
    from app.cached import _newest_change

    times = []
    for _ in range(5):
        started = time.perf_counter()
        _newest_change(lake)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def report(results: list[dict[str, Any]], base: dict[str, Any]) -> bool:
    """Print the table and the slow queries; whether every target was met."""
    met = True
    print(f"\n{'page':<28}{'range':<7}{'cold s':>8}{'warm s':>8}{'target (warm/cold)':>20}"
          f"{'warm/pandas':>13}{'RSS MB':>8}  result")  # fmt: skip
    for r in results:
        warm_t, cold_t = TARGETS[r["range"]]
        if "error" in r:
            print(f"{r['page']:<28}{r['range']:<7}  ERROR {r['error']}")
            met = False
            continue
        ok = r["warm_s"] < warm_t and r["cold_s"] < cold_t and r["rss_mb"] < MEMORY_LIMIT_MB
        met &= ok
        ratio = r["warm_s"] / base[r["range"]]["warm_s"]
        print(f"{r['page']:<28}{r['range']:<7}{r['cold_s']:>8.3f}{r['warm_s']:>8.3f}"
              f"{f'<{warm_t:g} / <{cold_t:g}':>20}{ratio:>12.1f}x{r['rss_mb']:>8.0f}  "
              f"{'pass' if ok else 'FAIL'}")  # fmt: skip
    for name in ("all", "30d"):
        b = base[name]
        print(f"{'pandas Overview (baseline)':<28}{name:<7}{b['first_s']:>8.3f}{b['warm_s']:>8.3f}"
              f"{'':>20}{1:>12.1f}x{base['rss_mb']:>8.0f}  "
              f"{'figures match' if not b['mismatches'] else 'MISMATCH ' + str(b['mismatches'])}")  # fmt: skip
    print(f"  pandas 'cold' = its first run on data already in memory (loading the columns took "
          f"{base['load_s']:.1f} s); warm = the mean of its runs before the pages "
          f"({base['all']['before_s']:.3f} / {base['30d']['before_s']:.3f} s) and after them "
          f"({base['all']['after_s']:.3f} / {base['30d']['after_s']:.3f} s)")  # fmt: skip
    print("\nslowest queries of the pages that miss (warm median; connect = getting a cursor, "
          "fetch = rows to Python and the Polars frame):")  # fmt: skip
    for r in results:
        warm_t = TARGETS[r["range"]][0]
        if "error" in r or r["warm_s"] < warm_t:
            continue
        for call in sorted(r["calls"], key=lambda c: -c["warm_s"])[:PRINTED_QUERIES]:
            print(f"  {r['page']} [{r['range']}] {call['query']}: warm {call['warm_s']:.3f} s "
                  f"(connect {call['connect_s']:.3f}, execute {call['execute_s']:.3f}, fetch "
                  f"{call['fetch_s']:.3f}), cold {call['cold_s']:.3f} s, {call['rows']} rows")  # fmt: skip
        for prof in r.get("profiled", []):
            print(f"    EXPLAIN ANALYZE {prof['query']} #{prof['statement']}: {prof['cpu_s']:.1f} "
                  f"CPU-s in operators, {prof['read_mb']:.0f} MB read; {prof['path']}")  # fmt: skip
            for kind, seconds, rows, what in prof["top"]:
                print(f"      {kind:<22}{seconds:>8.2f} s {rows:>12,} rows  {what}")
    return met


def summarize(page: str, name: str, out: dict[str, Any]) -> dict[str, Any]:
    """Cold and warm totals of a page, and per query its cold time and warm medians."""
    if "error" in out:
        return {"page": page, "range": name, "error": out["error"]}
    cold, warm = out["runs"][0], out["runs"][1:] or out["runs"]
    calls = []
    for k, call in enumerate(cold["calls"]):
        runs = [w["calls"][k] for w in warm]
        med = {key: statistics.median(c[key] for c in runs)
               for key in ("total_s", "connect_s", "execute_s")}  # fmt: skip
        calls.append({"query": call["query"], "rows": call["rows"], "cold_s": call["total_s"],
                      "warm_s": med["total_s"], "connect_s": med["connect_s"],
                      "execute_s": med["execute_s"],
                      "fetch_s": med["total_s"] - med["connect_s"] - med["execute_s"]})  # fmt: skip
    return {"page": page, "range": name, "cold_s": cold["total_s"], "rss_mb": out["rss_mb"],
            "warm_s": statistics.median(w["total_s"] for w in warm), "calls": calls,
            "profiled": out.get("profiled", [])}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lake", type=Path, default=DEFAULT_LAKE,
                        help=f"lake folder, built if missing or stale (default {DEFAULT_LAKE})")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=10_000_000, help="jobs in the lake")
    parser.add_argument("--days", type=int, default=365, help="days the lake spans")
    parser.add_argument("--seed", type=int, default=Spec.seed, help="seed of the lake")
    parser.add_argument("--processes", type=int, default=2, help="processes building the lake")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm runs per page (median)")
    parser.add_argument("--pages", nargs="*", default=list(PAGES), metavar="PAGE",
                        help="pages to time (default: all)")  # fmt: skip
    parser.add_argument("--profile-top", type=int, default=3,
                        help="EXPLAIN ANALYZE this many slowest queries of a page that misses")  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--range", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--last", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    if args.baseline:
        baseline(args)
        return 0
    unknown = set(args.pages) - set(PAGES)
    if unknown:
        parser.error(f"--pages: unknown {', '.join(sorted(unknown))}; known: {', '.join(PAGES)}")
    try:
        marker = ensure(args.lake, Spec(args.jobs, args.days, args.seed), args.processes)
    except ValueError as e:
        parser.error(str(e))
    last = date.fromisoformat(marker["end"])
    first = last - timedelta(days=args.days - 1)
    rows = marker["rows"]
    print(f"machine: {machine()}")
    print(f"lake {args.lake}: {first} to {last}, "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(rows.items())))  # fmt: skip
    # The monthly rollups (queries.cells, lake.sample_months) are built by the first query that
    # needs them, as in the app; here before the clock, so every page finds them.
    started = time.perf_counter()
    built = prepare_rollups(args.lake)
    print(f"rollups (cells of every kind, month copies of the samples): {built} month files current after "
          f"{time.perf_counter() - started:.1f} s (built once, rebuilt when a month's files change)")  # fmt: skip
    files, size = evict(args.lake)
    cold_rate = read_rate(args.lake / "jobs")
    warm_rate = read_rate(args.lake / "jobs")
    print(f"cold = fresh process, {files:,} Parquet files ({size / 1e9:.1f} GB) dropped from the "
          f"page cache first (posix_fadvise): reading jobs/ ran at {cold_rate:,.0f} MB/s after "
          f"the drop, {warm_rate:,.0f} MB/s cached"
          + (" (the drop took hold)" if cold_rate < warm_rate / 2 else
             " (the drop did NOT take hold: cold runs read from memory)"))  # fmt: skip
    print(f"warm = median of {args.warm_runs} more runs in the same process")
    span = [args.lake, first, last, args.warm_runs]
    base = spawn(span[0], ["--baseline"], *span[1:])
    if "error" in base:
        print(f"baseline failed: {base['error']}")
        return 1
    results = []
    for page in args.pages:
        for name in PAGES[page][1]:
            evict(args.lake)
            extra = ["--child", page, "--range", name, "--profile-top", str(args.profile_top)]
            results.append(summarize(page, name, spawn(span[0], extra, *span[1:])))
            print(f"  timed {page} [{name}]", flush=True)
    after = spawn(span[0], ["--baseline"], *span[1:])
    if "error" in after:
        print(f"baseline failed: {after['error']}")
        return 1
    for name in ("all", "30d"):
        before_s, after_s = base[name]["warm_s"], after[name]["warm_s"]
        base[name] |= {"before_s": before_s, "after_s": after_s, "warm_s": (before_s + after_s) / 2}
        base[name]["mismatches"] += after[name]["mismatches"]
    met = report(results, base)
    key_ms = _cache_key_ms(args.lake)
    print(f"\napp cache key (app.cached.lake_version): {key_ms:.1f} ms to compute, once per page "
          "view (reused for a second), even when every result is cached")  # fmt: skip
    print(f"load average at the end: {_load_average()}")
    print("every target met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
