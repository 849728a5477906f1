"""worker_summary against a tiny hand-made fleet, every figure worked out by hand below."""

from __future__ import annotations

import zlib
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lake.layout import ensure_lake
from lake.sample import SAMPLE_RATE
from queries import base, cells, workers
from queries.base import Filters
from tests.lakes import write_events
from tests.queries.conftest import kind_cells

L40S, H100, RTX = "NVIDIA L40S", "NVIDIA H100 80GB HBM3", "NVIDIA RTX 4090"
DAY = "2025-06-01"
_ids = iter(range(10_000))


def _job(worker: str, gpu: str, workflow: str, tier: str, tpf: int, **kw: Any) -> dict:
    n = next(_ids)
    return {
        "event_type": "job.completed",
        "event_id": f"j{n}",
        "occurred_at": f"{DAY}T10:{n % 60:02d}:00Z",
        "job_id": f"job-{n}",
        "workflow_id": workflow,
        "worker_id": worker,
        "gpu_model": gpu,
        "resolution_tier": tier,
        "frame_count": 10,
        "total_gpu_time_ms": tpf * 10,
        "time_per_frame_ms": tpf,
    } | kw


def _samples(worker: str, **seconds: int) -> list[dict]:
    """Samples of 10 s: `generating=30` is three generating samples."""
    return [
        {
            "event_type": "worker.sample",
            "event_id": f"s{next(_ids)}",
            "occurred_at": f"{DAY}T11:00:00Z",
            "worker_id": worker,
            "state": state,
            "interval_s": 10,
            "vram_total_mb": 80_000 if worker == "h1" else None,
        }
        for state, total in seconds.items()
        for _ in range(total // 10)
    ]


# Cells (workflow, tier) and each worker's median time per frame there:
#   A (wf-a, 1080p): w1 110 (100, 120), w2 100, w3 110 (90, 110, 130), w4 200 (20 jobs), h1 50
#   B (wf-b, 1080p): w1 50, w2 60, w4 100
#   C (wf-a, 4k):    w1 400 (at 23:30 -01:00, i.e. on the next UTC day), h1 200
#   D (wf-c, 1080p): r1 300, alone
EVENTS: list[dict] = [
    _job("w1", L40S, "wf-a", "1080p", 100, vram_peak_mb=23_000, vram_total_mb=46_000),
    _job("w1", L40S, "wf-a", "1080p", 120, vram_peak_mb=34_500, vram_total_mb=46_000),
    _job("w1", L40S, "wf-b", "1080p", 50),
    _job("w1", L40S, "wf-a", "4k", 400, occurred_at=f"{DAY}T23:30:00-01:00"),
    _job("w2", L40S, "wf-a", "1080p", 100),
    _job("w2", L40S, "wf-b", "1080p", 60),
    *[_job("w3", L40S, "wf-a", "1080p", tpf) for tpf in (90, 110, 130)],
    *[_job("w4", L40S, "wf-a", "1080p", 200) for _ in range(20)],
    _job("w4", L40S, "wf-b", "1080p", 100),
    _job("h1", H100, "wf-a", "1080p", 50, vram_peak_mb=60_000),
    _job("h1", H100, "wf-a", "4k", 200),
    _job("r1", RTX, "wf-c", "1080p", 300, vram_total_mb=24_000),
    *_samples("w1", generating=30, idle=10, offline=100),
    *_samples("w2", generating=30, idle=10),
    *_samples("w3", generating=40),
    *_samples("w4", generating=10, idle=30),
    *_samples("h1", generating=10, idle=10),
]

COLUMNS = [
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
]
SCHEMA = pl.Schema(
    {
        "worker_id": pl.String(),
        "gpu_model": pl.String(),
        "jobs": pl.Int64(),
        "frames": pl.Int64(),
        "gpu_hours": pl.Float64(),
        "utilization": pl.Float64(),
        "frames_per_gpu_hour": pl.Float64(),
        "relative_time_per_frame": pl.Float64(),
        "avg_vram_peak_mb": pl.Float64(),
        "vram_total_mb": pl.Int64(),
        "vram_headroom_pct": pl.Float64(),
        "efficiency_rank": pl.Int64(),
        "underperformer": pl.Boolean(),
        "flag_reason": pl.String(),
        "percentile_sample_rate": pl.Int64(),
    }
)
HOUR_MS = 3_600_000
W4_REASON = (
    "82% slower than NVIDIA L40S peers on matched work (21 jobs); "
    "utilization 25% against 75% for NVIDIA L40S peers"
)

# Same-model peers, the other L40S workers' medians per cell (h1 and r1 have none):
#   w1: A 110 / median(100, 110, 200) = 1.0 (2 jobs), B 50 / median(60, 100) = 50 / 80 (1 job)
#       -> (2 * 1.0 + 0.625) / 3 = 0.875
#   w2: A 100 / median(110, 110, 200) = 10 / 11, B 60 / median(50, 100) = 0.8 -> 47 / 55
#   w3: A 110 / median(110, 100, 200) = 1.0
#   w4: A 200 / 110 (20 jobs), B 100 / median(50, 60) = 100 / 55 -> 20 / 11, 21 matched jobs
# The whole fleet (efficiency rank), the other workers' medians per cell:
#   h1: A 50 / median(110, 100, 110, 200) = 50 / 110, C 200 / 400 -> 0.477   rank 1
#   w2: as above, no other model in its cells -> 0.855                       rank 2
#   w3: A 110 / median(110, 100, 200, 50) = 110 / 105 -> 1.048                rank 3
#   w1: (2 * 110 / 105 + 0.625 + C 400 / 200) / 4 -> 1.180                    rank 4
#   w4: (20 * 200 / 105 + 100 / 55) / 21 -> 1.901                             rank 5
# Utilization: w1 30 / 40 (offline left out), w2 30 / 40, w3 40 / 40, w4 10 / 40, h1 10 / 20;
# w4 is below 0.75 x the median of its peers (0.75, 0.75, 1.0).
EXPECTED = {
    "worker_id": ["h1", "r1", "w1", "w2", "w3", "w4"],
    "gpu_model": [H100, RTX, L40S, L40S, L40S, L40S],
    "jobs": [2, 1, 4, 2, 3, 21],
    "frames": [20, 10, 40, 20, 30, 210],
    # GPU ms: h1 500 + 2000, r1 3000, w1 1000 + 1200 + 500 + 4000, w2 1000 + 600,
    # w3 900 + 1100 + 1300, w4 20 x 2000 + 1000.
    "gpu_hours": [x / HOUR_MS for x in (2_500, 3_000, 6_700, 1_600, 3_300, 41_000)],
    "utilization": [0.5, None, 0.75, 0.75, 1.0, 0.25],
    "frames_per_gpu_hour": [
        20 * HOUR_MS / 2_500,
        10 * HOUR_MS / 3_000,
        40 * HOUR_MS / 6_700,
        20 * HOUR_MS / 1_600,
        30 * HOUR_MS / 3_300,
        210 * HOUR_MS / 41_000,
    ],
    "relative_time_per_frame": [None, None, 0.875, 47 / 55, 1.0, 20 / 11],
    # w1: (23000 + 34500) / 2; h1's GPU memory comes from its samples.
    "avg_vram_peak_mb": [60_000.0, None, 28_750.0, None, None, None],
    "vram_total_mb": [80_000, 24_000, 46_000, None, None, None],
    # 1 - 60000 / 80000, r1 has no VRAM monitoring, 1 - 34500 / 46000.
    "vram_headroom_pct": [0.25, None, 0.25, None, None, None],
    "efficiency_rank": [1, None, 4, 2, 3, 5],
    "underperformer": [False, False, False, False, False, True],
    "flag_reason": [None, None, None, None, None, W4_REASON],
    "percentile_sample_rate": [1] * 6,
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("workers") / "lake", EVENTS)


def _approx(rows: list) -> list:
    """`rows` (tuples or values) with every float compared approximately."""
    if rows and not isinstance(rows[0], tuple):
        return [pytest.approx(v) if isinstance(v, float) else v for v in rows]
    return [tuple(_approx(list(r))) for r in rows]


def test_worker_summary(lake: Path) -> None:
    got = workers.worker_summary(lake, Filters())
    assert got.schema == SCHEMA
    assert {c: got.get_column(c).to_list() for c in got.columns} == {
        c: _approx(values) for c, values in EXPECTED.items()
    }


def test_a_day_filter_drops_the_job_of_the_next_utc_day(lake: Path) -> None:
    # Without w1's 4k job (00:30 UTC on 06-02): w1's fleet ratio is (2 * 110 / 105 + 0.625) / 3
    # = 0.907, ahead of w3 (1.048); h1 keeps only A (50 / 110).
    got = workers.worker_summary(lake, Filters(end=date(2025, 6, 1)))
    assert got.select("worker_id", "jobs", "relative_time_per_frame", "efficiency_rank").rows() == (
        _approx(
            [
                ("h1", 2, None, 1),
                ("r1", 1, None, None),
                ("w1", 3, 0.875, 3),
                ("w2", 2, 47 / 55, 2),
                ("w3", 3, 1.0, 4),
                ("w4", 21, 20 / 11, 5),
            ]
        )
    )


def test_too_few_matched_jobs_do_not_make_a_slow_worker(lake: Path) -> None:
    # Only wf-b: w4 is 100 / 55 of its peers but on one job; its low utilization still flags it.
    got = workers.worker_summary(lake, Filters(workflows=("wf-b",)))
    assert got.select("worker_id", "relative_time_per_frame", "flag_reason").rows() == _approx(
        [
            ("w1", 50 / 80, None),
            ("w2", 60 / 75, None),
            ("w4", 100 / 55, "utilization 25% against 75% for NVIDIA L40S peers"),
        ]
    )


def test_ties_share_an_efficiency_rank(tmp_path: Path) -> None:
    # x and y: 100 / median(100, 150) = 0.8; z: 150 / median(100, 100) = 1.5.
    events = [_job(w, L40S, "wf-a", "720p", tpf) for w, tpf in (("x", 100), ("y", 100), ("z", 150))]
    got = workers.worker_summary(write_events(tmp_path / "lake", events), Filters())
    assert got.select("worker_id", "relative_time_per_frame", "efficiency_rank").rows() == [
        ("x", 0.8, 1),
        ("y", 0.8, 1),
        ("z", 1.5, 3),
    ]


@pytest.mark.parametrize("filters", [Filters(start=date(2025, 7, 1)), Filters(workers=("no",))])
def test_nothing_in_range_is_an_empty_typed_frame(lake: Path, filters: Filters) -> None:
    got = workers.worker_summary(lake, filters)
    assert got.is_empty() and got.schema == SCHEMA


def test_an_empty_lake_is_an_empty_typed_frame(tmp_path: Path) -> None:
    got = workers.worker_summary(ensure_lake(tmp_path / "lake", create=True), Filters())
    assert got.is_empty() and got.schema == SCHEMA


# The peers' medians as SQL states them: a self-join of the cells (what worker_summary ran before
# it computed them in numpy, 1.8 s over 10M jobs).
PEERS_BY_JOIN = """
select c.worker_id, c.jobs, c.tpf / nullif(median(p.tpf), 0) as ratio
from cells c
join cells p
    on p.workflow_id = c.workflow_id
    and p.resolution_tier is not distinct from c.resolution_tier
    and p.worker_id <> c.worker_id
    {same_model}
group by c.worker_id, c.workflow_id, c.resolution_tier, c.gpu_model, c.jobs, c.tpf
"""
RELATIVE_BY_JOIN = """
select worker_id, sum(jobs * ratio) / sum(jobs) as ratio, cast(sum(jobs) as bigint) as jobs
from ({peers})
group by worker_id
order by worker_id
"""


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("same_model", [True, False])
def test_peer_medians_equal_the_self_join(seed: int, same_model: bool) -> None:
    import random

    import duckdb

    rng = random.Random(seed)
    rows = []
    for w in range(rng.randint(2, 14)):
        # A worker changes GPU now and then: two cells of one worker can share a (workflow, tier).
        models = rng.sample([L40S, H100, None], rng.randint(1, 2))
        for workflow in rng.sample(["wf-a", "wf-b", "wf-c"], rng.randint(1, 3)):
            for tier in rng.sample(["1080p", "4k", None], rng.randint(1, 2)):
                for model in models:
                    tpf = float(rng.choice([0, 50, 100, 100, 120, 200, rng.randint(1, 500)]))
                    rows.append((f"w{w}", model, workflow, tier, rng.randint(1, 30), tpf))
    cells = pl.DataFrame(
        rows,
        schema=["worker_id", "gpu_model", "workflow_id", "resolution_tier", "jobs", "tpf"],
        orient="row",
    )
    con = duckdb.connect()
    con.register("cells", cells.to_arrow())
    same = "and p.gpu_model = c.gpu_model" if same_model else ""
    sql = RELATIVE_BY_JOIN.format(peers=PEERS_BY_JOIN.format(same_model=same))
    expected = con.execute(sql).fetchall()
    got = workers._relative(cells.rename({"tpf": "time_per_frame_ms"}), same_model)
    got_rows = got.sort("worker_id").select("worker_id", "ratio", "jobs").rows()
    assert [(w, n) for w, _, n in got_rows] == [(w, n) for w, _, n in expected]
    for (_, ratio, _), (_, want, _) in zip(got_rows, expected, strict=True):
        assert ratio == pytest.approx(want, rel=1e-12) if want is not None else ratio is None


# --- the rollups and the job sample -------------------------------------------------------------


@pytest.mark.parametrize("kind", [cells.WORKER_CELL_KIND, cells.SAMPLE_CELL_KIND])
@pytest.mark.parametrize(
    "filters",
    [
        Filters(),
        Filters(end=date(2025, 6, 1)),
        Filters(workers=("w1", "h1")),
        Filters(workflows=("wf-b",)),  # not a dimension of the worker cells: from the jobs
    ],
)
def test_cached_worker_cells_equal_the_cells_of_their_rows(
    tmp_path: Path, kind: cells.Kind, filters: Filters
) -> None:
    lake = write_events(tmp_path / "lake", EVENTS)
    keys = ["date", "worker_id", *(["gpu_model"] if kind is cells.WORKER_CELL_KIND else [])]

    def read(cached: bool) -> pl.DataFrame:
        return kind_cells(lake, filters, kind, keys, cached)

    cells.cells(lake, Filters(), kind)  # caches the month (June 2025, long settled)
    assert list((lake / "_meta" / "rollups" / kind.rollup.name).rglob("*.parquet"))
    got = read(cached=True)
    assert got.height > 0
    assert_frame_equal(got, read(cached=False))


def test_a_new_job_in_a_cached_month_counts_at_once(tmp_path: Path) -> None:
    lake = write_events(tmp_path / "lake", EVENTS)
    before = workers.worker_summary(lake, Filters())  # caches the worker rollups
    write_events(lake, [_job("r1", RTX, "wf-c", "1080p", 100), *_samples("r1", idle=10)])
    after = workers.worker_summary(lake, Filters()).filter(pl.col("worker_id") == "r1")
    assert after.select("jobs", "frames", "utilization").row(0) == (2, 20, 0.0)
    assert before.filter(pl.col("worker_id") == "r1").get_column("jobs").to_list() == [1]


def _sampled_jobs(worker: str, sampled: int, others: int, tpf: int, sampled_tpf: int) -> list:
    """Jobs of `worker` on one cell: `sampled` of them in the job sample (their event ids picked
    by lake.sample's rule) with time per frame `sampled_tpf`, `others` outside it with `tpf`."""
    jobs, ids = [], iter(range(10**6))
    while sampled or others:
        event_id = f"{worker}-{next(ids)}"
        kept = zlib.crc32(event_id.encode()) % SAMPLE_RATE == 0
        if (kept and sampled) or (not kept and others):
            value = sampled_tpf if kept else tpf
            jobs.append(_job(worker, L40S, "wf-a", "1080p", value, event_id=event_id))
            sampled, others = (sampled - 1, others) if kept else (sampled, others - 1)
    return jobs


@pytest.mark.parametrize("min_cell_sample, rate", [(2, 16), (3, 1)])
def test_cell_medians_come_from_the_job_sample_where_it_holds_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, min_cell_sample: int, rate: int
) -> None:
    # a's two sampled jobs run at 200 ms a frame, its 30 others at 100; b and c always at 100.
    # On the sample a is 200 / 100 = 2x its peers, on every job 1.0x.
    events = [
        *_sampled_jobs("a", 2, 30, 100, 200),
        *_sampled_jobs("b", 2, 30, 100, 100),
        *_sampled_jobs("c", 2, 30, 100, 100),
    ]
    lake = write_events(tmp_path / "lake", events)
    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    monkeypatch.setattr(workers, "MIN_CELL_SAMPLE", min_cell_sample)
    got = workers.worker_summary(lake, Filters())
    assert got.get_column("jobs").to_list() == [32, 32, 32]  # counted on every job either way
    assert got.get_column("percentile_sample_rate").to_list() == [rate] * 3
    a = got.row(0, named=True)
    if rate == 1:
        assert (a["relative_time_per_frame"], a["underperformer"]) == (1.0, False)
    else:
        assert a["relative_time_per_frame"] == 2.0
        assert (
            a["flag_reason"] == "100% slower than NVIDIA L40S peers on matched work (about 32 jobs)"
        )
