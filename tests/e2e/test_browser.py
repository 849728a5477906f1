"""The real app (`perflake app`) in headless Chromium on a week of the demo studio: every page
renders its charts and tables with no error box and no console error, the URL carries the view
from page to page, brushing the volume chart zooms it, and each page leaves a screenshot (also
copied to $PERFLAKE_SCREENSHOTS when set, for the README).

One app server and one browser serve every test of the module.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, sync_playwright

from ingest.batch import Record
from ingest.demo import studio_messages
from ingest.pipeline import FlushPolicy, Pipeline
from lake.layout import write_meta

CHROMIUM = Path("/usr/bin/chromium")
PERFLAKE = Path(sys.executable).with_name("perflake")
TOPIC = "perf.job-events"
DEMO_DAYS = 7
WAIT_MS = 90_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"
    ),
]


@dataclass(frozen=True)
class Shown:
    """A page as the navigation names it, and what it must show."""

    title: str
    shot: str
    charts: int
    tables: int


PAGES = [
    Shown("Overview", "overview", 1, 3),
    Shown("Workflows", "workflows", 4, 4),
    Shown("Quality", "quality", 3, 2),
    Shown("Compare", "compare", 0, 1),
    Shown("Workers", "workers", 1, 1),
    Shown("Alerts & thresholds", "alerts", 0, 1),
    Shown("Reports", "reports", 1, 1),
    Shown("Ingest health", "health", 2, 4),
]


def _build_lake(lake: Path) -> Path:
    """A week of the demo studio (ending this hour) through the ingest pipeline."""
    now = int(time.time() * 1000)
    records = [
        Record(TOPIC, 0, i, now, m.key, m.value)
        for i, m in enumerate(studio_messages(days=DEMO_DAYS, seed=7))
    ]
    pipeline = Pipeline(lake, TOPIC, keep_days=90, policy=FlushPolicy())
    pipeline.add(records)
    pipeline.flush()
    status = {"group": "perflake-ingest", "topic": TOPIC, "lag": 0, "events_per_s": 8.0}
    write_meta(pipeline.lake, ingest=status | {"updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ")})
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


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser")
    lake = _build_lake(root / "lake")
    port = _free_port()
    log = (root / "app.log").open("wb")
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(
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
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def seen() -> list[str]:
    """Every page and console error of the shared tab, in order."""
    return []


@pytest.fixture(scope="module")
def tab(browser: Browser, app_url: str, seen: list[str]) -> Iterator[Page]:
    """One tab (one app session) for the page tests, as a user clicking through the app."""
    shared = browser.new_page(viewport={"width": 1440, "height": 1000})
    shared.on("pageerror", lambda e: seen.append(f"page error: {e}"))
    shared.on("console", lambda m: _collect_console_error(m, seen))
    shared.goto(app_url, wait_until="domcontentloaded")
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def page(browser: Browser, seen: list[str]) -> Iterator[Page]:
    """A tab of its own (a new session), for tests that open a URL."""
    own = browser.new_page(viewport={"width": 1440, "height": 1000})
    own.on("pageerror", lambda e: seen.append(f"page error: {e}"))
    own.on("console", lambda m: _collect_console_error(m, seen))
    try:
        yield own
    finally:
        own.close()


def _offline_noise(message: str, url: str) -> bool:
    """Offline machines cannot fetch web fonts (the :material/ icons among them)."""
    text = f"{message} {url}".lower()
    return any(word in text for word in ("font", ".woff", ".ttf", "material"))


def _collect_console_error(message: ConsoleMessage, errors: list[str]) -> None:
    url = message.location.get("url", "")
    if message.type == "error" and not _offline_noise(message.text, url):
        errors.append(f"console: {message.text} ({url})")


def _open(page: Page, title: str, url: str | None = None) -> None:
    """Open the page `title` through the sidebar, as a user does (first the app at `url`)."""
    if url is not None:
        page.goto(url, wait_until="domcontentloaded")
    page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=WAIT_MS)
    _settle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=WAIT_MS)
    _settle(page)


def _settle(page: Page) -> None:
    """Wait until the script run is over (the status widget shown while it runs is gone)."""
    quiet = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"
    page.wait_for_timeout(500)
    page.wait_for_function(quiet, timeout=WAIT_MS)
    page.wait_for_timeout(500)
    page.wait_for_function(quiet, timeout=WAIT_MS)


def _screenshot(page: Page, folder: Path, name: str) -> Path:
    # The page scrolls inside Streamlit's main block: grow the window to show all of it.
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": int(height)})
    page.wait_for_timeout(800)
    shot = folder / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})
    if target := os.environ.get("PERFLAKE_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)
    return shot


@pytest.mark.parametrize("shown", PAGES, ids=[p.shot for p in PAGES])
def test_page_in_chromium(shown: Shown, tab: Page, tmp_path: Path) -> None:
    page = tab
    _open(page, shown.title)
    charts = page.locator(".vega-embed svg.marks")
    if shown.charts:
        charts.nth(shown.charts - 1).wait_for(timeout=WAIT_MS)
        _settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert charts.count() >= shown.charts
    assert page.locator('[data-testid="stDataFrame"]').count() >= shown.tables
    # Every table has its CSV.
    assert page.locator('[data-testid="stDownloadButton"]').count() >= shown.tables
    # The week of data lies in the default range: no empty state.
    assert page.get_by_text("The lake at").count() == 0
    assert page.get_by_text("No data in range").count() == 0
    shot = _screenshot(page, tmp_path, shown.shot)
    assert shot.stat().st_size > 10_000


def test_health_page_shows_the_quarantine(tab: Page) -> None:
    page = tab
    _open(page, "Ingest health")
    page.locator(".vega-embed svg.marks").nth(1).wait_for(timeout=WAIT_MS)
    metrics = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    assert {"Jobs completed", "Quarantined", "Ingest lag"} <= set(metrics)
    # One bar per quarantine rule, each tall enough to see (not squeezed to a line).
    bars = page.locator(".vega-embed svg.marks").nth(1).locator("g.mark-rect path")
    assert bars.count() >= 3
    heights = [(bars.nth(i).bounding_box() or {"height": 0})["height"] for i in range(3)]
    assert min(heights) >= 10, heights


def test_url_carries_the_view_across_pages(app_url: str, page: Page) -> None:
    _open(page, "Workers", f"{app_url}/?range=7d")
    last = datetime.now(UTC).date()
    span = f"{last - timedelta(days=6)} to {last} (UTC days)"
    # The page's caption and the sidebar's both say the preset's days.
    assert page.get_by_text(span).count() == 2
    # Navigating dropped the query string; the app wrote the view back.
    page.wait_for_function("location.search.includes('range=7d')", timeout=WAIT_MS)


def test_brushing_the_volume_chart_zooms_it(tab: Page) -> None:
    page = tab
    _open(page, "Overview")
    chart = page.locator(".vega-embed").first
    chart.locator("svg.marks").wait_for(timeout=WAIT_MS)
    chart.scroll_into_view_if_needed()
    before = _day_labels(chart)
    # The brush strip is the chart's bottom panel, drawn as an area: drag across its middle.
    strip = chart.locator("g.mark-area path").last.bounding_box()
    assert strip is not None
    y = strip["y"] + strip["height"] / 2
    page.mouse.move(strip["x"] + strip["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(strip["x"] + strip["width"] * 0.6, y, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "labels => JSON.stringify(labels) !== JSON.stringify("
        "[...document.querySelector('.vega-embed').querySelectorAll('g.role-axis-label text')]"
        ".map(t => t.textContent).filter(t => t.startsWith('20')))",
        arg=before,
        timeout=10_000,
    )
    # The panels now show the brushed days only; the strip still shows the whole range.
    assert _day_labels(chart) != before


def _day_labels(chart: Locator) -> list[str]:
    """The day labels of every x axis of the chart, top panel first."""
    texts = chart.locator("g.role-axis-label text").all_text_contents()
    return [t for t in texts if t.startswith("20")]


@pytest.fixture(autouse=True)
def _no_errors(seen: list[str]) -> Iterator[None]:
    """Every test fails on a page error or a console error seen while it ran."""
    before = len(seen)
    yield
    assert not seen[before:], seen[before:]
