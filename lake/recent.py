"""A memo for what a page's queries ask again within a second: file listings, rollup states,
row counts. Listing a year of day folders costs about 10 ms, and a page's half dozen queries
ask the same; a file written meanwhile counts a second later at most, as with the app's cache
key. Each module keeps its own memo and its own seconds (tests set them to 0).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Values kept for a while, thread-safe; an entry past its time is never read again and is
    dropped when a new one is kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[K, tuple[float, V]] = {}

    def get(self, key: K, seconds: float) -> V | None:
        """The value kept for `key` less than `seconds` ago, else None."""
        with self._lock:
            found = self._kept.get(key)
        if found is None or time.monotonic() - found[0] > seconds:
            return None
        return found[1]

    def put(self, key: K, value: V, seconds: float) -> V:
        """Keep `value` for `key` (dropping entries older than `seconds`); returns it."""
        now = time.monotonic()
        with self._lock:
            for old in [k for k, (at, _) in self._kept.items() if now - at > seconds]:
                del self._kept[old]
            self._kept[key] = (now, value)
        return value

    def forget(self, which: Callable[[K], bool]) -> None:
        """Drop the entries whose key `which` picks."""
        with self._lock:
            for key in [k for k in self._kept if which(k)]:
                del self._kept[key]
