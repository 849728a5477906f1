"""The real app (`perflake app`) in headless Chromium: the health page renders its chart, shows
no error, and leaves a screenshot to look at."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import ConsoleMessage, sync_playwright

from ingest.batch import Record
from ingest.pipeline import FlushPolicy, Pipeline
from lake.layout import write_meta

CHROMIUM = Path("/usr/bin/chromium")
PERFLAKE = Path(sys.executable).with_name("perflake")
TOPIC = "perf.job-events"
FIRST_DAY = datetime(2025, 6, 1, tzinfo=UTC)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"
    ),
]


def _events(rng: random.Random) -> list[dict]:
    """A week of a small farm: jobs, failures, samples, reviews and a delivery, seeded."""
    out: list[dict] = []
    for day in range(7):
        for n in range(rng.randint(4, 12)):
            at = FIRST_DAY + timedelta(days=day, hours=8 + n, minutes=rng.randint(0, 59))
            job = {
                "job_id": f"job-{day}-{n}",
                "workflow_id": rng.choice(["wf-liveportrait", "wf-animatediff"]),
                "worker_id": f"gpu-0{rng.randint(1, 4)}",
                "occurred_at": at.isoformat(),
            }
            if rng.random() < 0.2:
                out.append(job | {"event_type": "job.failed", "error_type": "oom"})
            else:
                stages = [{"name": "sample", "duration_ms": rng.randint(1000, 9000)}]
                out.append(
                    job
                    | {"event_type": "job.completed", "frame_count": 24}
                    | {"total_gpu_time_ms": 20_000, "pipeline_stages": stages}
                )
            out.append(
                {
                    "event_type": "worker.sample",
                    "occurred_at": at.isoformat(),
                    "worker_id": job["worker_id"],
                    "gpu_index": 0,
                    "state": "generating",
                    "interval_s": 10,
                }
            )
        reviewed = FIRST_DAY + timedelta(days=day, hours=20)
        out.append(
            {
                "event_type": "review.completed",
                "occurred_at": reviewed.isoformat(),
                "review_id": f"rev-{day}",
                "reviewer_id": "u-1",
                "project_id": "p-1",
                "character_id": "char-1",
                "submitted_at": reviewed.isoformat(),
                "decision": rng.choice(["approved", "rejected"]),
                "segment_count": 3,
                "annotation_count": 1,
            }
        )
    delivered = (FIRST_DAY + timedelta(days=6, hours=22)).isoformat()
    out.append(
        {
            "event_type": "character.delivered",
            "occurred_at": delivered,
            "character_id": "char-1",
            "project_id": "p-1",
            "onboarded_at": FIRST_DAY.isoformat(),
        }
    )
    return [{"schema_version": 1, "event_id": f"ev-{i}"} | e for i, e in enumerate(out)]


def _build_lake(lake: Path) -> Path:
    values = [orjson.dumps(e) for e in _events(random.Random(7))]
    values += [b"not json", orjson.dumps({"schema_version": 2}), b'{"schema_version": 1}']
    received = int((FIRST_DAY + timedelta(days=6)).timestamp() * 1000)
    pipeline = Pipeline(lake, TOPIC, keep_days=3650, policy=FlushPolicy())
    pipeline.add([Record(TOPIC, 0, i, received, None, v) for i, v in enumerate(values)])
    pipeline.flush()
    status = {"group": "perflake-ingest", "topic": TOPIC, "lag": 0, "events_per_s": 8.0}
    write_meta(lake, ingest=status | {"updated_at": datetime.now(UTC).isoformat()})
    return pipeline.lake


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the app did not answer on {url} within {timeout_s} s")


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    lake = _build_lake(tmp_path / "lake")
    port = _free_port()
    log = (tmp_path / "app.log").open("wb")
    # Its own session, so teardown stops perflake and the streamlit server it started, together.
    proc = subprocess.Popen(
        [str(PERFLAKE), "app", "--lake", str(lake), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _font_noise(message: str, url: str) -> bool:
    """Offline machines cannot fetch web fonts; that is not the app's error."""
    text = f"{message} {url}".lower()
    return any(word in text for word in ("font", ".woff", ".ttf"))


def _collect_console_error(message: ConsoleMessage, errors: list[str]) -> None:
    url = message.location.get("url", "")
    if message.type == "error" and not _font_noise(message.text, url):
        errors.append(f"console: {message.text} ({url})")


def test_health_page_in_chromium(app_url: str, tmp_path: Path) -> None:
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--headless",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("console", lambda m: _collect_console_error(m, errors))
            page.goto(app_url, wait_until="domcontentloaded")
            page.get_by_role("heading", name="Ingest health").wait_for(timeout=60_000)
            page.locator(".vega-embed svg.marks").first.wait_for(timeout=60_000)
            page.locator('[data-testid="stDataFrame"]').nth(3).wait_for(timeout=60_000)
            # Let the run finish (the status widget goes away) before judging and shooting.
            page.wait_for_function(
                "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
            )
            page.wait_for_timeout(1000)

            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            metrics = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
            assert {"Jobs completed", "Quarantined", "Ingest lag"} <= set(metrics)
            charts = page.locator(".vega-embed svg.marks")
            assert charts.count() == 2
            # One bar per quarantine rule, each tall enough to see (not squeezed to a line).
            bars = charts.nth(1).locator("g.mark-rect path")
            assert bars.count() == 3
            heights = [(bars.nth(i).bounding_box() or {"height": 0})["height"] for i in range(3)]
            assert min(heights) >= 10, heights
            assert page.get_by_text("The lake at").count() == 0

            # The page scrolls inside Streamlit's main block: grow the window to show all of it.
            height = page.evaluate(
                "document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
            )
            page.set_viewport_size({"width": 1440, "height": int(height)})
            page.wait_for_timeout(500)
            shot = tmp_path / "health.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("PERFLAKE_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / "health.png")
