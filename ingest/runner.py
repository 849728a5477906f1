"""Runs the pipeline inline or in a worker process, behind one interface for the consumer loop.

The worker process gives decoding and Parquet writing a core of their own while the consumer's
process reads Kafka: on a 2-core machine that is most of the difference between reading and
ingesting. Messages between the two are plain tuples over a pipe, handled in FIFO order, so a
`drop` is answered only after every earlier chunk and flush.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from ingest import IngestError
from ingest.batch import Chunk
from ingest.columnar import warm_up
from ingest.pipeline import FlushPolicy, Pipeline, Stats

log = logging.getLogger(__name__)

#: Chunks of records queued for the worker beyond the one it is decoding.
_IN_FLIGHT = 4

#: Called with partition -> next offset after a flush published everything before them.
OnPublished = Callable[[dict[int, int]], None]


class InlineRunner:
    """The pipeline in the consumer's own process (simplest; one core)."""

    def __init__(self, lake: Path, topic: str, keep_days: int, policy: FlushPolicy) -> None:
        self.pipeline = Pipeline(lake, topic, keep_days, policy)

    @property
    def stats(self) -> Stats:
        return self.pipeline.stats

    def submit(self, records: Chunk, on_published: OnPublished) -> None:
        self.pipeline.add(records)
        self.tick(on_published)

    def tick(self, on_published: OnPublished) -> None:
        if self.pipeline.due():
            on_published(self.pipeline.flush())

    def flush(self, on_published: OnPublished) -> None:
        on_published(self.pipeline.flush())

    def drop(self, partitions: list[int], on_published: OnPublished) -> None:
        self.pipeline.drop(partitions)

    def close(self) -> None:
        return None


class ProcessRunner:
    """The pipeline in a forked worker process; acks come back as published offsets.

    Forked, so it starts at once: the parent must not have used Polars (whose thread pool a
    fork does not carry over) before; `perflake ingest` never does.
    """

    def __init__(self, lake: Path, topic: str, keep_days: int, policy: FlushPolicy) -> None:
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_worker_main,
            args=(child, self._conn, lake, topic, keep_days, policy),
            name="perflake-ingest-writer",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self.stats = Stats()
        # Sends go through a thread, so the consumer keeps reading while the worker is busy;
        # the bounded outbox keeps memory bounded and the FIFO order of the messages.
        self._outbox: queue.Queue[tuple] = queue.Queue(maxsize=_IN_FLIGHT)
        self._send_failed: BaseException | None = None
        self._sender = threading.Thread(target=self._send_loop, name="perflake-ingest-send")
        self._sender.daemon = True
        self._sender.start()
        self._wait_for("ready", lambda offsets: None)

    def submit(self, records: Chunk, on_published: OnPublished) -> None:
        self._send(("add", records))
        self.tick(on_published)

    def tick(self, on_published: OnPublished) -> None:
        while self._conn.poll():
            self._handle(self._recv(), on_published)

    def flush(self, on_published: OnPublished) -> None:
        self._send(("flush",))
        self._wait_for("flushed", on_published)

    def drop(self, partitions: list[int], on_published: OnPublished) -> None:
        self._send(("drop", partitions))
        self._wait_for("dropped", on_published)

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(IngestError):
                self._send(("stop",))
            self._sender.join(timeout=30)
            self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()

    def _wait_for(self, kind: str, on_published: OnPublished) -> None:
        while True:
            message = self._recv()
            self._handle(message, on_published)
            if message[0] == kind:
                return

    def _handle(self, message: tuple, on_published: OnPublished) -> None:
        kind = message[0]
        if kind == "error":
            raise IngestError(f"ingest writer failed: {message[1]}")
        if kind in ("published", "flushed") and message[1]:
            on_published(message[1])
        if len(message) > 2:
            self.stats = message[2]

    def _send(self, message: tuple) -> None:
        while self._send_failed is None:
            try:
                self._outbox.put(message, timeout=0.5)
                return
            except queue.Full:
                if not self._proc.is_alive():
                    break
        raise IngestError(
            f"ingest writer process is gone (exit code {self._proc.exitcode})"
        ) from self._send_failed

    def _send_loop(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                self._conn.send(message)
            except (BrokenPipeError, OSError) as e:
                self._send_failed = e
                return
            if message[0] == "stop":
                return

    def _recv(self) -> tuple:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as e:
            raise IngestError(
                f"ingest writer process is gone (exit code {self._proc.exitcode})"
            ) from e


def _worker_main(
    conn: Connection,
    parent_end: Connection,
    lake: Path,
    topic: str,
    keep_days: int,
    policy: FlushPolicy,
) -> None:
    # The fork copied the parent's end of the pipe: close it, so that the parent's death
    # (even by SIGKILL) reads as end-of-file here and this process exits instead of lingering.
    parent_end.close()
    # The parent owns shutdown: it sends "flush" then "stop" on SIGTERM/SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        pipeline = Pipeline(lake, topic, keep_days, policy)
        conn.send(("ready", {}, pipeline.stats))
        # While the consumer joins its group: pyarrow's first array imports pandas (~0.7 s).
        warm_up()
        while True:
            timeout = pipeline.seconds_to_due()
            if conn.poll(None if timeout == float("inf") else timeout):
                message = conn.recv()
                kind = message[0]
                if kind == "add":
                    pipeline.add(message[1])
                elif kind == "flush":
                    conn.send(("flushed", pipeline.flush(), pipeline.stats))
                    continue
                elif kind == "drop":
                    pipeline.drop(message[1])
                    conn.send(("dropped", {}, pipeline.stats))
                    continue
                elif kind == "stop":
                    return
            if pipeline.due():
                conn.send(("published", pipeline.flush(), pipeline.stats))
    except (EOFError, KeyboardInterrupt):
        return
    except Exception as e:  # reported to the parent, which stops without committing
        log.exception("ingest writer failed")
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}"))
