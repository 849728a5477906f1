"""One job attempt in the demo studio: the work items the farm schedules and how an attempt turns
out on a given worker (timings, stages, memory, quality, cost, or the way it failed). Pure
functions of the cast in ingest/demo_studio.py and a seeded random.Random; no clock, no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ingest import demo_studio as s

HOUR = 3_600_000
TIMEOUT_MS = HOUR  # the scheduler's watchdog kills a job after an hour of wall clock
RETRYABLE = ("oom", "timeout", "crash", "api_error")
MAX_ATTEMPTS = 3


@dataclass(slots=True, eq=False)
class Character:
    id: str
    project: s.Project
    onboarded_ms: int
    scenes: list[Scene] = field(default_factory=list)
    approved: int = 0


@dataclass(slots=True, eq=False)
class Scene:
    id: str
    character: Character
    scene_type: str
    resolution: str
    workflow: s.Workflow
    frames: int
    segments: int
    pending: int  # takes not yet dispatched
    footprint_mb: int
    outstanding: int = 0  # takes dispatched or queued and not yet finished
    like_sum: float = 0.0
    like_n: int = 0
    last_job: str | None = None
    review_segments: int = 0


@dataclass(slots=True, eq=False)
class Task:
    """A unit of work in the scheduler's queue: a take of a scene, a retry or a post job."""

    scene: Scene
    workflow: s.Workflow
    ready_ms: int  # queued_at
    job_id: str | None = None  # None until the first attempt is dispatched
    attempt: int = 1
    min_vram_mb: int = 0  # retries of OOMs and timeouts go to a bigger card
    params: dict[str, Any] | None = None
    footprint_mb: int = 0


@dataclass(slots=True, eq=False)
class JobRun:
    job_id: str
    attempt: int
    workflow: s.Workflow
    version: str
    worker: s.Worker
    scene: Scene
    queued_ms: int
    start_ms: int
    end_ms: int
    frames: int
    tpf_ms: float
    stages: list[tuple[str, int, int | None]]
    vram_peak_mb: int
    params: dict[str, Any]
    scores: dict[str, float] | None = None
    qa_passed: bool = True
    cost_usd: float | None = None
    error: tuple[str, str, str, bool] | None = None  # type, message, failed stage, will retry


def footprint(wf: s.Workflow, resolution: str) -> int:
    """Nominal memory of a workflow at a resolution: what the scheduler routes by."""
    return int(wf.vram_mb * s.RESOLUTIONS[resolution][1])


def run_attempt(
    task: Task, worker: s.Worker, start_ms: int, share: float, cached: bool, rng: random.Random
) -> JobRun:
    """Runs one attempt that starts at `start_ms`, `share` of the way through the period."""
    wf, scene = task.workflow, task.scene
    version, _, speed, like_shift = wf.version_at(share)
    params = task.params or _params(wf, rng)
    steps_factor = (params.get("steps", wf.steps) / wf.steps) ** 0.9
    tpf = wf.tpf_ms * worker.gpu.speed * s.RESOLUTIONS[scene.resolution][0] * speed
    tpf *= worker.slowdown * steps_factor * rng.lognormvariate(0, 0.10)
    need_mb = int(task.footprint_mb * rng.lognormvariate(0, 0.04))
    stages = _stages(wf, scene.frames * tpf, need_mb, cached, rng)
    run = JobRun(
        task.job_id or "", task.attempt, wf, version, worker, scene, task.ready_ms, start_ms,
        start_ms, scene.frames, round(tpf, 1), stages, min(need_mb, worker.gpu.vram_mb), params,
    )  # fmt: skip
    gpu_ms = sum(d for _, d, _ in stages)
    wall = int(gpu_ms * rng.uniform(1.02, 1.10) + rng.uniform(1500, 8000))
    run.end_ms = start_ms + min(wall, TIMEOUT_MS)
    run.error = _failure(run, need_mb, wall > TIMEOUT_MS, rng)
    if run.error is None:
        _score(run, like_shift, rng)
    return run


def _params(wf: s.Workflow, rng: random.Random) -> dict[str, Any]:
    if wf.id == "wf-upscale-4x":
        return {"model": "RealESRGAN_x4plus", "tile_size": 512}
    if wf.id == "wf-interp-rife":
        return {"model": "rife47", "multiplier": 2}
    steps = wf.steps if rng.random() < 0.7 else max(4, wf.steps + rng.choice((-5, 5, 10)))
    return {
        "cfg_scale": round(wf.cfg + rng.choice((-1.0, -0.5, 0.0, 0.0, 0.5, 1.0)), 1),
        "steps": steps,
        "sampler": wf.sampler if rng.random() < 0.85 else rng.choice(("euler", "dpmpp_2m_sde")),
        "denoise": round(rng.uniform(0.55, 0.9), 2),
        "lora_strength": round(rng.uniform(0.4, 1.0), 2),
        "seed": rng.randrange(2**32),
    }


def _stages(
    wf: s.Workflow, frame_ms: float, need_mb: int, cached: bool, rng: random.Random
) -> list[tuple[str, int, int | None]]:
    """Pipeline stages whose durations sum to the GPU time: overhead plus frames x tpf."""
    # A worker that ran the same workflow last keeps its weights in memory.
    load = rng.uniform(300, 1200) if cached else rng.uniform(4000, 15000) * (need_mb / 15000) ** 0.5
    out: list[tuple[str, int, int | None]] = [("load_model", int(load), int(need_mb * 0.45))]
    if wf.family != "post":
        out.append(("encode_reference", int(rng.uniform(800, 4000)), None))
    for name, share in s.POST_STAGES.get(wf.id) or s.FAMILY_STAGES[wf.family]:
        peak = need_mb if name in ("sample", "upscale", "face_restore", "interpolate") else None
        out.append((name, int(frame_ms * share), peak))
    return out


def _clip(x: float) -> float:
    return round(min(1.0, max(0.0, x)), 3)


def _score(run: JobRun, like_shift: float, rng: random.Random) -> None:
    """Quality, the QA gate and cost of a finished attempt."""
    wf, scene = run.workflow, run.scene
    lora = run.params.get("lora_strength")
    like = wf.likeness + like_shift + s.RESOLUTIONS[scene.resolution][2] + rng.gauss(0, 0.03)
    if isinstance(lora, float):
        like += s.LORA_LIKENESS_SLOPE * (lora - 0.7)
    motion = wf.motion + s.SCENE_MOTION[scene.scene_type] + rng.gauss(0, 0.04)
    action = scene.scene_type == "action"
    scores = {
        "likeness": _clip(like),
        "face_confidence": _clip(0.5 + 0.5 * like + rng.gauss(0, 0.02)),
        "motion_quality": _clip(motion),
        "boundary_ssim": _clip(0.955 - 0.03 * action + rng.gauss(0, 0.012)),
    }
    if wf.custom == "lip_sync":
        scores["lip_sync"] = _clip(0.55 + 0.4 * like + rng.gauss(0, 0.04))
    elif wf.custom == "pose_accuracy":
        scores["pose_accuracy"] = _clip(motion + 0.04 + rng.gauss(0, 0.03))
    elif wf.custom == "loop_seam":
        scores["loop_seam"] = _clip(rng.gauss(0.9, 0.03))
    run.scores = scores
    run.qa_passed = like >= 0.78 and motion >= 0.62 and rng.random() > 0.01
    if scene.character.project.billed:
        hours = sum(d for _, d, _ in run.stages) / HOUR
        run.cost_usd = round(hours * run.worker.gpu.usd_per_hour, 4)


def _failure(
    run: JobRun, need_mb: int, timed_out: bool, rng: random.Random
) -> tuple[str, str, str, bool] | None:
    """How the attempt failed, if it did; cuts its stages back to those that ran."""
    gpu, r = run.worker.gpu, rng.random()
    first = run.attempt == 1
    # Difference (4): OOM when the real peak crosses the card's usable memory.
    if need_mb > gpu.vram_mb * 0.985 or r < 0.0003:  # or, rarely, a leak anywhere
        etype = "oom"
    elif timed_out or r < 0.0025:
        etype = "timeout"
    elif r < 0.0085:
        etype = "crash"
    elif r < 0.0115 and first:
        etype = "safety_block"
    elif r < 0.0135:
        etype = "api_error"
    elif r < 0.0145 and first:
        etype = "invalid_input"
    else:
        return None
    stage = _failed_stage(run, etype, rng)
    names = [name for name, _, _ in run.stages]
    cut = names.index(stage)
    name, duration, peak = run.stages[cut]
    partial = int(duration * rng.uniform(0.05, 0.9))
    run.stages = [*run.stages[:cut], (name, partial, peak)]
    if etype == "timeout":
        ran = sum(d for _, d, _ in run.stages[:-1])
        run.stages[-1] = (name, max(0, TIMEOUT_MS - ran - 90_000), peak)
        run.end_ms = run.start_ms + TIMEOUT_MS
    else:
        run.end_ms = run.start_ms + int(sum(d for _, d, _ in run.stages) * 1.04) + 2_000
    if etype == "oom":
        run.vram_peak_mb = gpu.vram_mb
    run.frames = 0
    bigger = any(w.gpu.vram_mb > gpu.vram_mb for w in s.WORKERS)
    retry = etype in RETRYABLE and run.attempt < MAX_ATTEMPTS and (etype != "oom" or bigger)
    return etype, _message(etype, run, rng), stage, retry


def _failed_stage(run: JobRun, etype: str, rng: random.Random) -> str:
    names = [name for name, _, _ in run.stages]
    main = names[2] if len(names) > 2 else names[-1]  # sample, or a post job's main stage
    if etype == "oom":
        return "vae_decode" if "vae_decode" in names and rng.random() < 0.35 else main
    if etype == "timeout":
        return main
    if etype == "crash":
        return rng.choice(names)
    if etype == "safety_block":
        return names[-1]
    if etype == "invalid_input":
        return names[1]
    return "load_model"


_CRASHES = (
    "RuntimeError: CUDA error: an illegal memory access was encountered",
    "worker process exited with code 139 (Segmentation fault) in comfy/model_patcher.py",
    "ValueError: NaN detected in latents at step {step}; aborting sampler",
    "RuntimeError: cuDNN error: CUDNN_STATUS_INTERNAL_ERROR",
)
_FRAMES = (
    ("execution.py", "execute", "output_data = get_output_data(obj, input_data_all)"),
    ("comfy/sample.py", "sample", "samples = sampler.sample(noise, positive, negative)"),
    ("comfy/samplers.py", "sample", "return self.inner_sample(noise, latent_image, device)"),
    ("comfy/k_diffusion/sampling.py", "sample_dpmpp_2m", "denoised = model(x, sigmas[i])"),
    ("comfy/ldm/modules/attention.py", "forward", "x = self.attn1(self.norm1(x), context=None)"),
    ("torch/nn/modules/module.py", "_call_impl", "return forward_call(*args, **kwargs)"),
)


def _message(etype: str, run: JobRun, rng: random.Random) -> str:
    gib = run.worker.gpu.vram_mb / 1024
    if etype == "oom":
        return (
            f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate "
            f"{rng.uniform(0.5, 4.0):.2f} GiB (GPU 0; {gib:.2f} GiB total capacity; "
            f"{gib * rng.uniform(0.86, 0.95):.2f} GiB already allocated; "
            f"{rng.uniform(20, 400):.2f} MiB free; {gib * 0.97:.2f} GiB reserved by PyTorch)"
        )
    if etype == "timeout":
        return f"watchdog: job exceeded {TIMEOUT_MS // 1000} s wall-clock limit; worker reset"
    if etype == "crash":
        text = rng.choice(_CRASHES).format(step=rng.randint(1, 50))
        if rng.random() < 0.3:  # a full traceback, longer than the 4 KiB consumers must keep
            frames = [_FRAMES[i % len(_FRAMES)] for i in range(36)]
            lines = [f'  File "/opt/ComfyUI/{f}", line {rng.randint(40, 900)}, in {fn}\n    {code}'
                     for f, fn, code in frames]  # fmt: skip
            text = "Traceback (most recent call last):\n" + "\n".join(lines) + "\n" + text
        return text
    if etype == "safety_block":
        return f"output blocked by safety checker (nsfw score {rng.uniform(0.86, 0.99):.2f} > 0.85)"
    if etype == "invalid_input":
        return "no face detected in reference image (det_score 0.00 < 0.50)"
    return "HTTP 503 from model registry while fetching weights; retry later"
