"""Tiny, visible test events built from the contract's own examples (one field changed at a time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"
EXAMPLES = CONTRACT / "examples"


def example(name: str) -> dict[str, Any]:
    """The contract's example of one event type, e.g. example("job.completed")."""
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def bad_lines() -> list[bytes]:
    """Every line of the contract's bad.jsonl, as the raw bytes a producer would send."""
    return [line for line in (EXAMPLES / "bad.jsonl").read_bytes().split(b"\n") if line]


def event(name: str, **changes: Any) -> dict[str, Any]:
    doc = example(name)
    doc.update(changes)
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def mixed_stream(n: int, day: str = "2026-11-20") -> list[bytes]:
    """`n` valid events of every type with distinct ids, on one UTC day."""
    kinds = [
        "job.completed",
        "worker.sample",
        "job.failed",
        "review.completed",
        "character.delivered",
    ]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        minute, second = divmod(i % 3600, 60)
        doc = event(
            kind, event_id=f"ev-{i:06d}", occurred_at=f"{day}T10:{minute:02d}:{second:02d}Z"
        )
        if kind.startswith("job."):
            doc["job_id"] = f"job-{i:06d}"
        out.append(encode(doc))
    return out
