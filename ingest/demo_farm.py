"""A discrete-event simulation of the demo studio's render farm: characters become scenes, scenes
become jobs, workers run them back to back, reviewers approve or reject, characters get delivered.
It yields what happened, in time order, as plain records; ingest/demo.py owns the wire format.
Every draw comes from one seeded random.Random, consumed in agenda order, so a seed is a farm.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ingest import demo_studio as s
from ingest.demo_jobs import Character, JobRun, Scene, Task, footprint, run_attempt

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
SAMPLE_MS = 300_000
DRAIN_MS = 90 * MINUTE  # no job starts this close to a maintenance window
WARM_CHARACTERS = 40  # characters already in production when the period starts
BACKLOG_SCENES = 150  # production onboards a character whenever fewer scenes wait for takes
FREE, START, DONE, TICK, REVIEW, DELIVER = range(6)


@dataclass(slots=True)
class Sample:
    worker: s.Worker
    at_ms: int
    state: str
    job_id: str | None
    util_pct: float
    vram_used_mb: int | None
    power_w: float | None
    temperature_c: float | None


@dataclass(slots=True)
class Review:
    number: int
    reviewer: str
    scene: Scene
    submitted_ms: int
    at_ms: int
    approved: bool
    segments: int
    annotations: int


@dataclass(slots=True)
class Delivery:
    character: Character
    at_ms: int


Record = JobRun | Sample | Review | Delivery


def simulate(days: int, seed: int, end_ms: int) -> Iterator[Record]:
    """Everything that happened in [end - days, end), in time order."""
    return _Farm(days, seed, end_ms).run()


class _Farm:
    def __init__(self, days: int, seed: int, end_ms: int) -> None:
        self.rng = random.Random(seed)
        self.start, self.end, self.span = end_ms - days * DAY, end_ms, days * DAY
        self.agenda: list[tuple[int, int, int, Any]] = []
        self.seq = 0
        self.pool: list[Scene] = []  # scenes with takes waiting
        self.ready: list[Task] = []  # retries and follow-ups, by ready time
        self.counters = {"char": 0, "job": 0, "review": 0}
        self.reviewers = self._reviewers()
        self.windows = [self._windows(i, days) for i in range(len(s.WORKERS))]
        self.logs: list[deque[tuple[int, int, str, int]]] = [deque() for _ in s.WORKERS]
        self.last_wf: list[str | None] = [None] * len(s.WORKERS)
        for _ in range(WARM_CHARACTERS):
            age = self.rng.uniform(0, 16) * DAY
            self._onboard(self.start - int(age), min(1.0, age / (12 * DAY)))
        for i in range(len(s.WORKERS)):
            self._push(self.start + self.rng.randrange(0, 120_000), FREE, i)
            self._push(self.start + self.rng.randrange(1, 300) * 1000, TICK, i)

    def _push(self, at: int, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.agenda, (at, self.seq, kind, payload))

    def _next_id(self, name: str) -> int:
        self.counters[name] += 1
        return self.counters[name]

    def run(self) -> Iterator[Record]:
        while self.agenda and self.agenda[0][0] < self.end:
            t, _, kind, payload = heapq.heappop(self.agenda)
            if kind == TICK:
                yield self._sample(payload, t)
                self._push(t + SAMPLE_MS, TICK, payload)
            elif kind == DONE:
                self._finish(payload)
                yield payload
            elif kind == REVIEW:
                yield self._review(payload, t)
            elif kind == DELIVER:
                yield Delivery(payload, t)
            else:
                self._step(payload, t, kind)

    # --- the cast in motion -------------------------------------------------------------------

    def _reviewers(self) -> list[tuple[str, float, float]]:
        """(opaque id, median hours to review, annotations per segment) per reviewer."""
        ids = self.rng.sample(range(1000, 10000), 10)
        return [(f"u-{i}", self.rng.uniform(1.5, 9.0), self.rng.uniform(0.3, 1.4)) for i in ids]

    def _windows(self, index: int, days: int) -> list[tuple[int, int]]:
        """Offline maintenance: a rolling driver update mid-period, plus random repairs."""
        rng = self.rng
        update = self.start + self.span // 2 + index * 80 * MINUTE
        spans = [(update, update + rng.randint(40, 75) * MINUTE)]
        for _ in range(int(days / 30 + rng.random())):
            begin = self.start + rng.randrange(self.span)
            spans.append((begin, begin + rng.randint(2, 10) * HOUR))
        spans.sort()
        merged = [spans[0]]
        for begin, stop in spans[1:]:
            if begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
            else:
                merged.append((begin, stop))
        return merged

    def _onboard(self, at: int, progress: float = 0.0) -> None:
        """A new character enters production; `progress` > 0 for those already under way."""
        rng = self.rng
        project = rng.choices(s.PROJECTS, [p.weight for p in s.PROJECTS])[0]
        number = self._next_id("char")
        char = Character(f"char-{number:04d}", project, at)
        n_scenes = rng.randint(8, 16)
        for k in range(1, n_scenes + 1):
            stype = rng.choices(list(s.SCENE_TYPES), list(s.SCENE_TYPES.values()))[0]
            res = rng.choices(list(project.resolutions), list(project.resolutions.values()))[0]
            wfs = s.SCENE_WORKFLOWS[stype]
            wf = s.WORKFLOWS[rng.choices(list(wfs), list(wfs.values()))[0]]
            lo, hi = s.SCENE_FRAMES[stype]
            segments = rng.randint(3, 8)
            takes = sum(rng.randint(1, 3) for _ in range(segments))
            scene = Scene(
                f"scene-{number:04d}-{k:03d}", char, stype, res, wf, rng.randrange(lo, hi + 1, 24),
                segments, takes, footprint(wf, res), review_segments=segments,
            )  # fmt: skip
            char.scenes.append(scene)
            if k <= int(progress * 0.7 * n_scenes):
                char.approved += 1
                continue
            done = int(takes * rng.uniform(0, progress))
            scene.pending, scene.like_n = takes - done, done
            scene.like_sum = done * wf.likeness
            if scene.pending:
                self.pool.append(scene)
            else:
                self._submit(scene, self.start + rng.randrange(4 * HOUR))

    def _step(self, wi: int, t: int, kind: int) -> None:
        """A free worker waits an idle gap; a starting one takes the next task it can hold."""
        resume = self._maintenance_end(wi, t)
        if resume is not None:
            self._push(resume, FREE, wi)
        elif kind == FREE:
            self._push(t + self._idle_gap(t), START, wi)
        elif (task := self._pick(s.WORKERS[wi], t)) is None:
            self._push(t + MINUTE, FREE, wi)
        else:
            run = self._run(task, wi, t)
            self.logs[wi].append((t, run.end_ms, run.job_id, run.vram_peak_mb))
            self._push(run.end_ms, DONE, run)
            self._push(run.end_ms, FREE, wi)

    def _maintenance_end(self, wi: int, t: int) -> int | None:
        for begin, stop in self.windows[wi]:
            if begin - DRAIN_MS <= t < stop:
                return stop
        return None

    def _idle_gap(self, t: int) -> int:
        """Fewer jobs at night and far fewer at weekends (1970-01-01 was a Thursday)."""
        weekday, hour = (t // DAY + 3) % 7, t // HOUR % 24
        mean = 900_000 if weekday >= 5 else 60_000 if 6 <= hour < 21 else 400_000
        return int(self.rng.expovariate(1 / mean))

    def _pick(self, worker: s.Worker, t: int) -> Task | None:
        vram = worker.gpu.vram_mb
        for i, task in enumerate(self.ready):
            if task.ready_ms > t:
                break
            if task.footprint_mb <= vram and task.min_vram_mb <= vram:
                return self.ready.pop(i)
        while len(self.pool) < BACKLOG_SCENES:
            self._onboard(t)
        for _ in range(8):  # the scheduler never sends a job its nominal footprint cannot fit
            i = self.rng.randrange(len(self.pool))
            scene = self.pool[i]
            if scene.footprint_mb > vram:
                continue
            scene.pending -= 1
            scene.outstanding += 1
            if not scene.pending:
                self.pool[i] = self.pool[-1]
                self.pool.pop()
            busy = (t // DAY + 3) % 7 < 5 and 6 <= t // HOUR % 24 < 21
            wait = int(self.rng.lognormvariate(0, 1.0) * (60_000 if busy else 15_000))
            return Task(scene, scene.workflow, t - wait, footprint_mb=scene.footprint_mb)
        return None

    def _requeue(self, task: Task) -> None:
        bisect.insort(self.ready, task, key=lambda x: x.ready_ms)

    def _run(self, task: Task, wi: int, t: int) -> JobRun:
        if task.job_id is None:
            task.job_id = f"job-{self._next_id('job'):07d}"
        cached = self.last_wf[wi] == task.workflow.id
        self.last_wf[wi] = task.workflow.id
        share = (t - self.start) / self.span
        return run_attempt(task, s.WORKERS[wi], t, share, cached, self.rng)

    def _finish(self, run: JobRun) -> None:
        """Bookkeeping when an attempt ends: retry, follow-up, or one take closer to review."""
        scene, rng = run.scene, self.rng
        if run.error is not None and run.error[3]:
            bigger = run.worker.gpu.vram_mb + 1 if run.error[0] in ("oom", "timeout") else 0
            backoff = rng.randint(20, 180) * 1000
            task = Task(scene, run.workflow, run.end_ms + backoff, run.job_id, run.attempt + 1)
            task.min_vram_mb, task.params = bigger, run.params
            task.footprint_mb = footprint(run.workflow, scene.resolution)
            self._requeue(task)
            return
        scene.outstanding -= 1
        if run.error is None and run.scores is not None and run.workflow.family != "post":
            scene.like_sum += run.scores["likeness"]
            scene.like_n += 1
            scene.last_job = run.job_id
            post, chance = s.FOLLOW_UPS[scene.scene_type]
            if rng.random() < chance:
                wf = s.WORKFLOWS[post]
                ready = run.end_ms + rng.randint(5, 60) * 1000
                self._requeue(Task(scene, wf, ready, footprint_mb=footprint(wf, scene.resolution)))
                scene.outstanding += 1
        if scene.outstanding == 0 and scene.pending == 0:
            self._submit(scene, run.end_ms)

    def _submit(self, scene: Scene, at: int) -> None:
        reviewer = self.rng.choice(self.reviewers)
        submitted = (at + self.rng.randint(60, 600) * 1000) // 1000 * 1000
        waited = int(self.rng.lognormvariate(0, 0.6) * reviewer[1] * HOUR)
        at = _office_hours(submitted + waited, self.rng) // 1000 * 1000  # the tool keeps seconds
        self._push(at, REVIEW, (scene, reviewer, submitted))

    def _review(self, payload: tuple[Scene, tuple[str, float, float], int], t: int) -> Review:
        scene, (reviewer, _, density), submitted = payload
        rng, segments = self.rng, scene.review_segments
        likeness = scene.like_sum / scene.like_n if scene.like_n else 0.8
        approved = rng.random() < min(0.95, max(0.1, 0.5 + 4 * (likeness - 0.82)))
        notes = segments * density * (rng.uniform(1.0, 3.0) if not approved else rng.random() * 0.4)
        review = Review(self._next_id("review"), reviewer, scene, submitted, t, approved, segments,
                        max(int(notes), 0 if approved else 1))  # fmt: skip
        if approved:
            char = scene.character
            char.approved += 1
            if char.approved == len(char.scenes):
                self._push(t + rng.randint(1, 26) * HOUR, DELIVER, char)
        else:
            scene.review_segments = max(1, round(scene.segments * rng.uniform(0.3, 0.7)))
            scene.pending += scene.review_segments
            scene.like_sum, scene.like_n = 0.0, 0
            self.pool.append(scene)
        return review

    def _sample(self, wi: int, t: int) -> Sample:
        """What worker `wi` did in [t - interval, t): generating if busy for most of it."""
        rng, worker, log = self.rng, s.WORKERS[wi], self.logs[wi]
        begin = t - SAMPLE_MS
        while log and log[0][1] <= begin:
            log.popleft()
        busy, longest, best = 0, 0, None
        for start, stop, job_id, peak in log:
            if start >= t:
                break
            overlap = min(stop, t) - max(start, begin)
            busy += overlap
            if overlap > longest:
                longest, best = overlap, (job_id, peak)
        if any(a <= t - SAMPLE_MS // 2 < b for a, b in self.windows[wi]):
            return Sample(worker, t, "offline", None, 0.0, 0, None, None)
        gpu, share = worker.gpu, busy / SAMPLE_MS
        util = round(min(100.0, share * (90.0 + 9.0 * rng.random())), 1)
        running = best if share >= 0.5 else None
        vram = int(running[1] * rng.uniform(0.85, 1.0)) if running else 0
        vram = vram or rng.randint(450, 1400)  # CUDA context and cached weights
        power = gpu.idle_w + (gpu.max_w - gpu.idle_w) * util / 100 * rng.uniform(0.82, 0.95)
        temp = 32 + 0.46 * util + worker.hotter_c + 4 * rng.random()
        power /= worker.slowdown**0.5  # a throttled card runs lower clocks at the same load
        return Sample(
            worker, t, "generating" if running else "idle", running[0] if running else None, util,
            vram if worker.monitored else None, round(power, 1), round(temp, 1),
        )  # fmt: skip


def _office_hours(at: int, rng: random.Random) -> int:
    """Reviewers work 13:00-23:00 UTC on weekdays; later work waits for the next shift."""
    day, hour = at // DAY, at // HOUR % 24
    if (day + 3) % 7 < 5 and 13 <= hour < 23:
        return at
    day += 1 if hour >= 13 else 0
    while (day + 3) % 7 >= 5:
        day += 1
    return day * DAY + 13 * HOUR + rng.randrange(0, 3 * HOUR)
