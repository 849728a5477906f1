"""`ingest.align`: which partitions to pause so that a backlog is read evenly in time."""

from __future__ import annotations

import pytest

from ingest import align
from ingest.align import AHEAD_MS, STALL_S, Alignment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(align.time, "monotonic", lambda: now[0])
    return now


def test_a_partition_more_than_the_margin_ahead_of_the_one_behind_is_paused(clock) -> None:
    a = Alignment()
    a.assigned({0, 1, 2})
    a.read(0, 100, 50_000)
    a.read(1, 100, 50_000 + AHEAD_MS)  # at the margin: keeps reading
    a.read(2, 100, 50_000 + AHEAD_MS + 1)
    assert a.to_pause({0: 500, 1: 500, 2: 500}) == {2}
    a.read(0, 200, 51_000)  # partition 0 caught up in time
    assert a.to_pause({0: 500, 1: 500, 2: 500}) == set()


def test_a_partition_read_to_its_end_holds_nobody_back(clock) -> None:
    a = Alignment()
    a.assigned({0, 1, 2})
    a.read(0, 500, 10_000)  # at its high watermark
    a.read(1, 100, 90_000)
    a.read(2, 100, 20_000)
    assert a.to_pause({0: 500, 1: 500, 2: 500}) == {1}
    assert a.to_pause({0: 500, 1: 500, 2: 100}) == set()  # 2 done too: one partition left


def test_a_partition_not_read_yet_is_furthest_behind(clock) -> None:
    a = Alignment()
    a.assigned({0, 1, 2})
    a.read(1, 100, 5_000)
    a.read(2, 100, 7_000)
    assert a.to_pause({0: None, 1: 500, 2: 500}) == {1, 2}
    # Unknown high watermark of a partition read: it still counts as having more to read.
    assert a.to_pause({0: None, 1: None, 2: 500}) == {1, 2}


def test_a_partition_that_stops_moving_stops_the_pausing(clock) -> None:
    a = Alignment()
    a.assigned({0, 1})
    a.read(0, 100, 0)
    a.read(1, 100, 10 * AHEAD_MS)
    assert a.to_pause({0: 500, 1: 500}) == {1}
    clock[0] += STALL_S
    assert a.to_pause({0: 500, 1: 500}) == set()
    a.read(0, 200, 1)  # it moves again
    assert a.to_pause({0: 500, 1: 500}) == {1}


def test_a_new_assignment_forgets_the_progress(clock) -> None:
    a = Alignment()
    a.assigned({0, 1})
    a.read(0, 100, 0)
    a.read(1, 100, 10 * AHEAD_MS)
    a.assigned({1, 2})
    assert a.to_pause({1: 500, 2: 500}) == set()  # neither has been read since


def test_only_the_partitions_given_are_considered(clock) -> None:
    a = Alignment()
    a.assigned({0, 1, 2})
    a.read(0, 100, 0)  # revoked since: not among the high watermarks given
    a.read(1, 100, 10 * AHEAD_MS)
    a.read(2, 100, 20 * AHEAD_MS)
    assert a.to_pause({1: 500, 2: 500}) == {2}
