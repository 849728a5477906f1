"""The demo studio's cast: its GPUs, workers, workflows, projects and the knobs behind the
deliberate differences that ingest/demo.py documents. Pure data; the simulation that puts the cast
to work lives in ingest/demo_farm.py, and nothing here knows the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Gpu:
    model: str
    vram_mb: int
    speed: float  # time-per-frame multiplier against an L40S
    idle_w: float
    max_w: float
    usd_per_hour: float


H100 = Gpu("NVIDIA H100 80GB HBM3", 81559, 0.55, 72.0, 700.0, 2.90)
L40S = Gpu("NVIDIA L40S", 46068, 1.0, 34.0, 350.0, 1.10)
RTX_4090 = Gpu("NVIDIA RTX 4090", 24564, 1.12, 24.0, 450.0, 0.60)


@dataclass(frozen=True, slots=True)
class Worker:
    id: str
    gpu: Gpu
    slowdown: float = 1.0  # > 1: the card throttles, every frame takes longer
    hotter_c: float = 0.0
    monitored: bool = True  # False: no DCGM exporter, so vram_peak_mb is null
    shard: str = "scheduler"  # the scheduler instance that reports this worker's jobs


#: Difference (2): a thermally throttled L40S, slower than its five L40S peers on the same work.
SLOW_WORKER = "gpu-08"
SLOW_FACTOR = 1.30
SLOW_HOTTER_C = 11.0
#: This worker has no memory monitoring: its jobs carry vram_peak_mb null.
UNMONITORED_WORKER = "gpu-16"
#: Jobs run on these workers are reported by the EU scheduler shard, in +01:00 local time.
EU_WORKERS = ("gpu-13", "gpu-14", "gpu-15", "gpu-16")


def _workers() -> tuple[Worker, ...]:
    gpus = [H100] * 4 + [L40S] * 6 + [RTX_4090] * 6
    out = []
    for n, gpu in enumerate(gpus, 1):
        wid = f"gpu-{n:02d}"
        slow = wid == SLOW_WORKER
        out.append(
            Worker(
                wid,
                gpu,
                SLOW_FACTOR if slow else 1.0,
                SLOW_HOTTER_C if slow else 0.0,
                wid != UNMONITORED_WORKER,
                "scheduler-eu" if wid in EU_WORKERS else "scheduler",
            )
        )
    return tuple(out)


WORKERS = _workers()

# A version row: (version, share of the period after which it is rolled out,
# time-per-frame multiplier, likeness shift).
Version = tuple[str, float, float, float]


@dataclass(frozen=True, slots=True)
class Workflow:
    id: str
    name: str
    family: str  # talking, motion, idle or post: decides stages, params and custom scores
    tpf_ms: float  # ms per frame on an L40S at 1080p with the default steps
    vram_mb: int  # memory footprint at 1080p
    likeness: float
    motion: float
    steps: int
    cfg: float
    sampler: str
    versions: tuple[Version, ...]
    custom: str | None = None

    def version_at(self, share: float) -> Version:
        """The version live after `share` of the period has passed."""
        live = self.versions[0]
        for version in self.versions[1:]:
            if share >= version[1]:
                live = version
        return live


def _v(*rows: Version) -> tuple[Version, ...]:
    return rows


W = Workflow
# fmt: off
WORKFLOWS: dict[str, Workflow] = {
    w.id: w
    for w in (
        W("wf-liveportrait-v2", "LivePortrait talking head", "talking", 1190, 9800, 0.84, 0.80,
          25, 6.5, "dpmpp_2m", _v(("2.3.0", 0, 1.0, 0), ("2.4.0", 0.45, 1.0, 0.015)), "lip_sync"),
        W("wf-liveportrait-hq", "LivePortrait HQ (two-pass refine)", "talking", 1490, 12600, 0.91,
          0.81, 25, 6.5, "dpmpp_2m", _v(("1.1.0", 0, 1.0, 0), ("1.1.1", 0.7, 1.0, 0)), "lip_sync"),
        W("wf-echomimic-v2", "EchoMimic v2 audio-driven portrait", "talking", 1780, 15500, 0.86,
          0.78, 30, 3.5, "euler", _v(("0.9.2", 0, 1.0, 0), ("1.0.0", 0.3, 0.85, 0)), "lip_sync"),
        W("wf-sadtalker-plus", "SadTalker+ lip sync", "talking", 710, 6200, 0.79, 0.70, 20, 5.0,
          "euler_a", _v(("3.1.0", 0, 1.0, 0), ("3.1.4", 0.55, 1.0, 0.01)), "lip_sync"),
        W("wf-hallo2-longform", "Hallo2 long-form portrait", "talking", 3230, 21000, 0.87, 0.79,
          40, 3.5, "ddim", _v(("2.0.0", 0, 1.0, 0), ("2.1.0", 0.5, 0.9, 0)), "lip_sync"),
        W("wf-animatediff-hd", "AnimateDiff HD", "motion", 2040, 12800, 0.80, 0.76, 30, 7.5,
          "euler_a", _v(("1.8.1", 0, 1.0, 0), ("1.9.0", 0.4, 1.05, 0.02))),
        W("wf-animatediff-lcm", "AnimateDiff LCM (fast preview)", "motion", 510, 9000, 0.77, 0.70,
          8, 1.5, "lcm", _v(("1.2.0", 0, 1.0, 0), ("1.3.0", 0.65, 0.9, 0))),
        W("wf-wan-i2v", "Wan 2.1 image-to-video 1.3B", "motion", 2550, 19500, 0.83, 0.82, 30,
          5.0, "unipc", _v(("2.1.0", 0, 1.0, 0), ("2.2.0", 0.5, 0.88, 0))),
        W("wf-wan-i2v-14b", "Wan 2.1 image-to-video 14B", "motion", 6800, 26500, 0.88, 0.87, 40,
          5.0, "unipc", _v(("2.1.0", 0, 1.0, 0), ("2.1.1", 0.35, 1.0, 0.005))),
        W("wf-hunyuan-video", "HunyuanVideo I2V", "motion", 7650, 30000, 0.86, 0.88, 50, 6.0,
          "euler", _v(("1.0.0", 0, 1.0, 0), ("1.1.0", 0.55, 0.9, 0.01))),
        W("wf-cogvideox-i2v", "CogVideoX 5B I2V", "motion", 4760, 18000, 0.80, 0.80, 50, 6.0,
          "ddim", _v(("1.5.0", 0, 1.0, 0), ("1.5.1", 0.6, 1.0, 0))),
        W("wf-mimicmotion", "MimicMotion pose-driven", "motion", 2890, 16500, 0.85, 0.83, 25,
          2.5, "euler", _v(("1.1.0", 0, 1.0, 0), ("1.2.0", 0.25, 0.95, 0.01)), "pose_accuracy"),
        W("wf-unianimate", "UniAnimate pose transfer", "motion", 2210, 14000, 0.82, 0.80, 25, 3.0,
          "dpmpp_2m", _v(("1.0.3", 0, 1.0, 0), ("1.1.0", 0.5, 1.0, 0.01)), "pose_accuracy"),
        W("wf-champ-body", "Champ body animation", "motion", 2460, 15000, 0.81, 0.79, 20, 3.5,
          "ddim", _v(("0.4.0", 0, 1.0, 0), ("0.5.0", 0.8, 0.93, 0)), "pose_accuracy"),
        W("wf-svd-xt", "Stable Video Diffusion XT", "idle", 1360, 11500, 0.83, 0.85, 25, 2.5,
          "euler", _v(("1.1.0", 0, 1.0, 0), ("1.2.0", 0.5, 1.0, 0.01))),
        W("wf-ltx-video", "LTX-Video fast", "idle", 440, 8200, 0.79, 0.80, 20, 3.0, "euler",
          _v(("0.9.1", 0, 1.0, 0), ("0.9.5", 0.4, 0.8, 0))),
        W("wf-idle-loop", "Idle loop (SVD + seamless loop blend)", "idle", 1620, 12000, 0.85, 0.86,
          25, 2.5, "euler", _v(("1.0.0", 0, 1.0, 0), ("1.0.2", 0.3, 1.0, 0)), "loop_seam"),
        W("wf-upscale-4x", "RealESRGAN 4x upscale", "post", 190, 5200, 0.86, 0.84, 1, 0.0,
          "none", _v(("1.0.0", 0, 1.0, 0), ("1.1.0", 0.6, 0.8, 0))),
        W("wf-face-detailer", "FaceDetailer refine", "post", 370, 7000, 0.88, 0.82, 20, 4.0,
          "dpmpp_2m", _v(("2.2.0", 0, 1.0, 0), ("2.3.0", 0.5, 1.0, 0.01))),
        W("wf-interp-rife", "RIFE 2x frame interpolation", "post", 90, 3500, 0.86, 0.86, 1, 0.0,
          "none", _v(("4.7.0", 0, 1.0, 0), ("4.9.0", 0.7, 0.9, 0))),
    )
}
# fmt: on

#: Difference (1): the two-pass sibling is ~25% slower per frame but scores clearly higher likeness.
FAST_WORKFLOW = "wf-liveportrait-v2"
REFINED_WORKFLOW = "wf-liveportrait-hq"
#: Difference (3): likeness rises with lora_strength (0.4-1.0) at this slope, plus noise.
LORA_LIKENESS_SLOPE = 0.20

# The frame-work stages of each family, with their share of frames x time per frame;
# load_model (all) and encode_reference (all but post) come on top as overhead.
FAMILY_STAGES = {
    "talking": (("sample", 0.82), ("vae_decode", 0.11), ("face_restore", 0.07)),
    "motion": (("sample", 0.84), ("vae_decode", 0.12), ("interpolate", 0.04)),
    "idle": (("sample", 0.87), ("vae_decode", 0.13)),
}
POST_STAGES = {
    "wf-upscale-4x": (("upscale", 1.0),),
    "wf-face-detailer": (("detect_faces", 0.15), ("face_restore", 0.85)),
    "wf-interp-rife": (("interpolate", 1.0),),
}

SCENE_TYPES = {"dialogue": 0.4, "walk": 0.2, "action": 0.2, "idle": 0.2}
SCENE_FRAMES = {"idle": (48, 120), "walk": (96, 240), "dialogue": (120, 480), "action": (72, 192)}
SCENE_MOTION = {"idle": 0.05, "walk": 0.0, "dialogue": 0.02, "action": -0.06}
SCENE_WORKFLOWS = {
    "dialogue": {
        "wf-liveportrait-v2": 3,
        "wf-liveportrait-hq": 3,
        "wf-echomimic-v2": 2,
        "wf-sadtalker-plus": 1,
        "wf-hallo2-longform": 1,
    },
    "walk": {
        "wf-animatediff-hd": 2,
        "wf-mimicmotion": 2,
        "wf-unianimate": 1,
        "wf-wan-i2v": 2,
        "wf-champ-body": 1,
        "wf-cogvideox-i2v": 1,
    },
    "action": {
        "wf-animatediff-hd": 2,
        "wf-wan-i2v-14b": 2,
        "wf-hunyuan-video": 2,
        "wf-animatediff-lcm": 1,
        "wf-mimicmotion": 1,
    },
    "idle": {"wf-svd-xt": 2, "wf-ltx-video": 2, "wf-idle-loop": 2, "wf-wan-i2v": 1},
}
#: A finished take of a scene type sometimes gets a post-processing job: (workflow, chance).
FOLLOW_UPS = {
    "dialogue": ("wf-face-detailer", 0.2),
    "walk": ("wf-interp-rife", 0.15),
    "action": ("wf-interp-rife", 0.2),
    "idle": ("wf-upscale-4x", 0.25),
}

# Resolution: (time-per-frame multiplier, memory multiplier, likeness shift).
RESOLUTIONS = {"720p": (0.45, 0.62, -0.02), "1080p": (1.0, 1.0, 0.0), "4k": (3.4, 1.85, 0.01)}


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    weight: float
    resolutions: dict[str, float]
    billed: bool  # an external client's project: the scheduler reports cost_usd


PROJECTS = (
    Project("proj-aurora", 0.35, {"720p": 0.2, "1080p": 0.7, "4k": 0.1}, False),
    Project("proj-borealis", 0.3, {"720p": 0.15, "1080p": 0.5, "4k": 0.35}, False),
    Project("proj-cobalt", 0.2, {"720p": 0.5, "1080p": 0.45, "4k": 0.05}, True),
    Project("proj-dynamo", 0.15, {"1080p": 0.5, "4k": 0.5}, True),
)
