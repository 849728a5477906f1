"""Shared fixtures: the embedded broker (one per session), a fresh topic per test, a lake folder."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from ingest.broker import EmbeddedBroker, create_topic, free_port
from lake import day_views, rollup, sample_months, views
from queries import base

os.environ.setdefault("TZ", "UTC")
_topics = itertools.count()


@pytest.fixture(autouse=True)
def _views_listed_every_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests write a file and query at once: the month copies' views, the narrowed views, the
    rollups' states, the counts that pick a sample and which tables have files are not reused
    for a second as in the app (tests of their own check the reuse)."""
    monkeypatch.setattr(sample_months, "REUSE_S", 0.0)
    monkeypatch.setattr(day_views, "REUSE_S", 0.0)
    monkeypatch.setattr(rollup, "REUSE_S", 0.0)
    monkeypatch.setattr(base, "ROWS_REUSE_S", 0.0)
    monkeypatch.setattr(views, "SHAPE_REUSE_S", 0.0)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(free_port(), log_path=log) as b:
        yield b


@pytest.fixture
def topic(broker: EmbeddedBroker, request: pytest.FixtureRequest) -> str:
    # The pid keeps two test sessions apart even if they ever shared a broker (a port race):
    # the same topic and group names would split the partitions between their consumers.
    name = f"t{os.getpid()}-{next(_topics)}-{request.node.name[:40]}"
    name = name.replace("[", "-").replace("]", "")
    create_topic(broker.bootstrap, name, 4)
    return name


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


def produce(
    bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None
) -> None:
    """Publish `values` and wait until the broker has them all."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    try:
        for i, value in enumerate(values):
            producer.send(topic, value=value, key=keys[i] if keys else str(i).encode())
        producer.flush()
    finally:
        producer.close()
