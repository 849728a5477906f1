"""The delivery, throughput and cost reports against one tiny hand-built lake.

Period 2025-06-11..06-20 (10 days); previous 06-01..06-10; the trend's six periods start on
04-22, 05-02, 05-12, 05-22, 06-01 and 06-11. The lake's first day is 05-02 (job j01), so the
04-22 period has no data (null) and the others are whole.

Deliveries (turnaround = delivered - onboarded):
  d0   char-0 p2  05-05 00:00, onboarded 05-02 00:00             3 days
  d1   char-1 p1  06-05 12:00, onboarded 05-26 12:00            10 days   scenes 3
  d2   char-2 p2  06-08 00:00, onboarded 06-02 00:00             6 days
  d3a  char-3 p1  06-12 12:00, onboarded 06-02 12:00  (superseded by d3b)  scenes 4
  d3b  char-3 p1  06-18 12:00, onboarded 06-02 12:00            16 days   scenes 5
  d4   char-4 p1  06-15 00:00, onboarded 06-11 00:00             4 days   scenes 2
  d5   char-5 p2  06-10 23:30 at -01:00 = 06-11 00:30 UTC, onboarded 06-02 00:30: 9 days

Work (gpu ms; rates H100 2.50, A100 1.50, L40S 1.00, RTX 4090 0.50 USD per GPU-hour):
  j01  char-0  05-02  idle 1080p  L40S      1_800_000
  j11  char-1  06-01  idle 1080p  A100      7_200_000  wall 7_200_000        -> $3.00
  j31  char-3  06-05  walk 4k     H100      3_600_000  wall 4_000_000        -> $2.50
  j32  char-3  06-06  idle 1080p  L40S      1_800_000  wall 2_000_000  cost_usd 2.00
  f33  char-3  06-07  walk 4k     H100      1_080_000  (failed)              -> $0.75
  j34  char-3  06-19  after its delivery: not its work
  j35  char-3  06-01  before its onboarding: not its work
  j41  char-4  06-12  idle 720p   RTX 4090  1_800_000  wall 1_900_000        -> $0.25
  j42  char-4  06-13  dialogue 720p RTX 4090 1_800_000 wall 2_000_000        -> $0.25
  char-5 has no work; char-2 neither.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from queries.reports import ReportOptions, build_report
from tests.lakes import write_events

START, END = date(2025, 6, 11), date(2025, 6, 20)


def _delivery(
    event_id: str, at: str, character: str, project: str, onboarded: str, **extra
) -> dict:
    return {
        "event_type": "character.delivered",
        "event_id": event_id,
        "occurred_at": at,
        "character_id": character,
        "project_id": project,
        "onboarded_at": onboarded,
    } | extra


def _job(
    event_id: str, at: str, character: str, scene: str, tier: str, gpu_model: str, gpu: int, **extra
) -> dict:
    return {
        "event_type": "job.completed",
        "event_id": event_id,
        "occurred_at": at,
        "job_id": f"job-{event_id}",
        "workflow_id": "wf-a",
        "worker_id": "gpu-01",
        "gpu_model": gpu_model,
        "character_id": character,
        "scene_type": scene,
        "resolution_tier": tier,
        "frame_count": 100,
        "total_gpu_time_ms": gpu,
    } | extra


H100, A100, L40S, RTX = (
    "NVIDIA H100 80GB HBM3",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA L40S",
    "NVIDIA GeForce RTX 4090",
)

EVENTS = [
    _delivery("d0", "2025-05-05T00:00:00Z", "char-0", "p2", "2025-05-02T00:00:00Z"),
    _delivery("d1", "2025-06-05T12:00:00Z", "char-1", "p1", "2025-05-26T12:00:00Z", scene_count=3),
    _delivery("d2", "2025-06-08T00:00:00Z", "char-2", "p2", "2025-06-02T00:00:00Z"),
    _delivery("d3a", "2025-06-12T12:00:00Z", "char-3", "p1", "2025-06-02T12:00:00Z", scene_count=4),
    _delivery("d3b", "2025-06-18T12:00:00Z", "char-3", "p1", "2025-06-02T12:00:00Z", scene_count=5),
    _delivery("d4", "2025-06-15T00:00:00Z", "char-4", "p1", "2025-06-11T00:00:00Z", scene_count=2),
    _delivery("d5", "2025-06-10T23:30:00-01:00", "char-5", "p2", "2025-06-02T00:30:00Z"),
    _job("j01", "2025-05-02T10:00:00Z", "char-0", "idle", "1080p", L40S, 1_800_000),
    _job("j11", "2025-06-01T10:00:00Z", "char-1", "idle", "1080p", A100, 7_200_000, total_wall_time_ms=7_200_000),
    _job("j31", "2025-06-05T10:00:00Z", "char-3", "walk", "4k", H100, 3_600_000, total_wall_time_ms=4_000_000),
    _job("j32", "2025-06-06T10:00:00Z", "char-3", "idle", "1080p", L40S, 1_800_000, total_wall_time_ms=2_000_000, cost_usd=2.0),
    {
        "event_type": "job.failed",
        "event_id": "f33",
        "occurred_at": "2025-06-07T10:00:00Z",
        "job_id": "job-f33",
        "workflow_id": "wf-a",
        "worker_id": "gpu-01",
        "gpu_model": H100,
        "character_id": "char-3",
        "scene_type": "walk",
        "resolution_tier": "4k",
        "error_type": "oom",
        "total_gpu_time_ms": 1_080_000,
    },
    _job("j34", "2025-06-19T10:00:00Z", "char-3", "idle", "1080p", H100, 36_000_000),
    _job("j35", "2025-06-01T10:00:00Z", "char-3", "idle", "1080p", H100, 36_000_000),
    _job("j41", "2025-06-12T10:00:00Z", "char-4", "idle", "720p", RTX, 1_800_000, total_wall_time_ms=1_900_000),
    _job("j42", "2025-06-13T10:00:00Z", "char-4", "dialogue", "720p", RTX, 1_800_000, total_wall_time_ms=2_000_000),
]  # fmt: skip


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("characters") / "lake", EVENTS)


# --- delivery -------------------------------------------------------------------------------


def test_delivery_headline_and_summary(lake: Path) -> None:
    r = build_report(lake, "delivery", START, END)
    assert r.title == "Delivery summary"
    assert r.headline == {
        "characters": 3,
        "characters_previous": 2,
        "characters_change_pct": 50.0,
        "projects": 2,
        "projects_previous": 2,
        "projects_change_pct": 0.0,
        "scenes": 7,
        "scenes_previous": 3,
        "scenes_change_pct": pytest.approx(400 / 3),
        "trend_periods": 4,
        "trend_average_characters": 0.75,
    }
    assert r.summary == [
        "In the period 11 Jun 2025 to 20 Jun 2025, 3 characters were delivered across 2 projects, "
        "up 50% on the previous 10 days (2).",
        "By project: p1 2 and p2 1.",
        "Scenes delivered: 7, up 133% on the previous 10 days (3).",
        "Characters delivered per 10-day period since 2 May 2025, oldest first: 1, 0, 0, 2 and 3.",
        "This period is above the average of the 4 full periods before it (0.8 characters).",
    ]


def test_delivery_tables(lake: Path) -> None:
    r = build_report(lake, "delivery", START, END)
    assert list(r.tables) == ["by_project", "trend", "trend_by_project", "deliveries"]
    assert r.tables["by_project"].rows() == [("p1", 2, 7, 1, 100.0), ("p2", 1, 0, 1, 0.0)]
    assert r.tables["trend"].rows() == [
        (date(2025, 4, 22), date(2025, 5, 1), None, None, None, False),
        (date(2025, 5, 2), date(2025, 5, 11), 1, 1, 0, True),
        (date(2025, 5, 12), date(2025, 5, 21), 0, 0, 0, True),
        (date(2025, 5, 22), date(2025, 5, 31), 0, 0, 0, True),
        (date(2025, 6, 1), date(2025, 6, 10), 2, 2, 3, True),
        (date(2025, 6, 11), date(2025, 6, 20), 3, 2, 7, True),
    ]
    assert r.tables["trend_by_project"].rows() == [
        (date(2025, 5, 2), "p2", 1),
        (date(2025, 6, 1), "p1", 1),
        (date(2025, 6, 1), "p2", 1),
        (date(2025, 6, 11), "p1", 2),
        (date(2025, 6, 11), "p2", 1),
    ]
    # char-3 counts once, with its last delivery; d5 is on 06-11 in UTC.
    got = r.tables["deliveries"]
    assert got.drop("turnaround_days").rows() == [
        (date(2025, 6, 11), "p2", "char-5", None),
        (date(2025, 6, 15), "p1", "char-4", 2),
        (date(2025, 6, 18), "p1", "char-3", 5),
    ]
    assert got["turnaround_days"].to_list() == pytest.approx([9.0, 4.0, 16.0])


def test_delivery_project_filter(lake: Path) -> None:
    r = build_report(lake, "delivery", START, END, project="p2")
    assert (r.headline["characters"], r.headline["characters_previous"]) == (1, 1)
    assert r.tables["trend"]["characters"].to_list() == [None, 1, 0, 0, 1, 1]
    assert r.summary[0] == (
        "In the period 11 Jun 2025 to 20 Jun 2025, 1 character was delivered across 1 project, "
        "the same as the previous 10 days (1)."
    )


def test_delivery_without_previous_data(lake: Path) -> None:
    r = build_report(lake, "delivery", date(2025, 5, 2), date(2025, 5, 11))
    assert (r.headline["characters"], r.headline["characters_previous"]) == (1, None)
    assert r.headline["characters_change_pct"] is None
    assert r.tables["by_project"].rows() == [("p2", 1, 0, None, None)]
    assert r.summary[0] == (
        "In the period 2 May 2025 to 11 May 2025, 1 character was delivered across 1 project; "
        "the previous 10 days have no data to compare with."
    )


# --- throughput -----------------------------------------------------------------------------


def test_throughput_headline_and_summary(lake: Path) -> None:
    r = build_report(lake, "throughput", START, END)
    h = r.headline
    assert (h["characters"], h["characters_previous"]) == (3, 2)
    # (16 + 4 + 9) / 3 against (10 + 6) / 2; medians 9 and 8.
    assert (h["avg_turnaround_days"], h["avg_turnaround_days_previous"]) == pytest.approx(
        (29 / 3, 8.0)
    )
    assert (h["median_turnaround_days"], h["median_turnaround_days_previous"]) == (9.0, 8.0)
    assert r.summary == [
        "Average turnaround from onboarding to delivery: 9.7 days over 3 delivered characters "
        "(median 9.0 days), up 21% on the previous 10 days (8.0 days).",
        "Average turnaround of the 10-day periods with deliveries since 2 May 2025, oldest first: "
        "3.0, 8.0 and 9.7 days.",
        "By project, p2 was the quickest: 9.0 days on average (1 character); p1 the slowest: "
        "10.0 days (2 characters).",
        "By main scene type (the one that took most of a character's GPU time), dialogue was the "
        "quickest: 4.0 days on average (1 character); walk the slowest: 16.0 days (1 character).",
        "By main resolution tier, 720p was the quickest: 4.0 days on average (1 character); 4k "
        "the slowest: 16.0 days (1 character).",
    ]


def test_throughput_breakdowns(lake: Path) -> None:
    r = build_report(lake, "throughput", START, END)
    assert list(r.tables) == ["by_project", "by_scene_type", "by_resolution_tier", "trend"]
    # char-3: walk 3.6M + 1.08M ms against idle 1.8M (j34, j35 fall outside its work): walk, 4k.
    # char-4: idle and dialogue 1.8M each, a tie broken by name: dialogue; 720p.
    # char-5: no work, no main scene type or tier.
    assert r.tables["by_scene_type"].rows() == [
        ("walk", 1, 16.0, 16.0),
        ("dialogue", 1, 4.0, 4.0),
        (None, 1, 9.0, 9.0),
    ]
    assert r.tables["by_resolution_tier"].rows() == [
        ("4k", 1, 16.0, 16.0),
        ("720p", 1, 4.0, 4.0),
        (None, 1, 9.0, 9.0),
    ]
    assert r.tables["by_project"].rows() == [
        ("p1", 2, 10.0, 10.0, 10.0, 0.0),
        ("p2", 1, 9.0, 9.0, 6.0, 50.0),
    ]
    trend = r.tables["trend"]
    assert trend["characters"].to_list() == [None, 1, 0, 0, 2, 3]
    assert trend["avg_turnaround_days"].to_list() == pytest.approx(
        [None, 3.0, None, None, 8.0, 29 / 3]
    )


# --- cost -----------------------------------------------------------------------------------


def test_cost_headline(lake: Path) -> None:
    r = build_report(lake, "cost", START, END)
    h = r.headline
    # Current: char-3 1.3 + 0.5 h GPU, $2.50 + $2.00 + $0.75; char-4 1.0 h, $0.50; char-5 none.
    assert (h["characters"], h["characters_with_work"], h["characters_previous"]) == (3, 2, 2)
    assert h["characters_with_work_previous"] == 1
    assert (h["avg_cost_usd_per_character"], h["avg_cost_usd_per_character_previous"]) == (
        pytest.approx(2.875),
        pytest.approx(3.0),
    )
    assert (h["avg_gpu_hours_per_character"], h["avg_gpu_hours_per_character_previous"]) == (
        pytest.approx(1.4),
        pytest.approx(2.0),
    )
    # Wall: char-3 4.0M + 2.0M ms (f33 sent none), char-4 3.9M ms.
    assert h["avg_wall_hours_per_character"] == pytest.approx(9.9 / 3.6 / 2)
    assert (h["total_cost_usd"], h["total_gpu_hours"]) == (pytest.approx(5.75), pytest.approx(2.8))
    assert h["event_cost_share"] == pytest.approx(2.0 / 5.75)


def test_cost_summary(lake: Path) -> None:
    r = build_report(lake, "cost", START, END)
    assert r.summary == [
        "Cost per delivered character: $2.88 on average, down 4.2% on the previous 10 days "
        "($3.00).",
        "GPU time per character: 1.4 h on average, down 30% on the previous 10 days (2.0 h).",
        "Wall time per character: 1.4 h on average, down 31% on the previous 10 days (2.0 h).",
        "3 characters delivered; 1 without recorded GPU work is left out of these averages.",
        "In all, $5.75 for 2.8 h of GPU time, 34.8% of it as the producers reported (cost_usd).",
        "Most expensive scene types: walk ($3.25 per character), idle ($1.12 per character) and "
        "dialogue ($0.25 per character).",
        "Rates applied where events sent no cost: NVIDIA H100 80GB HBM3 at $2.50 per GPU-hour and "
        "NVIDIA GeForce RTX 4090 at $0.50 per GPU-hour.",
    ]


def test_cost_tables(lake: Path) -> None:
    r = build_report(lake, "cost", START, END)
    by_scene = r.tables["by_scene_type"]
    assert by_scene.select("scene_type", "characters").rows() == [
        ("walk", 1),
        ("idle", 2),
        ("dialogue", 1),
    ]
    assert by_scene["avg_gpu_hours"].to_list() == pytest.approx([1.3, 0.5, 0.5])
    assert by_scene["avg_wall_hours"].to_list() == pytest.approx([4 / 3.6, 1.95 / 3.6, 2 / 3.6])
    assert by_scene["avg_cost_usd"].to_list() == pytest.approx([3.25, 1.125, 0.25])
    assert by_scene["cost_share"].to_list() == pytest.approx(
        [3.25 / 5.75, 2.25 / 5.75, 0.25 / 5.75]
    )
    by_model = r.tables["by_gpu_model"]
    assert by_model.select("gpu_model", "attempts", "hourly_rate_usd").rows() == [
        (H100, 2, 2.5),
        (L40S, 1, 1.0),
        (RTX, 2, 0.5),
    ]
    assert by_model["rate_cost_usd"].to_list() == pytest.approx([3.25, 0.0, 0.5])
    assert by_model["event_cost_usd"].to_list() == pytest.approx([0.0, 2.0, 0.0])
    characters = r.tables["characters"]
    assert characters.select("character_id", "project_id", "attempts").rows() == [
        ("char-3", "p1", 3),
        ("char-4", "p1", 2),
        ("char-5", "p2", 0),
    ]
    assert characters["cost_usd"].to_list() == pytest.approx([5.25, 0.5, 0.0])


def test_cost_rates_are_configurable(lake: Path) -> None:
    # A100 matches no key of these rates: "*" prices it. "RTX 4090" is contained in RTX's name.
    options = ReportOptions(gpu_hourly_usd={"H100": 4.0, "RTX 4090": 1.0, "*": 2.0})
    r = build_report(lake, "cost", START, END, options=options)
    # char-3: 1.3 h H100 = $5.20 + $2.00 sent; char-4: 1.0 h at $1 -> (7.20 + 1.00) / 2.
    assert r.headline["avg_cost_usd_per_character"] == pytest.approx(4.1)
    # char-1: 2 h A100 at "*" $2.
    assert r.headline["avg_cost_usd_per_character_previous"] == pytest.approx(4.0)


def test_cost_project_filter(lake: Path) -> None:
    r = build_report(lake, "cost", START, END, project="p2")
    assert (r.headline["characters"], r.headline["characters_with_work"]) == (1, 0)
    assert r.headline["avg_cost_usd_per_character"] is None
    assert r.summary == [
        "1 character delivered in the period, none with GPU work recorded between onboarding and "
        "delivery: no cost to report."
    ]


def test_cost_warns_about_work_before_the_lake(lake: Path) -> None:
    # char-0 was onboarded on 05-02, the lake's first day: nothing is missing.
    r = build_report(lake, "cost", date(2025, 5, 2), date(2025, 5, 11))
    assert not any("onboarded before" in line for line in r.summary)
    assert r.headline["avg_cost_usd_per_character"] == pytest.approx(0.5)


@pytest.mark.parametrize("kind", ["delivery", "throughput", "cost"])
def test_empty_period(lake: Path, kind: str) -> None:
    r = build_report(lake, kind, date(2024, 1, 1), date(2024, 1, 31))
    assert r.summary == [
        "No data in the period 1 Jan 2024 to 31 Jan 2024: no character was delivered.",
        "The lake holds data from 2 May 2025 to 19 Jun 2025.",
    ]
    for name, table in r.tables.items():
        if name == "trend":
            assert table["characters"].to_list() == [None] * 6
        else:
            assert table.is_empty(), name
    assert r.headline["characters"] == 0
    assert r.headline["characters_previous"] is None
