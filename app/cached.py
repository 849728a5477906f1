"""Query results the pages share, cached per lake, arguments and lake version.

A result is reused for `CACHE_TTL_S` seconds at most, and never once the lake has changed: the
key holds a cheap version of the lake (the newest change time of its partition folders), so new
data shows on the next rerun without a restart. Only functions of the `queries` package run here.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from app.state import CACHE_TTL_S, settings
from lake.layout import partition_days, partition_dir
from lake.tables import TABLES

T = TypeVar("T")


def result(query: Callable[..., T], *args: Any) -> T:
    """`query(lake, *args)` for this session's lake, from the cache while the lake is unchanged."""
    module, name = query.__module__, query.__name__
    if not module.startswith("queries."):
        raise ValueError(f"query: {module}.{name} is not a function of the queries package")
    lake = settings().lake
    value: T = _run(module, name, str(lake), lake_version(lake), args)
    return value


#: Seconds a computed lake version is reused: a page's queries, run one after the other, share
#: one (on a year-long lake computing it takes 2,920 `stat` calls, about 35 ms).
VERSION_REUSE_S = 1.0
_versions: dict[Path, tuple[float, int]] = {}


def lake_version(lake: Path) -> int:
    """Newest change time (ns) of the lake's partition folders; 0 for an empty or missing lake.

    The writer publishes a file into its partition folder and compaction swaps folders: either
    changes a folder's time, so new data means a new version (retention dropping a day does not;
    the TTL covers it). Reused for VERSION_REUSE_S, so new data shows a second later at most.
    """
    now = time.monotonic()
    known = _versions.get(lake)
    if known is not None and now - known[0] < VERSION_REUSE_S:
        return known[1]
    version = _newest_change(lake)
    _versions[lake] = (now, version)
    return version


def _newest_change(lake: Path) -> int:
    newest = 0
    for table in TABLES:
        for day in partition_days(lake, table):
            try:
                newest = max(newest, partition_dir(lake, table, day).stat().st_mtime_ns)
            except OSError:  # swapped away by compaction or retention since the listing
                continue
    return newest


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=512)
def _run(module: str, name: str, lake: str, version: int, args: tuple[Any, ...]) -> Any:
    del version  # part of the cache key only
    query = getattr(importlib.import_module(module), name)
    return query(Path(lake), *args)
