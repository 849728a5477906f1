"""Runs the pipeline inline or in a worker process, behind one interface for the consumer loop.

The worker process gives decoding and Parquet writing a core of their own while the consumer's
process reads Kafka: on a 2-core machine that is most of the difference between reading and
ingesting. Messages between the two are plain tuples over a pipe, handled in FIFO order, so a
`drop` is answered only after every earlier chunk and flush.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing as mp
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from ingest import IngestError
from ingest.batch import Chunk
from ingest.columnar import parse_batch, prepare_process, warm_up
from ingest.pipeline import FlushPolicy, Pipeline, Stats

log = logging.getLogger(__name__)

#: Polls queued for the worker (parsed or being parsed) beyond the one it is decoding.
_IN_FLIGHT = 2

#: Threads parsing polled records in the consumer's process: one, so that the next poll is
#: parsed while the sender waits on the pipe (two parse threads measured slower on 2 cores).
PARSE_THREADS = 1

#: Seconds between looks at a publish in flight, to report its offsets soon after it is done.
_PUBLISH_CHECK_S = 0.02

#: Called with partition -> next offset after a flush published everything before them.
OnPublished = Callable[[dict[int, int]], None]


class InlineRunner:
    """The pipeline in the consumer's own process (simplest; one core)."""

    def __init__(self, lake: Path, topic: str, keep_days: int, policy: FlushPolicy) -> None:
        self.pipeline = Pipeline(lake, topic, keep_days, policy)

    @property
    def stats(self) -> Stats:
        return self.pipeline.stats

    def submit(self, chunks: list[Chunk], on_published: OnPublished) -> None:
        for chunk in chunks:
            self.pipeline.add(chunk)
        self.tick(on_published)

    def tick(self, on_published: OnPublished) -> None:
        if done := self.pipeline.published():
            on_published(done)
        if self.pipeline.due():
            on_published(self.pipeline.start_flush())

    def flush(self, on_published: OnPublished) -> None:
        on_published(self.pipeline.flush())

    def drop(self, partitions: list[int], on_published: OnPublished) -> None:
        on_published(self.pipeline.drop(partitions))

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
        # Polls are parsed beside the polling (pyarrow.json lets go of the GIL), sent in order.
        self._parsers = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="perflake-parse")
        self._sender = threading.Thread(target=self._send_loop, name="perflake-ingest-send")
        self._sender.daemon = True
        self._sender.start()
        self._wait_for("ready", lambda offsets: None)

    def submit(self, chunks: list[Chunk], on_published: OnPublished) -> None:
        """Queue one poll's chunks, parsed here: the writer process is left the rules and the
        files, and the consumer's process, which mostly waits on the network, does the rest."""
        parsed = self._parsers.submit(parse_batch, [v for c in chunks for v in c.values])
        # The values travel in `parsed`, joined (see `columnar.Parsed`).
        self._send(("add", [c.without_values() for c in chunks], parsed))
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
        self._parsers.shutdown(wait=False, cancel_futures=True)
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
        if kind in ("published", "flushed", "dropped") and message[1]:
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
        failed = self._send_failed
        if failed is not None and not isinstance(failed, OSError):
            raise IngestError(f"cannot parse records for the ingest writer: {failed}") from failed
        raise IngestError(
            f"ingest writer process is gone (exit code {self._proc.exitcode})"
        ) from failed

    def _send_loop(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                if message[0] == "add":
                    message = ("add", message[1], message[2].result())
                self._conn.send(message)
            except (BrokenPipeError, OSError) as e:
                self._send_failed = e
                return
            except Exception as e:  # a parse bug: the consumer stops without committing
                log.exception("ingest sender failed")
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
        prepare_process()
        pipeline = Pipeline(lake, topic, keep_days, policy)
        conn.send(("ready", {}, pipeline.stats))
        # While the consumer joins its group: Arrow's readers and kernels initialise, and the
        # alerts' thresholds load (the consumer's process never does).
        warm_up()
        importlib.import_module("lake.alerting")
        while True:
            timeout = pipeline.seconds_to_due()
            if pipeline.publishing():  # look back soon to report it done
                timeout = min(timeout, _PUBLISH_CHECK_S)
            if conn.poll(None if timeout == float("inf") else timeout):
                message = conn.recv()
                kind = message[0]
                if kind == "add":
                    pipeline.add_parsed(message[1], message[2])
                elif kind == "flush":
                    conn.send(("flushed", pipeline.flush(), pipeline.stats))
                    continue
                elif kind == "drop":
                    conn.send(("dropped", pipeline.drop(message[1]), pipeline.stats))
                    continue
                elif kind == "stop":
                    return
            if done := pipeline.published():
                conn.send(("published", done, pipeline.stats))
            if pipeline.due() and (done := pipeline.start_flush()):
                conn.send(("published", done, pipeline.stats))
    except (EOFError, KeyboardInterrupt):
        return
    except Exception as e:  # reported to the parent, which stops without committing
        log.exception("ingest writer failed")
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}"))
