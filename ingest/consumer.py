"""The ingest service: a kafka-python consumer group member that feeds the pipeline and commits.

An offset is committed only after the pipeline reports every record before it published; a
revoked partition's buffer is dropped, never committed; SIGTERM/SIGINT flush, commit and return.
A broker that is down is retried with backoff, keeping what is buffered.

A partition that a rebalance revokes and gives straight back keeps its fetch position in
kafka-python (3.x preserves the state of partitions in both assignments), so the consumer is
moved back to the first record of the dropped buffer: otherwise those records would be skipped,
and a later commit past them would lose them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from ingest import fetch
from ingest.align import Alignment
from ingest.batch import Chunk
from ingest.pipeline import Stats
from ingest.runner import InlineRunner, ProcessRunner
from ingest.settings import IngestSettings
from lake import LakeError
from lake.layout import write_meta

log = logging.getLogger("perflake.ingest")

_BACKOFF_START_S = 0.5
_BACKOFF_MAX_S = 30.0


@dataclass
class _Progress:
    started: float
    last_at: float
    last_records: int = 0
    lag: int | None = None


class Ingest:
    """One ingest service instance; `run()` returns the stats when it stops."""

    def __init__(self, settings: IngestSettings, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.stop = stop or threading.Event()
        self._pending: dict[int, int] = {}
        self._assigned: set[int] = set()
        self._assigned_at: float | None = None
        # Per partition: the first offset read and not yet published, the offset after the last
        # one read, and (after a revocation) where to resume if the partition comes back.
        self._unpublished: dict[int, int] = {}
        self._read_to: dict[int, int] = {}
        self._rewind: dict[int, int] = {}
        # Partitions read evenly in time (see ingest.align): those paused for running ahead.
        self._align = Alignment()
        self._paused: set[int] = set()
        runner_type = ProcessRunner if settings.workers else InlineRunner
        # Started before any Kafka client thread exists, so the fork copies no running threads.
        self.runner = runner_type(
            settings.lake, settings.topic, settings.keep_days, settings.policy
        )
        self.consumer: KafkaConsumer | None = None
        self.read = 0

    @property
    def stats(self) -> Stats:
        return self.runner.stats

    def run(self) -> Stats:
        try:
            self.consumer = self._connect()
            self.consumer.subscribe([self.settings.topic], listener=_Listener(self))
            self._loop()
            self.runner.flush(self._published)
            self._commit(final=True)
        finally:
            if self.consumer is not None:
                self.consumer.close(autocommit=False)
            self.runner.close()
        self._report(final=True)
        return self.stats

    def _loop(self) -> None:
        assert self.consumer is not None
        s = self.settings
        progress = _Progress(time.monotonic(), time.monotonic())
        last_record_at = time.monotonic()
        flushed_at_read = 0  # records read when ingest last caught up and flushed (until-idle)
        while not self.stop.is_set():
            polled = self._poll()
            now = time.monotonic()
            chunks = []
            for tp, messages in polled.items():
                if not messages:
                    continue
                chunk = Chunk(
                    tp.topic,
                    tp.partition,
                    [m[0] for m in messages],
                    [m[1] for m in messages],
                    [m[2] for m in messages],
                    [m[3] for m in messages],
                )
                self._unpublished.setdefault(tp.partition, chunk.offsets[0])
                self._read_to[tp.partition] = chunk.offsets[-1] + 1
                self._align.read(tp.partition, chunk.offsets[-1] + 1, chunk.timestamps[-1])
                chunks.append(chunk)
                self.read += len(chunk.offsets)
                last_record_at = now
            if chunks:
                self.runner.submit(chunks, self._published)
            self._align_partitions()
            self.runner.tick(self._published)
            self._commit()
            if now - progress.last_at >= s.progress_every_s:
                if self._assigned_at is None:
                    log.warning(
                        "no partition assignment yet from %s (broker unreachable, or the group is forming); retrying",
                        s.bootstrap_servers,
                    )
                progress.lag = self._lag()
                self._report(progress=progress)
            if s.until_idle_s is not None and not polled:
                if self._assigned_at is None:
                    last_record_at = now  # waiting for an assignment is not idleness
                elif self.read > flushed_at_read and self._all_read():
                    # Caught up with a backlog: publish now rather than after the idle wait.
                    self.runner.flush(self._published)
                    self._commit()
                    flushed_at_read = self.read
                elif (
                    now - max(last_record_at, self._assigned_at) >= s.until_idle_s
                    and self._all_read()
                ):
                    log.info(
                        "idle for %.1f s at the end of every partition: stopping", s.until_idle_s
                    )
                    return

    def _align_partitions(self) -> None:
        """Pause the partitions running ahead in time, resume the others (see ingest.align)."""
        assert self.consumer is not None
        mine = {tp.partition: tp for tp in self.consumer.assignment()}
        pause = self._align.to_pause({p: self.consumer.highwater(tp) for p, tp in mine.items()})
        self._paused &= mine.keys()  # a partition revoked meanwhile is no longer ours to resume
        if pause == self._paused:
            return
        self.consumer.pause(*(mine[p] for p in pause - self._paused))
        self.consumer.resume(*(mine[p] for p in self._paused - pause))
        log.debug("partitions paused to read evenly in time: %s", sorted(pause))
        self._paused = pause

    def _poll(self) -> dict:
        assert self.consumer is not None
        try:
            return self.consumer.poll(timeout_ms=200, max_records=self.settings.max_poll_records)
        except KafkaError as e:
            log.warning("poll failed (%s); retrying", e)
            time.sleep(_BACKOFF_START_S)
            return {}

    def _connect(self) -> KafkaConsumer:
        s = self.settings
        delay = _BACKOFF_START_S
        while True:
            try:
                consumer = KafkaConsumer(**(_consumer_defaults(s) | s.kafka))
                fetch.install(consumer)  # polls return (offset, timestamp, key, value) rows
                return consumer
            except (KafkaTimeoutError, KafkaConnectionError):
                if self.stop.is_set():
                    raise
                log.warning(
                    "Kafka at %s is unreachable; retrying in %.1f s", s.bootstrap_servers, delay
                )
                self.stop.wait(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)

    def _published(self, offsets: dict[int, int]) -> None:
        for partition, offset in offsets.items():
            if partition not in self._assigned:
                continue
            self._pending[partition] = max(offset, self._pending.get(partition, 0))
            if self._read_to.get(partition, 0) > offset:
                self._unpublished[partition] = max(offset, self._unpublished.get(partition, 0))
            else:
                self._unpublished.pop(partition, None)

    def _revoked(self, partitions: list[int]) -> None:
        """Drop the revoked partitions' buffers; remember where each dropped buffer began."""
        self.runner.drop(partitions, self._published)
        # A rebalance has begun: until the next assignment, ingest is waiting, not idle, and must
        # not ask the coordinator for offsets (that call, mid-join, made kafka-python join again).
        self._assigned_at = None
        for p in partitions:
            self._assigned.discard(p)
            self._pending.pop(p, None)
            self._read_to.pop(p, None)
            first = self._unpublished.pop(p, None)
            if first is not None:
                self._rewind[p] = first

    def _assigned_now(self, assigned: set[TopicPartition]) -> None:
        """Take the new assignment; a partition given back resumes at its dropped buffer."""
        assert self.consumer is not None
        self._assigned = {tp.partition for tp in assigned}
        self._assigned_at = time.monotonic() if assigned else None
        # kafka-python may keep a partition's pause across the rebalance: start even.
        self.consumer.resume(*assigned)
        self._align.assigned(self._assigned)
        self._paused = set()
        log.info("partitions assigned: %s", sorted(self._assigned))
        for tp in sorted(assigned):
            offset = self._rewind.get(tp.partition)
            if offset is not None:
                log.info(
                    "partition %d is back: reading again from offset %d (its dropped buffer)",
                    tp.partition,
                    offset,
                )
                self.consumer.seek(tp, offset)
        # A partition given to another member starts there from the group's committed offset.
        self._rewind.clear()

    def _commit(self, final: bool = False) -> None:
        if not self._pending or self.consumer is None:
            return
        topic = self.settings.topic
        offsets = {
            TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in self._pending.items()
        }
        delay = _BACKOFF_START_S
        while True:
            try:
                self.consumer.commit(offsets)
                log.debug("committed %s", self._pending)
                self._pending.clear()
                return
            except KafkaError as e:
                if not final:
                    log.warning("commit failed (%s); will retry after the next poll", e)
                    return
                if self.stop.is_set() and delay > _BACKOFF_MAX_S:
                    log.error(
                        "giving up the final commit (%s); the records will be read again and deduplicated",
                        e,
                    )
                    return
                log.warning("final commit failed (%s); retrying in %.1f s", e, delay)
                time.sleep(delay)
                delay *= 2

    def _all_read(self) -> bool:
        """Every partition of the topic read to its end: by us, or committed by the group.

        A partition assigned to another member (or, for a while, to one that was killed) is
        only done once the group's committed offset reaches its end.
        """
        assert self.consumer is not None
        topic = self.settings.topic
        try:
            tps = [
                TopicPartition(topic, p)
                for p in sorted(self.consumer.partitions_for_topic(topic) or ())
            ]
            ends = self.consumer.end_offsets(tps)
            mine = self.consumer.assignment()
            for tp in tps:
                done = self.consumer.position(tp) if tp in mine else self.consumer.committed(tp)
                log.debug(
                    "partition %d: read or committed to %s of %s", tp.partition, done, ends[tp]
                )
                if (done or 0) < ends[tp]:
                    return False
        except KafkaError as e:
            log.warning("cannot check the end offsets (%s)", e)
            return False
        return bool(tps)

    def _lag(self) -> int | None:
        assert self.consumer is not None
        tps = list(self.consumer.assignment())
        if not tps:
            return None
        try:
            ends = self.consumer.end_offsets(tps)
            return sum(max(0, ends[tp] - self.consumer.position(tp)) for tp in tps)
        except KafkaError as e:
            log.warning("cannot read the end offsets (%s)", e)
            return None

    def _report(self, progress: _Progress | None = None, final: bool = False) -> None:
        st = self.stats
        rows = " ".join(f"{t}={n}" for t, n in sorted(st.rows.items())) or "none"
        if final:
            log.info(
                "stopped: %d records, rows %s, %d quarantined", st.records, rows, st.quarantined
            )
            return
        assert progress is not None
        now = time.monotonic()
        rate = (self.read - progress.last_records) / max(now - progress.last_at, 1e-9)
        lag = "?" if progress.lag is None else str(progress.lag)
        log.info(
            "%.0f events/s | rows %s | quarantined %d | lag %s", rate, rows, st.quarantined, lag
        )
        progress.last_at, progress.last_records = now, self.read
        status = {
            "group": self.settings.group,
            "topic": self.settings.topic,
            "lag": progress.lag,
            "events_per_s": round(rate, 1),
            "records": self.read,
            "quarantined": st.quarantined,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        try:
            write_meta(self.settings.lake, ingest=status)
        except (OSError, LakeError) as e:
            log.warning("cannot record the ingest status: %s", e)


def _consumer_defaults(s: IngestSettings) -> dict[str, Any]:
    return {
        "bootstrap_servers": s.bootstrap_servers.split(","),
        "group_id": s.group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 50,
        "fetch_max_bytes": 8 * 1024 * 1024,
        "max_partition_fetch_bytes": 2 * 1024 * 1024,
        "max_poll_records": s.max_poll_records,
        "reconnect_backoff_max_ms": int(_BACKOFF_MAX_S * 1000),
        "bootstrap_timeout_ms": 10_000,
        # Kafka's minimum session timeout: the group forms in ~3 s instead of ~23 s on Tansu,
        # and a dead member is noticed sooner. Heartbeats run in kafka-python's own thread.
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 2_000,
    }


class _Listener(ConsumerRebalanceListener):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in revoked)
        if partitions:
            log.info("partitions revoked: %s (their buffers are dropped)", partitions)
        self.ingest._revoked(partitions)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.ingest._assigned_now(assigned)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop`: the loop then flushes, commits and returns."""

    def handler(signum: int, frame: object) -> None:
        log.info("%s received: flushing and committing", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
