"""The ingest service's settings: one frozen object, checked once at start-up.

Built by the CLI from flags and PERFLAKE_* variables; every bad value is refused here with the
setting's name, before anything connects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import SettingsError
from ingest.pipeline import FlushPolicy

#: kafka-python options an operator may pass through for a real cluster (SASL/SSL and friends).
KAFKA_PASSTHROUGH = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_check_hostname",
    "client_id",
    "request_timeout_ms",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_interval_ms",
)
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")


@dataclass(frozen=True)
class IngestSettings:
    bootstrap_servers: str
    topic: str
    lake: Path
    group: str = "perflake-ingest"
    until_idle_s: float | None = None
    keep_days: int = 90
    policy: FlushPolicy = field(default_factory=FlushPolicy)
    #: 1 decodes and writes in a worker process (a core of its own); 0 in the consumer's process.
    workers: int = 1
    progress_every_s: float = 5.0
    #: Records a poll returns at most: the unit the parse and the writer's rules work in.
    max_poll_records: int = 10_000
    kafka: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(
            bool(self.bootstrap_servers.strip()),
            "bootstrap_servers",
            "must name host:port",
            self.bootstrap_servers,
        )
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            _check(
                bool(host) and port.isdigit(),
                "bootstrap_servers",
                "must be host:port[,host:port]",
                self.bootstrap_servers,
            )
        _check(bool(self.topic), "topic", "must not be empty", self.topic)
        _check(bool(self.group), "group", "must not be empty", self.group)
        _check(
            self.until_idle_s is None or self.until_idle_s >= 0,
            "until_idle",
            "must be >= 0 seconds",
            self.until_idle_s,
        )
        _check(self.keep_days >= 1, "keep_days", "must be an integer >= 1", self.keep_days)
        _check(self.policy.max_records >= 1, "max_records", "must be >= 1", self.policy.max_records)
        _check(self.policy.max_bytes >= 1024, "max_bytes", "must be >= 1024", self.policy.max_bytes)
        _check(
            self.policy.max_latency_s > 0,
            "max_latency",
            "must be > 0 seconds",
            self.policy.max_latency_s,
        )
        _check(
            self.workers in (0, 1),
            "workers",
            "must be 0 (inline) or 1 (worker process)",
            self.workers,
        )
        _check(
            self.progress_every_s > 0,
            "progress_every",
            "must be > 0 seconds",
            self.progress_every_s,
        )
        unknown = set(self.kafka) - set(KAFKA_PASSTHROUGH)
        _check(
            not unknown,
            "kafka",
            f"unknown option(s); known: {', '.join(KAFKA_PASSTHROUGH)}",
            sorted(unknown),
        )
        protocol = self.kafka.get("security_protocol")
        _check(
            protocol in (None, *SECURITY_PROTOCOLS),
            "security_protocol",
            f"must be one of {', '.join(SECURITY_PROTOCOLS)}",
            protocol,
        )
        mechanism = self.kafka.get("sasl_mechanism")
        _check(
            mechanism in (None, *SASL_MECHANISMS),
            "sasl_mechanism",
            f"must be one of {', '.join(SASL_MECHANISMS)}",
            mechanism,
        )


def _check(ok: bool, setting: str, rule: str, value: object) -> None:
    if not ok:
        raise SettingsError(f"{setting}: {rule}, got {value!r}")
