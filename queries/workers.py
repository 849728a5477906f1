"""Worker queries: speed against same-model peers on matched work, utilization, throughput,
VRAM headroom and the underperformer flag.

Reads the `jobs` and `worker_samples` views only; knows nothing of Streamlit. Matched work is the
same workflow at the same resolution tier, so a worker that gets heavier jobs is not called slow.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from queries.base import Filters, frame

#: Underperformer: at least this much slower than same-model peers on matched work ...
SLOW_RATIO = 1.2
#: ... over at least this many matched jobs (fewer say too little to flag a worker).
MIN_MATCHED_JOBS = 20
#: Underperformer: utilization below this share of the median of its same-model peers.
LOW_UTILIZATION_SHARE = 0.75

# One row per cell of a worker (see `cells`) that other workers share: its time per frame over
# the median of theirs; `{same_model}` keeps the workers with the same GPU model.
PEERS = """    select c.worker_id, c.jobs,
        c.time_per_frame_ms / nullif(median(p.time_per_frame_ms), 0) as ratio
    from cells c
    join cells p
        on p.workflow_id = c.workflow_id
        and p.resolution_tier is not distinct from c.resolution_tier
        and p.worker_id <> c.worker_id
        {same_model}
    group by c.worker_id, c.workflow_id, c.resolution_tier, c.gpu_model, c.jobs,
        c.time_per_frame_ms"""

# `cells`: one row per worker, GPU model, workflow and resolution tier, with the worker's median
# time per frame there; the only scan of `jobs`, and the per-worker totals add its cells up. Each
# cell is compared with the median of the other workers' medians in the same cell: of the same
# GPU model (`relative`) and of the whole fleet (`fleet`, behind the efficiency ranking). A
# worker's ratio is the mean of its cell ratios weighted by its jobs. `cells` is materialized:
# inlined, each of its four readers would group the jobs again.
WORKER_SUMMARY = """
with cells as materialized (
    select worker_id, gpu_model, workflow_id, resolution_tier,
        count(*) as jobs,
        median(time_per_frame_ms) as time_per_frame_ms,
        max(occurred_at) as last_at,
        sum(frame_count) as frames,
        sum(total_gpu_time_ms) as gpu_time_ms,
        sum(vram_peak_mb) as vram_peak_sum,
        count(vram_peak_mb) as vram_peaks,
        max(vram_peak_mb) as max_vram_peak_mb,
        max(vram_total_mb) as vram_total_mb
    from jobs
    where {jobs_where}
    group by worker_id, gpu_model, workflow_id, resolution_tier
),
totals as (
    select worker_id,
        arg_max(gpu_model, last_at) filter (where gpu_model is not null) as gpu_model,
        cast(sum(jobs) as bigint) as jobs,
        cast(sum(frames) as bigint) as frames,
        sum(gpu_time_ms) / 3600000.0 as gpu_hours,
        sum(vram_peak_sum) / nullif(sum(vram_peaks), 0) as avg_vram_peak_mb,
        max(max_vram_peak_mb) as max_vram_peak_mb,
        max(vram_total_mb) as vram_total_mb
    from cells
    group by worker_id
),
samples as (
    select worker_id,
        sum(interval_s) filter (where state = 'generating') as generating_s,
        sum(interval_s) filter (where state in ('generating', 'idle')) as active_s,
        max(vram_total_mb) as vram_total_mb
    from worker_samples
    where {samples_where}
    group by worker_id
),
model_peers as (
{model_peers}
),
fleet_peers as (
{fleet_peers}
),
relative as (
    select worker_id, sum(jobs * ratio) / sum(jobs) as relative_time_per_frame,
        cast(sum(jobs) as bigint) as matched_jobs
    from model_peers
    group by worker_id
),
fleet as (
    select worker_id, sum(jobs * ratio) / sum(jobs) as fleet_time_per_frame
    from fleet_peers
    group by worker_id
)
select t.worker_id, t.gpu_model, t.jobs, t.frames, t.gpu_hours,
    s.generating_s / nullif(s.active_s, 0) as utilization,
    t.frames / nullif(t.gpu_hours, 0) as frames_per_gpu_hour,
    r.relative_time_per_frame,
    r.matched_jobs,
    f.fleet_time_per_frame,
    t.avg_vram_peak_mb,
    coalesce(t.vram_total_mb, s.vram_total_mb) as vram_total_mb,
    1 - t.max_vram_peak_mb / nullif(coalesce(t.vram_total_mb, s.vram_total_mb), 0)
        as vram_headroom_pct
from totals t
left join samples s using (worker_id)
left join relative r using (worker_id)
left join fleet f using (worker_id)
order by t.worker_id
"""


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
    """
    jobs_where, jobs_params = filters.where("jobs")
    samples_where, samples_params = filters.where("worker_samples")
    peers = {
        "model_peers": PEERS.format(same_model="and p.gpu_model = c.gpu_model"),
        "fleet_peers": PEERS.format(same_model=""),
    }
    sql = WORKER_SUMMARY.format(jobs_where=jobs_where, samples_where=samples_where, **peers)
    rows = frame(lake, sql, [*jobs_params, *samples_params])
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
