"""Open one page of the real app (`app/streamlit_app.py`, its navigation and sidebar included)
in Streamlit's AppTest, on a given lake and URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"

#: The URL of the farm lake's five days (tests/app/conftest.py: 2025-06-01..05).
FARM_DAYS = {"range": "custom", "from": "2025-06-01", "to": "2025-06-05"}


def open_page(
    lake: Path, page: str, monkeypatch: pytest.MonkeyPatch, **params: str | list[str]
) -> AppTest:
    """The app on `lake` with the URL `?params`, switched to `app/screens/<page>.py`, run once.

    The first run goes through the entrypoint (settings, URL state, navigation), as a browser's
    does; the page then runs as it would after a click in the navigation.
    """
    monkeypatch.setenv("PERFLAKE_LAKE", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    at.run()
    at.switch_page(f"screens/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(changed: Any) -> AppTest:
    """Run the app again after a widget change (`changed`: the AppTest or the widget); fails on
    an exception."""
    at: AppTest = changed.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def downloads(at: AppTest) -> list[str]:
    """File names of the page's download buttons, in page order."""
    return [b.key.removeprefix("csv-") for b in at.get("download_button")]


def chart_rows(chart: Any) -> list[dict]:
    """The rows of a chart's first dataset, as the browser gets them (Arrow IPC in the proto)."""
    data = chart.proto.datasets[0].data.data
    return pa.ipc.open_stream(data).read_all().to_pylist()


@contextmanager
def every_range_sampled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within: every range counts as large and the samples are read whatever they hold (the
    test lakes are tiny), with Streamlit's cache cleared on entry and exit, so that no cached
    result crosses into or out of it."""
    import streamlit as st

    from queries import base

    monkeypatch.setattr(base, "SAMPLE_FROM_ROWS", 1)
    monkeypatch.setattr(base, "SAMPLE_COVERAGE", 0.0)
    monkeypatch.setattr(base, "MIN_GROUP_SAMPLE", 1)
    st.cache_data.clear()
    try:
        yield
    finally:
        st.cache_data.clear()
