"""Worker queries: speed against same-model peers on matched work, utilization, throughput,
VRAM headroom and the underperformer flag.

Reads the `jobs` and `worker_samples` views only; knows nothing of Streamlit. Matched work is the
same workflow at the same resolution tier, so a worker that gets heavier jobs is not called slow.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl

from queries.base import Filters, frame, job_source
from queries.cells import worker_cells, worker_sample_cells

#: Underperformer: at least this much slower than same-model peers on matched work ...
SLOW_RATIO = 1.2
#: ... over at least this many matched jobs (fewer say too little to flag a worker).
MIN_MATCHED_JOBS = 20
#: Underperformer: utilization below this share of the median of its same-model peers.
LOW_UTILIZATION_SHARE = 0.75

# Per worker: its worker cells (`queries.cells.worker_cells`) added up; its GPU model is the one
# of its latest job that sent one.
TOTALS = """
select worker_id,
    arg_max(gpu_model, last_at) filter (where gpu_model is not null) as gpu_model,
    cast(sum(jobs) as bigint) as jobs,
    cast(sum(frames) as bigint) as frames,
    sum(gpu_time_ms) / 3600000.0 as gpu_hours,
    sum(vram_peak_sum) / nullif(sum(vram_peaks), 0) as avg_vram_peak_mb,
    max(max_vram_peak_mb) as max_vram_peak_mb,
    max(vram_total_mb) as vram_total_mb
from ({cells})
group by worker_id
"""
# Per worker: its worker sample cells (`queries.cells.worker_sample_cells`) added up.
SAMPLES = """
select worker_id,
    coalesce(sum(generating_s), 0) as generating_s,
    coalesce(sum(active_s), 0) as active_s,
    max(vram_total_mb) as samples_vram_total_mb
from ({cells})
group by worker_id
"""
# One row per matched-work cell of a worker: its median time per frame there and its jobs (a
# sampled job counts `rate` times).
MEDIANS = """
select worker_id, gpu_model, workflow_id, resolution_tier,
    count(*) * {rate} as jobs,
    median(time_per_frame_ms) as time_per_frame_ms
from {source}
where {where}
group by worker_id, gpu_model, workflow_id, resolution_tier
"""
#: Matched work: cells of the same workflow and resolution tier (a missing tier is a tier).
MATCH = ["workflow_id", "resolution_tier"]
#: The cells' medians come from the job sample (`queries.base.job_source`) only where it holds
#: this many jobs per cell on average: the relative time per frame is then within about 0.01 of
#: the exact one (measured on the benchmark lake: 59 a cell, all-time), and every row otherwise.
MIN_CELL_SAMPLE = 40


def worker_summary(lake: Path, filters: Filters) -> pl.DataFrame:
    """One row per worker with a completed job in range, ordered by worker_id.

    - utilization: generating / (generating + idle) seconds of its worker samples in the date
      range (offline time left out); null without samples.
    - frames_per_gpu_hour: frames / GPU hours of its completed jobs.
    - relative_time_per_frame: its median time per frame on matched work (same workflow and
      resolution tier) over the median of the other workers with the same GPU model there,
      averaged over those cells weighted by its jobs; 1.0 = like its peers, 1.3 = 30% slower;
      null when no same-model worker shares its work.
    - vram_headroom_pct: 1 - its highest VRAM peak / its GPU memory, a fraction (0.15 = 15%
      free); null without VRAM monitoring.
    - efficiency_rank: 1 = fastest on matched work against the whole fleet, every GPU model
      (the same ratio as relative_time_per_frame, with every other worker as peer); ties share a
      rank; null when no worker shares its work.
    - underperformer: relative_time_per_frame >= 1.2 over at least 20 matched jobs, or
      utilization below 0.75 x the median utilization of its same-model peers; flag_reason says
      which, else null.

    - percentile_sample_rate: 1 where the medians behind relative_time_per_frame and
      efficiency_rank are exact; 16 where they come from the job sample (a range of 200,000
      jobs or more with MIN_CELL_SAMPLE sampled jobs per cell on average; matched jobs are then
      estimated, and every other figure still counts every job).

    The totals and utilization add up the worker rollups (`queries.cells`); the medians are one
    scan of the jobs (or their sample) per cell, and the peers' medians are worked out here over
    the cells (a few thousand rows): as a self-join in SQL they cost more than that scan.
    """
    found = worker_cells(lake, filters)
    sql = TOTALS.format(cells=found.sql)
    totals = frame(lake, sql, found.params, found.tables, found.within)
    found = worker_sample_cells(lake, filters)
    sql = SAMPLES.format(cells=found.sql)
    samples = frame(lake, sql, found.params, found.tables, found.within)
    cells, rate = _cells(lake, filters, int(totals.get_column("jobs").sum()))
    relative = _relative(cells, same_model=True).rename(
        {"ratio": "relative_time_per_frame", "jobs": "matched_jobs"}
    )
    fleet = _relative(cells, same_model=False).select("worker_id", fleet_time_per_frame="ratio")
    vram_total = pl.coalesce("vram_total_mb", "samples_vram_total_mb")
    rows = (
        totals.join(samples, on="worker_id", how="left")
        .join(relative, on="worker_id", how="left")
        .join(fleet, on="worker_id", how="left")
        .sort("worker_id")
        .with_columns(
            utilization=_ratio(pl.col("generating_s"), pl.col("active_s")),
            frames_per_gpu_hour=_ratio(pl.col("frames"), pl.col("gpu_hours")),
            vram_total_mb=vram_total,
            vram_headroom_pct=1 - _ratio(pl.col("max_vram_peak_mb"), vram_total),
        )
    )
    rows = rows.with_columns(
        efficiency_rank=pl.col("fleet_time_per_frame").rank("min").cast(pl.Int64),
        peer_utilization=_peer_median(rows, "utilization"),
    )
    slow = (pl.col("relative_time_per_frame") >= SLOW_RATIO) & (
        pl.col("matched_jobs") >= MIN_MATCHED_JOBS
    )
    idle = pl.col("utilization") < LOW_UTILIZATION_SHARE * pl.col("peer_utilization")
    reasons = pl.concat_str(
        pl.when(slow).then(
            pl.format(
                "{}% slower than {} peers on matched work ({}{} jobs)",
                ((pl.col("relative_time_per_frame") - 1) * 100).round(0).cast(pl.Int64),
                pl.col("gpu_model"),
                pl.lit("about " if rate > 1 else ""),
                pl.col("matched_jobs"),
            )
        ),
        pl.when(idle).then(
            pl.format(
                "utilization {}% against {}% for {} peers",
                (pl.col("utilization") * 100).round(0).cast(pl.Int64),
                (pl.col("peer_utilization") * 100).round(0).cast(pl.Int64),
                pl.col("gpu_model"),
            )
        ),
        separator="; ",
        ignore_nulls=True,
    )
    return rows.with_columns(
        underperformer=(slow | idle).fill_null(False),
        flag_reason=pl.when(reasons != "").then(reasons),
        percentile_sample_rate=pl.lit(rate, pl.Int64),
    ).select(
        "worker_id",
        "gpu_model",
        "jobs",
        "frames",
        "gpu_hours",
        "utilization",
        "frames_per_gpu_hour",
        "relative_time_per_frame",
        "avg_vram_peak_mb",
        "vram_total_mb",
        "vram_headroom_pct",
        "efficiency_rank",
        "underperformer",
        "flag_reason",
        "percentile_sample_rate",
    )


def _cells(lake: Path, filters: Filters, jobs: int) -> tuple[pl.DataFrame, int]:
    """The matched-work cells (MEDIANS) of the jobs in `filters`, from the job sample where it
    holds MIN_CELL_SAMPLE jobs a cell on average, else from every job; and the sample's rate."""
    where, params = filters.where("jobs")
    source, rate = job_source(lake, filters, jobs)
    if rate > 1:
        sql = MEDIANS.format(source=source, where=where, rate=rate)
        cells = frame(lake, sql, params, within=filters)
        if cells.height and cells.get_column("jobs").sum() / rate >= MIN_CELL_SAMPLE * cells.height:
            return cells, rate
    sql = MEDIANS.format(source="jobs", where=where, rate=1)
    return frame(lake, sql, params, within=filters), 1


def _peer_median(rows: pl.DataFrame, column: str) -> pl.Series:
    """Per row, the median of `column` over the other rows with the same gpu_model."""
    values = rows.select("worker_id", "gpu_model", column)
    peers = (
        values.join(values, on="gpu_model", suffix="_peer")
        .filter(pl.col("worker_id") != pl.col("worker_id_peer"))
        .group_by("worker_id")
        .agg(pl.col(f"{column}_peer").median().alias("_median"))
    )
    return values.join(peers, on="worker_id", how="left", maintain_order="left").get_column(
        "_median"
    )


def _ratio(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """a / b as a float, null where b is null or 0 (SQL's a / nullif(b, 0))."""
    return pl.when(b != 0).then(a.cast(pl.Float64) / b)


def _relative(cells: pl.DataFrame, same_model: bool) -> pl.DataFrame:
    """Per worker with peers on matched work (and the same GPU model when `same_model`): ratio,
    the mean over its cells of its median time per frame / the median of the other workers'
    medians there, weighted by its jobs; jobs, its jobs in those cells."""
    keys = [*MATCH, "gpu_model"] if same_model else MATCH
    if same_model:  # a cell without a GPU model has no same-model peer
        cells = cells.filter(pl.col("gpu_model").is_not_null())
    one_each = pl.col("worker_id").n_unique().over("_group") == pl.len().over("_group")
    cells = (
        cells.with_columns(_group=pl.struct(keys).rank("dense"))
        .with_columns(
            _simple=one_each & pl.col("time_per_frame_ms").is_not_null().all().over("_group")
        )
        .sort("_group", "time_per_frame_ms", nulls_last=True)
    )
    group = cells.get_column("_group").to_numpy()
    workers = cells.get_column("worker_id").to_numpy()
    values = cells.get_column("time_per_frame_ms").cast(pl.Float64).fill_null(np.nan).to_numpy()
    has_peers, peer = _sorted_peer_medians(group, values)
    # A group with a worker's two cells (two GPU models) or a missing value, one at a time.
    bounds = np.flatnonzero(np.diff(group, prepend=-1, append=-1))
    simple = cells.get_column("_simple").to_numpy()
    for a, b in itertools.pairwise(bounds):
        if not simple[a]:
            has_peers[a:b], peer[a:b] = _others_median(workers[a:b], values[a:b])
    matched = (
        cells.with_columns(peer=pl.Series(peer).fill_nan(None))
        .filter(pl.Series(has_peers))
        .with_columns(weighted=pl.col("jobs") * _ratio(pl.col("time_per_frame_ms"), pl.col("peer")))
    )
    return matched.group_by("worker_id").agg(
        ratio=pl.when(pl.col("weighted").is_not_null().any()).then(
            pl.col("weighted").sum() / pl.col("jobs").sum()
        ),
        jobs=pl.col("jobs").sum().cast(pl.Int64),
    )


def _sorted_peer_medians(group: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, sorted by group then value, where each worker has one cell of its group and
    every value is known: whether its group has another cell, and the median of the other
    cells' values, as SQL's median (the mean of the two middle values of an even count) would
    give it. The k-th of the others is the k-th or (k+1)-th of the whole sorted group, so every
    group is read off by position at once."""
    rows = len(values)
    starts = np.flatnonzero(np.diff(group, prepend=-1))  # groups are ranks from 1
    sizes = np.diff(np.append(starts, rows))
    start, rest = np.repeat(starts, sizes), np.repeat(sizes, sizes) - 1
    rank = np.arange(rows) - start

    def kth(k: np.ndarray) -> np.ndarray:
        return values[np.clip(start + np.where(k < rank, k, k + 1), 0, max(rows - 1, 0))]

    middle = (kth((rest - 1) // 2) + kth(rest // 2)) / 2
    return rest > 0, np.where(rest > 0, middle, np.nan)


def _others_median(workers: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of one group: whether another worker has a cell there, and the median of those
    cells' values (NaN when none has a value), as SQL's median would give it."""
    others = workers[:, None] != workers[None, :]
    known = ~np.isnan(values)
    medians = [
        float(np.median(values[mask & known])) if (mask & known).any() else np.nan
        for mask in others
    ]
    return others.any(axis=1), np.array(medians, dtype=np.float64)
