"""A synthetic lake for the app benchmark: a year of a large render farm, drawn with numpy and
published through `lake.writer.LakeWriter`, one file per table and day (as compaction leaves it).

The cast is the demo studio's (ingest/demo_studio.py): its 20 workflows and their versions, GPU
models, projects, scene types and pipeline stages, on a fleet scaled up to 192 workers. Time per
frame is lognormal around each workflow's speed on each GPU; failures (~3%) follow the demo's
rules (OOM when a job's real footprint passes the card, timeouts, crashes ...), retried attempts
included; alerts come from `lake.alerting.evaluate_jobs` with the lake's own threshold store.
Each day is drawn from its own seeded generator, so days build in parallel and a seed is a lake.

10M jobs are 10M job ids: ~9.92M completed rows and ~365k failed attempts (~3.6%, retries on
top), ~45M stage rows (2-5 per attempt), ~20M worker samples (one per worker every 5 minutes),
~1.1M reviews, ~58k deliveries, ~7k quarantined messages, ~420k alerts: ~1.9 GB of Parquet,
built in ~14 minutes with 2 processes on 2 busy cores (~2.4 s per day, half of it the writer).
A finished lake carries a marker in lake.json (`bench_lake`); `ensure` reuses a lake whose marker
matches and rebuilds anything else.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ingest import demo_studio as s
from lake import tables as t
from lake.alerting import evaluate_jobs
from lake.layout import read_meta, write_meta
from lake.sample import backfill
from lake.thresholds import Threshold, load_enabled, save_threshold
from lake.views import file_max_ingested_at
from lake.writer import LakeWriter

#: Bump when the drawn data changes: a lake with another version is rebuilt.
GENERATOR_VERSION = 3
MARKER = "bench_lake"
BUILDING = "_bench_building"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TIMEOUT_MS = HOUR_MS
SAMPLE_MS = 300_000
#: Fleet: the demo's 4:6:6 mix of H100, L40S and RTX 4090, twelve times over.
FLEET = ((s.H100, 48), (s.L40S, 72), (s.RTX_4090, 72))
#: Indexes into the fleet (worker_id = gpu-<index + 1>): gpu-061, an L40S, throttles (the demo's
#: gpu-08); gpu-192 has no VRAM monitoring; gpu-145 onwards report through the EU scheduler.
SLOW_WORKER, UNMONITORED_WORKER, EU_FROM = 60, 191, 144
CHARACTERS_PER_DAY = 200
CHARACTER_DAYS = 20  # a character is in production this long
SCENES = 16  # scenes per character
POST_SHARE = 0.17  # jobs that are post-processing follow-ups
REVIEW_SHARE = 0.11  # reviews per completed job
REVIEWERS = 60
QUARANTINE_PER_DAY = 20
#: Failure types in the order the demo checks them, and the cumulative chance of each
#: (roughly twice the demo's rates, for ~3% failed attempts with OOMs by memory on top).
ERRORS = ("oom", "timeout", "crash", "safety_block", "api_error", "invalid_input")
ERROR_CUTS = (0.0006, 0.005, 0.017, 0.023, 0.027, 0.029)
RETRYABLE = (0, 1, 2, 4)
MESSAGES = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "watchdog: job exceeded 3600 s wall-clock limit; worker reset",
    "RuntimeError: CUDA error: an illegal memory access was encountered",
    "output blocked by safety checker (nsfw score 0.91 > 0.85)",
    "HTTP 503 from model registry while fetching weights; retry later",
    "no face detected in reference image (det_score 0.00 < 0.50)",
)
THRESHOLDS = (
    Threshold(metric="time_per_frame_ms", warning=15_000.0, critical=22_000.0),
    Threshold(metric="likeness", warning=0.72, critical=0.68),
    Threshold(metric="failure_rate", warning=0.05, critical=0.10),
    # A worker-scoped threshold, on an ordinary L40S.
    Threshold(metric="vram_peak_pct", scope="worker", scope_id="gpu-060", warning=80, critical=90),
)


@dataclass(frozen=True)
class Spec:
    """What a lake is made of; its marker holds these plus the generator version."""

    jobs: int = 10_000_000
    days: int = 365
    seed: int = 2025
    end: date | None = None  # last day; None = yesterday (UTC)

    def marker(self, end: date) -> dict[str, Any]:
        return {"version": GENERATOR_VERSION, "jobs": self.jobs, "days": self.days,
                "seed": self.seed, "end": end.isoformat()}  # fmt: skip


def _dated_like_ingest(lake: Path) -> None:
    """Give every file the modification time ingest would have left: its publication, just
    after its newest `ingested_at` (the builder writes a year in minutes). What reads the lake's
    file times (the newest ingestion of `queries.health.table_totals`) then sees a real lake.
    Idempotent; a few seconds for 2,920 files."""
    for table in t.TABLES:
        for path in sorted((lake / table).glob("date=*/*.parquet")):
            newest = file_max_ingested_at(path)
            if newest is not None:
                ns = int(newest.timestamp() * 1e9) + 1_000_000_000
                os.utime(path, ns=(ns, ns))


def ensure(lake: Path, spec: Spec, processes: int = 2, log: Any = print) -> dict[str, Any]:
    """The lake's marker, after building the lake unless a finished one matching `spec` is there.

    Only a missing or empty folder, or one this module built (stale or unfinished), is rebuilt:
    ValueError for any other folder, so a real lake is never deleted.
    """
    found = read_meta(lake).get(MARKER) if (lake / "_meta").is_dir() else None
    if isinstance(found, dict):
        wanted = spec.marker(spec.end or date.fromisoformat(str(found.get("end"))))
        if all(found.get(k) == v for k, v in wanted.items()):
            log(
                f"reusing {lake} (generator v{found['version']}, built in {found['build_s']:.0f} s)"
            )
            if not found.get("dated"):  # built before file times were set
                _dated_like_ingest(lake)
                found = found | {"dated": True}
                write_meta(lake, **{MARKER: found})
            if not found.get("sampled"):  # built before the job sample existed
                log(f"  writing the job sample: {backfill(lake):,} rows")
                _dated_like_ingest(lake)
                found = found | {"sampled": True}
                write_meta(lake, **{MARKER: found})
            return found
    elif lake.exists() and any(lake.iterdir()) and not (lake / BUILDING).exists():
        raise ValueError(f"--lake: {lake} is not a benchmark lake; give a new or empty folder")
    shutil.rmtree(lake, ignore_errors=True)
    end = spec.end or datetime.now(UTC).date() - timedelta(days=1)
    started = time.perf_counter()
    lake.mkdir(parents=True)
    (lake / BUILDING).touch()  # an interrupted build is still ours to delete
    for threshold in THRESHOLDS:  # the store seeds its defaults (VRAM 85/95%) on first open
        save_threshold(lake, threshold)
    days = [end - timedelta(days=spec.days - 1 - i) for i in range(spec.days)]
    counts = _jobs_per_day(spec, days)
    bases = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows: dict[str, int] = {}
    log(f"building {lake}: {spec.jobs:,} jobs over {spec.days} days, {processes} processes ...")
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        args = [(str(lake), spec.seed, spec.days, i, d, int(n), int(b))
                for i, (d, n, b) in enumerate(zip(days, counts, bases, strict=True))]  # fmt: skip
        for done, written in enumerate(pool.map(_build_day, args, chunksize=4), 1):
            for name, n in written.items():
                rows[name] = rows.get(name, 0) + n
            if done % 30 == 0 or done == len(days):
                log(f"  {done}/{len(days)} days, {time.perf_counter() - started:.0f} s")
    log(f"  writing the job sample (as ingest would): {backfill(lake):,} rows")
    marker = spec.marker(end) | {"build_s": time.perf_counter() - started, "rows": rows}
    _dated_like_ingest(lake)
    marker["dated"] = True
    marker["sampled"] = True
    write_meta(lake, **{MARKER: marker})
    (lake / BUILDING).unlink()
    return marker


def _jobs_per_day(spec: Spec, days: list[date]) -> np.ndarray:
    """Jobs per day summing to spec.jobs: weekends quieter, the farm growing over the period."""
    rng = np.random.default_rng([spec.seed, 0])
    weekend = np.array([d.weekday() >= 5 for d in days])
    weights = np.where(weekend, 0.55, 1.0) * np.linspace(0.8, 1.2, len(days))
    weights *= rng.lognormal(0, 0.05, len(days))
    counts = np.floor(spec.jobs * weights / weights.sum()).astype(np.int64)
    counts[np.argsort(-weights)[: spec.jobs - counts.sum()]] += 1
    return counts


# --- the cast ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    wf: list[s.Workflow]
    stage_names: list[str]
    stage_count: np.ndarray  # per workflow
    stage_code: np.ndarray  # workflow x stage index -> stage name code
    stage_share: np.ndarray  # workflow x stage index -> share of frame time (nan: overhead)
    vae_index: np.ndarray  # per workflow, -1 without vae_decode
    gpu: list[s.Gpu]
    worker_gpu: np.ndarray
    slowdown: np.ndarray
    hotter: np.ndarray
    projects: list[s.Project]
    char_project: np.ndarray
    scene_type: np.ndarray  # character x scene -> scene type code
    scene_res: np.ndarray  # character x scene -> resolution code
    scene_wf: np.ndarray  # character x scene -> workflow code
    post_wf: np.ndarray  # scene type code -> follow-up workflow code


SCENE_TYPES = list(s.SCENE_TYPES)
RESOLUTIONS = list(s.RESOLUTIONS)


@functools.cache
def cast(seed: int, days: int) -> Cast:
    wfs = list(s.WORKFLOWS.values())
    index = {w.id: i for i, w in enumerate(wfs)}
    stages = [_stages(w) for w in wfs]
    names = sorted({n for st in stages for n, _ in st})
    code = np.zeros((len(wfs), 5), np.int64)
    share = np.full((len(wfs), 5), np.nan)
    for i, st in enumerate(stages):
        for j, (n, sh) in enumerate(st):
            code[i, j], share[i, j] = names.index(n), sh
    gpus = [g for g, _ in FLEET]
    worker_gpu = np.repeat(np.arange(len(FLEET)), [n for _, n in FLEET])
    slowdown, hotter = np.ones(len(worker_gpu)), np.zeros(len(worker_gpu))
    slowdown[SLOW_WORKER], hotter[SLOW_WORKER] = s.SLOW_FACTOR, s.SLOW_HOTTER_C
    rng = np.random.default_rng([seed, 1])
    chars = (days + CHARACTER_DAYS + 1) * CHARACTERS_PER_DAY
    projects = list(s.PROJECTS)
    char_project = rng.choice(len(projects), chars, p=_p([p.weight for p in projects]))
    scene_type = rng.choice(len(SCENE_TYPES), (chars, SCENES), p=_p(s.SCENE_TYPES.values()))
    scene_res = np.zeros((chars, SCENES), np.int64)
    for pi, p in enumerate(projects):
        mine = char_project == pi
        levels = [RESOLUTIONS.index(r) for r in p.resolutions]
        drawn = rng.choice(levels, (int(mine.sum()), SCENES), p=_p(p.resolutions.values()))
        scene_res[mine] = drawn
    scene_wf = np.zeros((chars, SCENES), np.int64)
    for ti, stype in enumerate(SCENE_TYPES):
        mine = scene_type == ti
        options = s.SCENE_WORKFLOWS[stype]
        drawn = rng.choice([index[w] for w in options], int(mine.sum()), p=_p(options.values()))
        scene_wf[mine] = drawn
    post_wf = np.array([index[s.FOLLOW_UPS[st][0]] for st in SCENE_TYPES])
    vae = np.array([[n for n, _ in st].index("vae_decode") if any(n == "vae_decode" for n, _ in st)
                    else -1 for st in stages])  # fmt: skip
    return Cast(wfs, names, np.array([len(x) for x in stages]), code, share, vae, gpus,
                worker_gpu, slowdown, hotter, projects, char_project, scene_type, scene_res,
                scene_wf, post_wf)  # fmt: skip


def _p(weights: Any) -> np.ndarray:
    w = np.array(list(weights), dtype=float)
    return w / w.sum()


def _stages(w: s.Workflow) -> list[tuple[str, float]]:
    out = [("load_model", np.nan)] + ([("encode_reference", np.nan)] if w.family != "post" else [])
    return out + list(s.POST_STAGES.get(w.id) or s.FAMILY_STAGES[w.family])


# --- one day ----------------------------------------------------------------------------------


def _build_day(args: tuple[str, int, int, int, date, int, int]) -> dict[str, int]:
    """Draw and publish one day; rows written per table."""
    lake, seed, days, i, day, n, base = args
    tables = draw_day(cast(seed, days), seed, i / days, i, day, n, base)
    thresholds = load_enabled(Path(lake))
    tables["alerts"] = evaluate_jobs(tables["jobs"], tables["job_failures"], thresholds)
    writer = LakeWriter(Path(lake), cached_partitions=8)
    name = f"bench-{day.isoformat()}.parquet"
    return {n_: writer.publish(t.table(n_), day, data, name) for n_, data in tables.items()}


def timestamps(ms: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ms, np.int64) * 1000, type=t.TS)


def fixed_text(*parts: str | tuple[np.ndarray, int]) -> pa.Array:
    """Strings made of literal parts and zero-padded numbers (values, width), built in numpy."""
    n = next(len(p[0]) for p in parts if isinstance(p, tuple))
    columns = []
    for p in parts:
        if isinstance(p, str):
            columns.append(np.broadcast_to(np.frombuffer(p.encode(), np.uint8), (n, len(p))))
        else:
            values, width = np.asarray(p[0], np.int64).copy(), p[1]
            digits = np.empty((n, width), np.uint8)
            for k in range(width - 1, -1, -1):
                digits[:, k] = 48 + values % 10
                values //= 10
            columns.append(digits)
    data = np.ascontiguousarray(np.hstack(columns))
    width = data.shape[1]
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def labels(names: list[str], codes: np.ndarray) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(np.asarray(codes, np.int64)))


def map_array(
    n: int, entries: list[tuple[str, np.ndarray, pa.Array]], item: pa.DataType
) -> pa.Array:
    """A MAP column of `n` rows from (key, rows that have it, their values) in key order."""
    rows = np.concatenate([r for _, r, _ in entries])
    keys = np.concatenate([np.full(len(r), k) for k, (_, r, _) in enumerate(entries)])
    values = pa.concat_arrays([v.cast(item) for _, _, v in entries])
    order = np.argsort(rows, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int32)
    return pa.MapArray.from_arrays(
        pa.array(offsets), labels([k for k, _, _ in entries], keys[order]),
        values.take(pa.array(order)),
    )  # fmt: skip


# --- one day's attempts -------------------------------------------------------------------------

SAMPLERS = sorted({w.sampler for w in s.WORKFLOWS.values()} | {"euler", "dpmpp_2m_sde"})
_SPEC = ("job", "attempt", "char", "scene", "wf", "res", "stype", "post", "min_vram", "steps",
         "cfg", "sampler", "denoise", "lora", "seed")  # fmt: skip


def draw_day(
    c: Cast, seed: int, share: float, i: int, day: date, n: int, base: int
) -> dict[str, pa.Table]:
    """Every table's rows of day `i` (`day`, `share` of the way through the period), whose `n`
    jobs are numbered from `base`."""
    rng = np.random.default_rng([seed, 2, i])
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    runs = [_run(c, rng, _first_attempts(c, rng, i, n, base, start), start, share)]
    while (retried := _retries(rng, runs[-1][0], start)) is not None:
        runs.append(_run(c, rng, retried, start, share))
    att = {k: np.concatenate([r[0][k] for r in runs]) for k in runs[0][0]}
    sizes = np.cumsum([0] + [len(r[0]["job"]) for r in runs])
    stages = {k: np.concatenate([r[1][k] + (sizes[j] if k == "att" else 0)
                                 for j, r in enumerate(runs)]) for k in runs[0][1]}  # fmt: skip
    _score(c, rng, att)
    done, failed = np.flatnonzero(att["err"] < 0), np.flatnonzero(att["err"] >= 0)
    done, failed = done[np.argsort(att["end"][done])], failed[np.argsort(att["end"][failed])]
    return {
        "jobs": _attempt_table(c, t.JOBS, att, done),
        "job_failures": _attempt_table(c, t.JOB_FAILURES, att, failed),
        "job_stages": _stage_table(c, att, stages),
        "worker_samples": _samples(c, rng, att, start),
        "reviews": _reviews(c, rng, att, done, i, start),
        "deliveries": _deliveries(c, rng, i, start),
        "quarantine": _quarantine(rng, i, start),
    }


def _first_attempts(
    c: Cast, rng: np.random.Generator, i: int, n: int, base: int, start: int
) -> dict[str, np.ndarray]:
    """First attempts of the day's jobs: who, what, and when each ends (busier 06-21 UTC)."""
    char = (i + CHARACTER_DAYS) * CHARACTERS_PER_DAY - rng.integers(
        1, CHARACTERS_PER_DAY * CHARACTER_DAYS + 1, n
    )
    scene = rng.integers(0, SCENES, n)
    stype, wf = c.scene_type[char, scene], c.scene_wf[char, scene].copy()
    post = rng.random(n) < POST_SHARE
    wf[post] = c.post_wf[stype[post]]
    hours = rng.choice(24, n, p=_p([1.0 if 6 <= h < 21 else 0.35 for h in range(24)]))
    a = {"job": base + np.arange(n), "attempt": np.ones(n, np.int64), "char": char,
         "scene": scene, "wf": wf, "res": c.scene_res[char, scene], "stype": stype, "post": post,
         "min_vram": np.zeros(n, np.int64),
         "end": start + hours * HOUR_MS + rng.integers(0, HOUR_MS, n)}  # fmt: skip
    steps0 = np.array([w.steps for w in c.wf])[wf]
    cfg0 = np.array([w.cfg for w in c.wf])[wf]
    sampler0 = np.array([SAMPLERS.index(w.sampler) for w in c.wf])[wf]
    a["steps"] = np.where(rng.random(n) < 0.7, steps0,
                          np.maximum(4, steps0 + rng.choice([-5, 5, 10], n)))  # fmt: skip
    a["cfg"] = np.round(cfg0 + rng.choice([-1.0, -0.5, 0.0, 0.0, 0.5, 1.0], n), 1)
    other = rng.choice([SAMPLERS.index("euler"), SAMPLERS.index("dpmpp_2m_sde")], n)
    a["sampler"] = np.where(rng.random(n) < 0.85, sampler0, other)
    a["denoise"] = np.round(rng.uniform(0.55, 0.9, n), 2)
    a["lora"] = np.round(rng.uniform(0.4, 1.0, n), 2)
    a["seed"] = rng.integers(0, 2**32, n)
    return a


def _pick_workers(
    c: Cast, rng: np.random.Generator, footprint: np.ndarray, min_vram: np.ndarray
) -> np.ndarray:
    """A worker per attempt, uniformly among those whose card holds the nominal footprint
    (and, for a retry after an OOM or a timeout, a bigger card than the last)."""
    card = np.array([g.vram_mb for g in c.gpu])[c.worker_gpu]
    need = np.maximum(footprint, min_vram)
    out = np.empty(len(need), np.int64)
    for level in np.unique(need):
        rows = np.flatnonzero(need == level)
        fits = np.flatnonzero(card >= level)
        fits = fits if len(fits) else np.flatnonzero(card == card.max())
        out[rows] = fits[rng.integers(0, len(fits), len(rows))]
    return out


def _run(
    c: Cast, rng: np.random.Generator, a: dict[str, np.ndarray], day_start: int, share: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """How each attempt of `a` turns out (the demo's rules, vectorised), and its stages."""
    m, wf, res = len(a["job"]), a["wf"], a["res"]
    mem = np.array([s.RESOLUTIONS[r][1] for r in RESOLUTIONS])[res]
    footprint = (np.array([w.vram_mb for w in c.wf])[wf] * mem).astype(np.int64)
    worker = _pick_workers(c, rng, footprint, a["min_vram"])
    gpu = c.worker_gpu[worker]
    card = np.array([g.vram_mb for g in c.gpu])[gpu]
    live = [max([0] + [j for j, v in enumerate(w.versions) if j and share >= v[1]]) for w in c.wf]
    speed = np.array([w.versions[v][2] for w, v in zip(c.wf, live, strict=True)])[wf]
    steps0 = np.array([w.steps for w in c.wf])[wf]
    gen = _param_kind(c, wf) == 0
    factor = np.where(gen, (a["steps"] / steps0) ** 0.9, 1.0)
    tpf = np.array([w.tpf_ms for w in c.wf])[wf] * np.array([g.speed for g in c.gpu])[gpu]
    tpf *= np.array([s.RESOLUTIONS[r][0] for r in RESOLUTIONS])[res] * speed * factor
    tpf = np.round(tpf * c.slowdown[worker] * rng.lognormal(0, 0.12, m), 1)
    need = (footprint * rng.lognormal(0, 0.04, m)).astype(np.int64)
    lo_hi = np.array([s.SCENE_FRAMES[st] for st in SCENE_TYPES])[a["stype"]]
    frames = rng.integers(lo_hi[:, 0] // 24, lo_hi[:, 1] // 24 + 1) * 24
    n_st = c.stage_count[wf]
    att = np.repeat(np.arange(m), n_st)
    sidx = np.arange(len(att)) - np.repeat(np.cumsum(n_st) - n_st, n_st)
    stage_share = c.stage_share[wf[att], sidx]
    load = np.where(rng.random(m) < 0.4, rng.uniform(300, 1200, m),
                    rng.uniform(4000, 15000, m) * np.sqrt(need / 15000))  # fmt: skip
    overhead = np.where(sidx == 0, load[att], rng.uniform(800, 4000, m)[att])
    dur = np.floor(np.where(np.isnan(stage_share), overhead, (frames * tpf)[att] * stage_share))
    wall = np.bincount(att, dur, m) * rng.uniform(1.02, 1.10, m) + rng.uniform(1500, 8000, m)
    r, first = rng.random(m), a["attempt"] == 1
    cuts = ERROR_CUTS
    err = np.select(
        [(need > 0.985 * card) | (r < cuts[0]), (wall > TIMEOUT_MS) | (r < cuts[1]), r < cuts[2],
         (r < cuts[3]) & first, r < cuts[4], (r < cuts[5]) & first],
        np.arange(6), -1,
    )  # fmt: skip
    main = np.where(n_st > 2, 2, n_st - 1)
    vae = c.vae_index[wf]
    fs = np.select(
        [(err == 0) & (vae >= 0) & (rng.random(m) < 0.35), (err == 0) | (err == 1), err == 2,
         err == 3, err == 4, err == 5],
        [vae, main, (rng.random(m) * n_st).astype(np.int64), n_st - 1, 0, 1], -1,
    )  # fmt: skip
    at_fail = sidx == fs[att]
    before = np.bincount(att, dur * (sidx < fs[att]), m)
    timeout_left = np.maximum(0, TIMEOUT_MS - 90_000 - before)
    dur = np.where(at_fail, np.where(err[att] == 1, timeout_left[att],
                                     np.floor(dur * rng.uniform(0.05, 0.9, len(att)))), dur)  # fmt: skip
    keep = (fs[att] < 0) | (sidx <= fs[att])
    gpu_ms = np.bincount(att[keep], dur[keep], m).astype(np.int64)
    wall = np.where(err < 0, wall, np.where(err == 1, TIMEOUT_MS, gpu_ms * 1.04 + 2000))
    wall = wall.astype(np.int64)
    last = day_start + DAY_MS - 1
    end = a["end"] if "end" in a else np.minimum(a["not_before"] + wall, last)
    begin = end - wall
    busy = (end // HOUR_MS % 24 >= 6) & (end // HOUR_MS % 24 < 21)
    wait = (rng.lognormal(0, 1.0, m) * np.where(busy, 60_000, 15_000)).astype(np.int64)
    max_card = max(g.vram_mb for g in c.gpu)
    out = {k: a[k] for k in _SPEC} | {
        "worker": worker, "tpf": tpf, "need": need, "card": card, "gpu_ms": gpu_ms,
        "wall": wall, "start": begin, "end": end, "queued": begin - wait,
        "frames": np.where(err < 0, frames, 0), "err": err, "failed_stage": fs,
        "vram": np.where(err == 0, card, np.minimum(need, card)), "stages": n_st,
        "retry": np.isin(err, RETRYABLE) & (a["attempt"] < 3) & ((err != 0) | (card < max_card)),
        "version": np.array(live)[wf],
    }  # fmt: skip
    out["stages"] = np.where(err < 0, n_st, fs + 1)
    name = c.stage_code[wf[att], sidx]
    heavy = np.isin(name, [c.stage_names.index(x) for x in
                           ("sample", "upscale", "face_restore", "interpolate")])  # fmt: skip
    gpu_mem = np.where(heavy, need[att], np.where(sidx == 0, need[att] * 0.45, np.nan))
    cpu_mem = np.where(sidx == 0, rng.uniform(2000, 9000, len(att)).round(), np.nan)
    stages = {"att": att, "index": sidx, "name": name, "duration": dur, "gpu_mem": gpu_mem,
              "cpu_mem": cpu_mem}  # fmt: skip
    return out, {k: v[keep] for k, v in stages.items()}


def _retries(
    rng: np.random.Generator, a: dict[str, np.ndarray], day_start: int
) -> dict[str, np.ndarray] | None:
    """The next attempts of the failed attempts that will be retried (same day), or None."""
    again = np.flatnonzero(a["retry"])
    if not len(again):
        return None
    nxt = {k: a[k][again] for k in _SPEC}
    nxt["attempt"] = nxt["attempt"] + 1
    bigger = np.isin(a["err"][again], (0, 1))
    nxt["min_vram"] = np.where(bigger, a["card"][again] + 1, 0)
    nxt["not_before"] = a["end"][again] + rng.integers(20_000, 180_000, len(again))
    return nxt


def _param_kind(c: Cast, wf: np.ndarray) -> np.ndarray:
    """0: a generation workflow's parameters, 1: the upscaler's, 2: frame interpolation's."""
    kinds = np.array([{"wf-upscale-4x": 1, "wf-interp-rife": 2}.get(w.id, 0) for w in c.wf])
    return kinds[wf]


def _score(c: Cast, rng: np.random.Generator, a: dict[str, np.ndarray]) -> None:
    """Quality scores, the QA gate and cost (nan for failures: they carry none)."""
    m, wf = len(a["job"]), a["wf"]
    shift = np.array([[v[3] for v in w.versions] + [0.0] * 3 for w in c.wf])[wf, a["version"]]
    like = np.array([w.likeness for w in c.wf])[wf] + shift + rng.normal(0, 0.03, m)
    like += np.array([s.RESOLUTIONS[r][2] for r in RESOLUTIONS])[a["res"]]
    like += np.where(_param_kind(c, wf) == 0, s.LORA_LIKENESS_SLOPE * (a["lora"] - 0.7), 0.0)
    motion = np.array([w.motion for w in c.wf])[wf] + rng.normal(0, 0.04, m)
    motion += np.array([s.SCENE_MOTION[st] for st in SCENE_TYPES])[a["stype"]]
    action = a["stype"] == SCENE_TYPES.index("action")
    failed = a["err"] >= 0

    def clip(x: np.ndarray) -> np.ndarray:
        return np.where(failed, np.nan, np.round(np.clip(x, 0.0, 1.0), 3))

    a["likeness"], a["motion_quality"] = clip(like), clip(motion)
    a["face_confidence"] = clip(0.5 + 0.5 * like + rng.normal(0, 0.02, m))
    a["boundary_ssim"] = clip(0.955 - 0.03 * action + rng.normal(0, 0.012, m))
    custom = np.array([CUSTOM.index(w.custom) if w.custom else -1 for w in c.wf])[wf]
    a["custom"] = custom
    a["custom_value"] = clip(np.select(
        [custom == 0, custom == 1],
        [0.55 + 0.4 * like + rng.normal(0, 0.04, m), motion + 0.04 + rng.normal(0, 0.03, m)],
        rng.normal(0.9, 0.03, m),
    ))  # fmt: skip
    a["qa"] = (like >= 0.78) & (motion >= 0.62) & (rng.random(m) > 0.01)
    billed = np.array([p.billed for p in c.projects])[c.char_project[a["char"]]]
    usd = np.array([g.usd_per_hour for g in c.gpu])[c.worker_gpu[a["worker"]]]
    a["cost"] = np.where(billed & ~failed, np.round(a["gpu_ms"] / HOUR_MS * usd, 4), np.nan)
    a["partition"] = rng.integers(0, 6, m)
    a["ingested"] = a["end"] + rng.integers(500, 20_000, m)


CUSTOM = ["lip_sync", "pose_accuracy", "loop_seam"]


# --- tables -------------------------------------------------------------------------------------


def _nullable(values: np.ndarray, type_: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
    mask = np.isnan(values) if null is None else null
    return pa.array(np.where(mask, 0, values), type=type_, mask=mask)


def _event_ids(a: dict[str, np.ndarray], rows: np.ndarray) -> pa.Array:
    return fixed_text("bench-job-", (a["job"][rows], 8), "-a", (a["attempt"][rows], 1))


def _params(c: Cast, a: dict[str, np.ndarray], rows: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """The params (text) and params_num (numbers) maps of the attempts `rows`."""
    kind = _param_kind(c, a["wf"][rows])
    gen, up, rife = (np.flatnonzero(kind == k) for k in range(3))

    def num(name: str, where: np.ndarray) -> tuple[str, np.ndarray, pa.Array]:
        return name, where, pa.array(a[name if name != "cfg_scale" else "cfg"][rows][where])

    numeric = [num("cfg_scale", gen), ("steps", gen, pa.array(a["steps"][rows][gen])),
               num("denoise", gen), ("lora_strength", gen, pa.array(a["lora"][rows][gen])),
               ("seed", gen, pa.array(a["seed"][rows][gen])),
               ("tile_size", up, pa.array(np.full(len(up), 512))),
               ("multiplier", rife, pa.array(np.full(len(rife), 2)))]  # fmt: skip
    models = np.where(kind[np.concatenate([up, rife])] == 1, 0, 1)
    text = [("model", np.concatenate([up, rife]), labels(["RealESRGAN_x4plus", "rife47"], models)),
            ("sampler", gen, labels(SAMPLERS, a["sampler"][rows][gen]))]  # fmt: skip
    return (map_array(len(rows), [*text, *numeric], pa.string()),
            map_array(len(rows), numeric, pa.float64()))  # fmt: skip


def _attempt_table(c: Cast, table: t.Table, a: dict[str, np.ndarray], rows: np.ndarray) -> pa.Table:
    """Rows of `jobs` or `job_failures` for the attempts `rows`."""
    n, wf, worker = len(rows), a["wf"][rows], a["worker"][rows]
    versions = sorted({v[0] for w in c.wf for v in w.versions})
    version = [versions.index(w.versions[j][0]) if j < len(w.versions) else 0
               for w in c.wf for j in range(3)]  # fmt: skip
    params, params_num = _params(c, a, rows)
    col: dict[str, Any] = {
        "event_id": _event_ids(a, rows), "occurred_at": timestamps(a["end"][rows]),
        "producer": labels(["scheduler", "scheduler-eu"], (worker >= EU_FROM).astype(int)),
        "job_id": fixed_text("job-", (a["job"][rows], 8)), "attempt": a["attempt"][rows],
        "workflow_id": labels([w.id for w in c.wf], wf),
        "workflow_name": labels([w.name for w in c.wf], wf),
        "workflow_version": labels(versions, np.array(version)[wf * 3 + a["version"][rows]]),
        "worker_id": fixed_text("gpu-", (worker + 1, 3)),
        "gpu_model": labels([g.model for g in c.gpu], c.worker_gpu[worker]),
        "project_id": labels([p.id for p in c.projects], c.char_project[a["char"][rows]]),
        "character_id": fixed_text("char-", (a["char"][rows], 6)),
        "scene_id": fixed_text("scene-", (a["char"][rows], 6), "-", (a["scene"][rows] + 1, 3)),
        "scene_type": labels(SCENE_TYPES, a["stype"][rows]),
        "resolution_tier": labels(RESOLUTIONS, a["res"][rows]),
        "queued_at": timestamps(a["queued"][rows]), "started_at": timestamps(a["start"][rows]),
        "frame_count": a["frames"][rows], "total_gpu_time_ms": a["gpu_ms"][rows],
        "total_wall_time_ms": a["wall"][rows], "time_per_frame_ms": a["tpf"][rows],
        "vram_peak_mb": _nullable(a["vram"][rows], t.I64, worker == UNMONITORED_WORKER),
        "vram_total_mb": a["card"][rows],
        "params": params, "params_num": params_num, "qa_passed": a["qa"][rows],
        "cost_usd": _nullable(a["cost"][rows], t.F64), "stage_count": a["stages"][rows],
        "extra": pa.nulls(n, pa.string()), "kafka_partition": a["partition"][rows],
        "kafka_offset": a["job"][rows] * 4 + a["attempt"][rows],
        "ingested_at": timestamps(a["ingested"][rows]),
        "error_type": labels(list(ERRORS), np.maximum(a["err"][rows], 0)),
        "error_message": labels(list(MESSAGES), np.maximum(a["err"][rows], 0)),
        "failed_stage": labels(c.stage_names, c.stage_code[wf, np.maximum(a["failed_stage"][rows], 0)]),
        "will_retry": a["retry"][rows],
    }  # fmt: skip
    scores = {k: a[k][rows] for k in t.STANDARD_SCORES}
    col |= {k: _nullable(v, t.F64) for k, v in scores.items()}
    has = np.flatnonzero(a["custom"][rows] >= 0)
    entries = [(k, np.arange(n), pa.array(v)) for k, v in scores.items()]
    for j, name in enumerate(CUSTOM):
        mine = has[a["custom"][rows][has] == j]
        entries.append((name, mine, pa.array(a["custom_value"][rows][mine])))
    col["quality_scores"] = map_array(n, entries, pa.float64())
    return _table(table, col)


def _table(table: t.Table, columns: dict[str, Any]) -> pa.Table:
    arrays = [columns[f.name] for f in table.schema]
    arrays = [a if isinstance(a, pa.Array) else pa.array(a, f.type)
              for a, f in zip(arrays, table.schema, strict=True)]  # fmt: skip
    return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, table.schema, strict=True)],
                                schema=table.schema)  # fmt: skip


def _stage_table(c: Cast, a: dict[str, np.ndarray], st: dict[str, np.ndarray]) -> pa.Table:
    rows = st["att"]
    order = np.lexsort((st["index"], a["end"][rows]))
    rows, st = rows[order], {k: v[order] for k, v in st.items()}
    return _table(t.JOB_STAGES, {
        "event_id": _event_ids(a, rows), "occurred_at": timestamps(a["end"][rows]),
        "outcome": labels(["completed", "failed"], (a["err"][rows] >= 0).astype(int)),
        "job_id": fixed_text("job-", (a["job"][rows], 8)), "attempt": a["attempt"][rows],
        "workflow_id": labels([w.id for w in c.wf], a["wf"][rows]),
        "worker_id": fixed_text("gpu-", (a["worker"][rows] + 1, 3)),
        "stage_index": st["index"], "stage_name": labels(c.stage_names, st["name"]),
        "duration_ms": st["duration"], "gpu_mem_peak_mb": _nullable(st["gpu_mem"], t.F64),
        "cpu_mem_peak_mb": _nullable(st["cpu_mem"], t.F64),
        "extra": pa.nulls(len(rows), pa.string()), "ingested_at": timestamps(a["ingested"][rows]),
    })  # fmt: skip


def _samples(c: Cast, rng: np.random.Generator, a: dict[str, np.ndarray], start: int) -> pa.Table:
    """One sample per worker every 5 minutes: generating while one of its attempts runs at the
    middle of the interval, offline in a maintenance window (3% of worker-days), else idle."""
    workers, slots = len(c.worker_gpu), DAY_MS // SAMPLE_MS
    w = np.repeat(np.arange(workers), slots)
    at = start + (w * 7_919_000) % SAMPLE_MS + np.tile(np.arange(slots), workers) * SAMPLE_MS
    mid = at - SAMPLE_MS // 2
    span = 4 * DAY_MS
    keys = a["worker"] * span + (a["start"] - start + DAY_MS)
    order = np.argsort(keys)
    j = np.searchsorted(keys[order], w * span + (mid - start + DAY_MS), "right") - 1
    run = order[np.maximum(j, 0)]
    generating = (j >= 0) & (a["worker"][run] == w) & (a["end"][run] > mid)
    down = rng.random(workers) < 0.03
    begin = start + rng.integers(0, DAY_MS, workers)
    length = rng.integers(2 * HOUR_MS, 10 * HOUR_MS, workers)
    offline = down[w] & (mid >= begin[w]) & (mid < begin[w] + length[w])
    state = np.where(offline, 2, np.where(generating, 0, 1))
    n = len(w)
    gpu = c.worker_gpu[w]
    util = np.where(state == 0, 90 + 9 * rng.random(n), np.where(state == 1, 5 * rng.random(n), 0))
    idle_w, max_w = (np.array([getattr(g, k) for g in c.gpu])[gpu] for k in ("idle_w", "max_w"))
    power = idle_w + (max_w - idle_w) * util / 100 * rng.uniform(0.82, 0.95, n)
    power /= np.sqrt(c.slowdown[w])
    temp = 32 + 0.46 * util + c.hotter[w] + 4 * rng.random(n)
    used = np.where(state == 0, a["vram"][run] * rng.uniform(0.85, 1.0, n),
                    rng.integers(450, 1400, n)) * (state != 2)  # fmt: skip
    job = fixed_text("job-", (a["job"][run], 8))
    card = np.array([g.vram_mb for g in c.gpu])[gpu]
    return _table(t.WORKER_SAMPLES, {
        "event_id": fixed_text("bench-smp-", (w + 1, 3), "-", (at // 1000, 10)),
        "occurred_at": timestamps(at), "producer": labels(["gpu-agent"], np.zeros(n, int)),
        "worker_id": fixed_text("gpu-", (w + 1, 3)), "gpu_index": np.zeros(n, np.int32),
        "gpu_model": labels([g.model for g in c.gpu], gpu),
        "state": labels(["generating", "idle", "offline"], state),
        "interval_s": np.full(n, SAMPLE_MS / 1000),
        "job_id": pa.array(job.to_numpy(zero_copy_only=False), pa.string(), mask=state != 0),
        "gpu_util_pct": np.round(util, 1),
        "vram_used_mb": _nullable(used.astype(np.int64), t.I64, w == UNMONITORED_WORKER),
        "vram_total_mb": card, "power_w": _nullable(np.round(power, 1), t.F64, state == 2),
        "temperature_c": _nullable(np.round(temp, 1), t.F64, state == 2),
        "extra": pa.nulls(n, pa.string()), "kafka_partition": w % 6, "kafka_offset": at // 1000,
        "ingested_at": timestamps(at + 2_000),
    })  # fmt: skip


def _reviews(
    c: Cast,
    rng: np.random.Generator,
    a: dict[str, np.ndarray],
    done: np.ndarray,
    i: int,
    start: int,
) -> pa.Table:
    """Reviews of a tenth of the day's completed jobs, in the reviewers' shift (13-23 UTC)."""
    rows = np.sort(rng.choice(done, int(len(done) * REVIEW_SHARE), replace=False))
    n = len(rows)
    at = np.sort(start + 13 * HOUR_MS + rng.integers(0, 10 * HOUR_MS, n)) // 1000 * 1000
    waited = rng.lognormal(0, 0.6, n) * rng.uniform(1.5, 9.0, n) * HOUR_MS
    approved = rng.random(n) < np.clip(0.5 + 4 * (a["likeness"][rows] - 0.82), 0.1, 0.95)
    segments = rng.integers(3, 9, n)
    notes = segments * rng.uniform(0.3, 1.4, n)
    notes = np.where(
        approved, notes * rng.random(n) * 0.4, np.maximum(1, notes * rng.uniform(1, 3, n))
    )
    number = i * 100_000 + np.arange(n)
    return _table(t.REVIEWS, {
        "event_id": fixed_text("bench-rev-", (number, 8)), "occurred_at": timestamps(at),
        "producer": labels(["review-tool"], np.zeros(n, int)),
        "review_id": fixed_text("rev-", (number, 8)),
        "reviewer_id": fixed_text("u-", (1000 + rng.integers(0, REVIEWERS, n), 4)),
        "project_id": labels([p.id for p in c.projects], c.char_project[a["char"][rows]]),
        "character_id": fixed_text("char-", (a["char"][rows], 6)),
        "scene_id": fixed_text("scene-", (a["char"][rows], 6), "-", (a["scene"][rows] + 1, 3)),
        "job_id": fixed_text("job-", (a["job"][rows], 8)),
        "submitted_at": timestamps((at - waited).astype(np.int64) // 1000 * 1000),
        "decision": labels(["approved", "rejected"], (~approved).astype(int)),
        "segment_count": segments, "annotation_count": notes.astype(np.int64),
        "extra": pa.nulls(n, pa.string()), "kafka_partition": rng.integers(0, 6, n),
        "kafka_offset": number, "ingested_at": timestamps(at + 3_000),
    })  # fmt: skip


def _deliveries(c: Cast, rng: np.random.Generator, i: int, start: int) -> pa.Table:
    """Most characters are delivered on their last day in production."""
    char = i * CHARACTERS_PER_DAY + np.arange(CHARACTERS_PER_DAY)
    char = char[rng.random(len(char)) < 0.8]
    n = len(char)
    at = np.sort(start + rng.integers(0, DAY_MS, n))
    onboarded = start - (CHARACTER_DAYS - 1) * DAY_MS - rng.integers(0, DAY_MS, n)
    return _table(t.DELIVERIES, {
        "event_id": fixed_text("bench-dlv-char-", (char, 6)), "occurred_at": timestamps(at),
        "producer": labels(["delivery-service"], np.zeros(n, int)),
        "character_id": fixed_text("char-", (char, 6)),
        "project_id": labels([p.id for p in c.projects], c.char_project[char]),
        "onboarded_at": timestamps(onboarded), "scene_count": rng.integers(8, 17, n),
        "extra": pa.nulls(n, pa.string()), "kafka_partition": rng.integers(0, 6, n),
        "kafka_offset": char, "ingested_at": timestamps(at + 1_000),
    })  # fmt: skip


QUARANTINE_REASONS = (
    ("frame_count: must be >= 1, got 0", "job.completed"),
    ("occurred_at: must be an ISO 8601 time with a zone, got '2025-13-01 25:00'", "job.completed"),
    ("schema_version: must be 1, got 2", "worker.sample"),
    ("not a JSON object (Expecting value: line 1 column 1 (char 0))", None),
)


def _quarantine(rng: np.random.Generator, i: int, start: int) -> pa.Table:
    """A few messages a day that broke the contract, kept whole."""
    n = int(rng.poisson(QUARANTINE_PER_DAY))
    reason = rng.integers(0, len(QUARANTINE_REASONS), n)
    values = [b'{"schema_version": 1, "event_type": "job.completed", "frame_count": 0, "job_id": '
              b'"job-%08d", "padding": "%s"}' % (i * 1000 + k, b"x" * 300) for k in range(n)]  # fmt: skip
    at = np.sort(start + rng.integers(0, DAY_MS, n))
    return _table(t.QUARANTINE, {
        "topic": labels(["perf.job-events"], np.zeros(n, int)),
        "kafka_partition": rng.integers(0, 6, n), "kafka_offset": i * 1000 + np.arange(n),
        "key": pa.nulls(n, pa.binary()), "value": pa.array(values, pa.binary()),
        "reason": labels([r for r, _ in QUARANTINE_REASONS], reason),
        "event_type": pa.array([QUARANTINE_REASONS[r][1] for r in reason], pa.string()),
        "event_id": pa.nulls(n, pa.string()), "received_at": timestamps(at),
        "ingested_at": timestamps(at + 2_000),
    })  # fmt: skip
