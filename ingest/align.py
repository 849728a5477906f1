"""Reading a topic's partitions evenly in time, so that a backlog lands in few files.

A flush writes one file per (table, day) it holds. When ingest replays a backlog, each fetch
brings about the same bytes from every partition, but partitions differ in bytes per day (their
keys hash different mixes of events to them), so they drift apart in time: after a while one
flush spans three weeks of days instead of one, and writes three times the files.

As Kafka Streams does when it picks the next record by timestamp, ingest pauses a partition
whose records are more than `AHEAD_MS` (by record timestamp) past the partition furthest
behind, until that one catches up. A partition read to its end holds nobody back, and one that
stops moving for `STALL_S` (an unreachable leader, say) stops the pausing, so alignment can
slow ingest down but never stop it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

#: How far (record timestamp, ms) a partition may run ahead of the one furthest behind.
AHEAD_MS = 1_000
#: Seconds without progress after which the partition furthest behind no longer holds others.
STALL_S = 2.0


@dataclass
class _Partition:
    timestamp: int | None = None  # of the last record read; None: none read yet
    read_to: int | None = None  # offset after the last record read
    moved_at: float = field(default_factory=time.monotonic)


class Alignment:
    """Which partitions to pause, from what was read and each partition's high watermark."""

    def __init__(self) -> None:
        self._parts: dict[int, _Partition] = {}

    def assigned(self, partitions: set[int]) -> None:
        """A new assignment: nothing is known of the partitions' progress (nor paused)."""
        self._parts = {p: _Partition() for p in partitions}

    def read(self, partition: int, read_to: int, timestamp: int) -> None:
        part = self._parts.setdefault(partition, _Partition())
        part.read_to, part.timestamp, part.moved_at = read_to, timestamp, time.monotonic()

    def to_pause(self, highwater: dict[int, int | None]) -> set[int]:
        """The partitions to pause now (the others are to be resumed).

        `highwater`: per assigned partition, its end offset as last fetched (None: unknown).
        Only these partitions are considered (mid-rebalance, those read before may be gone).
        """
        now = time.monotonic()
        pending = {}
        for p, end in highwater.items():
            part = self._parts.setdefault(p, _Partition())
            if end is None or part.read_to is None or part.read_to < end:
                pending[p] = part
        if len(pending) < 2:
            return set()
        behind = min(
            pending.values(), key=lambda part: -1 if part.timestamp is None else part.timestamp
        )
        if now - behind.moved_at >= STALL_S:
            return set()
        floor = behind.timestamp if behind.timestamp is not None else -1
        return {
            p
            for p, part in pending.items()
            if part.timestamp is not None and part.timestamp > floor + AHEAD_MS
        }
