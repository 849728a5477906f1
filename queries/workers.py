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

from queries.base import Filters, frame

#: Underperformer: at least this much slower than same-model peers on matched work ...
SLOW_RATIO = 1.2
#: ... over at least this many matched jobs (fewer say too little to flag a worker).
MIN_MATCHED_JOBS = 20
#: Underperformer: utilization below this share of the median of its same-model peers.
LOW_UTILIZATION_SHARE = 0.75

# One row per cell: a worker, GPU model, workflow and resolution tier, with the worker's median
# time per frame there and the sums its totals add up; the only scan of `jobs`.
CELLS = """
select worker_id, gpu_model, workflow_id, resolution_tier,
    count(*) as jobs,
    median(time_per_frame_ms) as time_per_frame_ms,
    max(occurred_at) as last_at,
    cast(sum(frame_count) as bigint) as frames,
    sum(total_gpu_time_ms) as gpu_time_ms,
    sum(vram_peak_mb) as vram_peak_sum,
    count(vram_peak_mb) as vram_peaks,
    max(vram_peak_mb) as max_vram_peak_mb,
    max(vram_total_mb) as vram_total_mb
from jobs
where {where}
group by worker_id, gpu_model, workflow_id, resolution_tier
"""
SAMPLES = """
select worker_id,
    sum(interval_s) filter (where state = 'generating') as generating_s,
    sum(interval_s) filter (where state in ('generating', 'idle')) as active_s,
    max(vram_total_mb) as samples_vram_total_mb
from worker_samples
where {where}
group by worker_id
"""
#: Matched work: cells of the same workflow and resolution tier (a missing tier is a tier).
MATCH = ["workflow_id", "resolution_tier"]


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

    SQL groups the jobs into cells and the samples per worker; the peers' medians are worked
    out here over the cells (a few thousand rows): as a self-join in SQL they cost more than
    the scan of the jobs (1.8 s of 2.8 s over 10M jobs).
    """
    jobs_where, jobs_params = filters.where("jobs")
    samples_where, samples_params = filters.where("worker_samples")
    cells = frame(lake, CELLS.format(where=jobs_where), jobs_params)
    samples = frame(lake, SAMPLES.format(where=samples_where), samples_params)
    relative = _relative(cells, same_model=True).rename(
        {"ratio": "relative_time_per_frame", "jobs": "matched_jobs"}
    )
    fleet = _relative(cells, same_model=False).select("worker_id", fleet_time_per_frame="ratio")
    vram_total = pl.coalesce("vram_total_mb", "samples_vram_total_mb")
    rows = (
        _totals(cells)
        .join(samples, on="worker_id", how="left")
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
                "{}% slower than {} peers on matched work ({} jobs)",
                ((pl.col("relative_time_per_frame") - 1) * 100).round(0).cast(pl.Int64),
                pl.col("gpu_model"),
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
    )


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


def _totals(cells: pl.DataFrame) -> pl.DataFrame:
    """Per worker, its cells added up; its GPU model is the one of its latest job that sent one."""
    models = (
        cells.filter(pl.col("gpu_model").is_not_null())
        .sort("last_at")
        .group_by("worker_id")
        .agg(pl.col("gpu_model").last())
    )
    peaks = pl.col("vram_peaks").sum()
    sums = cells.group_by("worker_id").agg(
        jobs=pl.col("jobs").sum(),
        frames=pl.col("frames").sum(),
        gpu_hours=pl.col("gpu_time_ms").sum() / 3_600_000.0,
        avg_vram_peak_mb=pl.when(peaks > 0).then(pl.col("vram_peak_sum").sum() / peaks),
        max_vram_peak_mb=pl.col("max_vram_peak_mb").max(),
        vram_total_mb=pl.col("vram_total_mb").max(),
    )
    return sums.join(models, on="worker_id", how="left")


def _relative(cells: pl.DataFrame, same_model: bool) -> pl.DataFrame:
    """Per worker with peers on matched work (and the same GPU model when `same_model`): ratio,
    the mean over its cells of its median time per frame / the median of the other workers'
    medians there, weighted by its jobs; jobs, its jobs in those cells."""
    keys = [*MATCH, "gpu_model"] if same_model else MATCH
    if same_model:  # a cell without a GPU model has no same-model peer
        cells = cells.filter(pl.col("gpu_model").is_not_null())
    cells = cells.with_columns(_group=pl.struct(keys).rank("dense")).sort("_group")
    group = cells.get_column("_group").to_numpy()
    workers = cells.get_column("worker_id").to_numpy()
    values = cells.get_column("time_per_frame_ms").cast(pl.Float64).fill_null(np.nan).to_numpy()
    peer = np.full(len(values), np.nan)
    has_peers = np.zeros(len(values), dtype=bool)
    bounds = np.flatnonzero(np.diff(group, prepend=-1, append=-1))
    for a, b in itertools.pairwise(bounds):
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


def _others_median(workers: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of one group: whether another worker has a cell there, and the median of those
    cells' values (NaN when none has a value), as SQL's median (the mean of the two middle
    values of an even count) would give it."""
    n = len(values)
    others = workers[:, None] != workers[None, :]
    has_peers = others.any(axis=1)
    known = ~np.isnan(values)
    if n > 1 and len(set(workers)) == n and known.all():
        # One cell a worker: the median of the sorted values without the cell's own, read off
        # the sorted array by position (k-th of the rest is k-th or (k+1)-th of all).
        order = np.argsort(values, kind="stable")
        ranked, rank = values[order], np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        rest = n - 1

        def kth(k: int) -> np.ndarray:
            return ranked[np.where(k < rank, k, k + 1)]

        middle = kth(rest // 2) if rest % 2 else (kth(rest // 2 - 1) + kth(rest // 2)) / 2
        return has_peers, middle
    medians = [
        float(np.median(values[mask & known])) if (mask & known).any() else np.nan
        for mask in others
    ]
    return has_peers, np.array(medians, dtype=np.float64)
