"""The `perflake` command line: every subcommand, its flags and their PERFLAKE_* variables.

Each subcommand builds its settings once from flags and the environment and fails at start-up,
naming the setting, when a value is bad. The work itself lives in ingest/, lake/ and app/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from app import commands

log = logging.getLogger("perflake")


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"PERFLAKE_{name}", default)


def _positive_int(setting: str, minimum: int = 1) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{setting}: must be an integer, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{setting}: must be >= {minimum}, got {value}")
        return value

    return parse


def _seconds(setting: str, allow_zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{setting}: must be a number of seconds, got {text!r}"
            ) from None
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"{setting}: must be {'>=' if allow_zero else '>'} 0, got {text}"
            )
        return value

    return parse


def _day(setting: str) -> Callable[[str], date]:
    def parse(text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{setting}: must be a date YYYY-MM-DD, got {text!r}"
            ) from None

    return parse


#: `perflake query` names and what each shows (the functions live in app/query.py).
QUERY_VIEWS = {
    "overview": "one row of farm totals",
    "workflows": "one row per workflow",
    "workers": "one row per worker",
    "timeseries": "one row per period of --metric",
    "stages": "one row per pipeline stage",
    "correlations": "one row per workflow, numeric param and quality score",
    "compare": "one row per metric and workflow pair (two or more --workflow)",
    "alerts": "one row per alert, newest first",
}


def _query_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "view",
        choices=list(QUERY_VIEWS),
        metavar="NAME",
        help=", ".join(f"{k}: {v}" for k, v in QUERY_VIEWS.items()),
    )
    _lake_arg(p)
    p.add_argument("--from", dest="start", type=_day("--from"), help="first UTC day (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", type=_day("--to"), help="last UTC day, included")
    for flag, what in (
        ("--project", "project"),
        ("--workflow", "workflow (compare: the workflows compared)"),
        ("--worker", "worker"),
        ("--scene-type", "scene type"),
        ("--resolution-tier", "resolution tier"),
    ):
        p.add_argument(
            flag, action="append", metavar="ID", help=f"keep only this {what}; repeatable"
        )
    p.add_argument(
        "--metric",
        default="avg_time_per_frame_ms",
        help="timeseries: the metric (default avg_time_per_frame_ms)",
    )
    p.add_argument(
        "--grain",
        choices=["day", "week", "month"],
        default="day",
        help="timeseries: period (default day)",
    )
    p.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="output (default table)"
    )


REPORT_KINDS = [
    "performance",
    "delivery",
    "throughput",
    "utilization",
    "quality",
    "cost",
    "reviewers",
]


def _gpu_rate(text: str) -> tuple[str, float]:
    model, _, rate = text.rpartition("=")
    try:
        value = float(rate)
    except ValueError:
        value = -1.0
    if not model or value < 0:
        raise argparse.ArgumentTypeError(
            f"--gpu-rate: must be MODEL=USD_PER_HOUR (e.g. 'H100=3.5'), got {text!r}"
        )
    return model, value


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=REPORT_KINDS, metavar="TYPE", help=", ".join(REPORT_KINDS))
    _lake_arg(p)
    p.add_argument("--from", dest="start", type=_day("--from"), required=True, help="first UTC day")
    p.add_argument(
        "--to", dest="end", type=_day("--to"), required=True, help="last UTC day, included"
    )
    p.add_argument("--project", help="only this project")
    p.add_argument("--format", choices=["pdf", "csv", "json"], default="pdf", help="default pdf")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        help="file, or folder for the report's own name (default .)",
    )
    p.add_argument(
        "--per-reviewer", action="store_true", help="reviewers report: one row per reviewer"
    )
    p.add_argument(
        "--gpu-rate", type=_gpu_rate, action="append", metavar="MODEL=USD",
        help="cost report: USD per GPU-hour for GPU models containing MODEL; repeatable",
    )  # fmt: skip


def _scheduler_args(p: argparse.ArgumentParser) -> None:
    _lake_arg(p)
    p.add_argument("--once", action="store_true", help="one pass over the due reports, then exit")
    p.add_argument(
        "--interval", type=_seconds("--interval"), default=_env("SCHEDULER_INTERVAL", "60"),
        help="seconds between passes at most (env PERFLAKE_SCHEDULER_INTERVAL, default 60)",
    )  # fmt: skip
    p.add_argument(
        "--smtp-host",
        default=_env("SMTP_HOST", "localhost"),
        help="env PERFLAKE_SMTP_HOST, default localhost",
    )
    p.add_argument(
        "--smtp-port", type=_positive_int("--smtp-port"), default=_env("SMTP_PORT"),
        help="env PERFLAKE_SMTP_PORT; default 587 (starttls), 465 (ssl) or 25 (none)",
    )  # fmt: skip
    p.add_argument(
        "--smtp-security", choices=["starttls", "ssl", "none"], default=_env("SMTP_SECURITY", "starttls"),
        help="env PERFLAKE_SMTP_SECURITY, default starttls; the login comes from PERFLAKE_SMTP_USER and PERFLAKE_SMTP_PASSWORD",
    )  # fmt: skip
    p.add_argument(
        "--smtp-from",
        default=_env("SMTP_FROM", "perflake@localhost"),
        help="sender address (env PERFLAKE_SMTP_FROM)",
    )
    p.add_argument(
        "--smtp-ca-file",
        type=Path,
        default=_env("SMTP_CA_FILE"),
        help="PEM bundle that signs the server's certificate (env PERFLAKE_SMTP_CA_FILE)",
    )
    p.add_argument(
        "--retry-base",
        type=_seconds("--retry-base"),
        default="60",
        help="first retry delay of a failed send, doubling (default 60)",
    )
    p.add_argument(
        "--max-attempts",
        type=_positive_int("--max-attempts"),
        default="8",
        help="sends tried before a run stays failed (default 8)",
    )


def _schedule_args(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("add", "create a schedule"), ("edit", "change a schedule's fields")):
        a = actions.add_parser(action, help=text, description=text)
        _lake_arg(a)
        if action == "edit":
            a.add_argument("id", type=int, help="schedule id (see `schedule list`)")
        a.add_argument(
            "--report", choices=REPORT_KINDS, required=action == "add", help="report type"
        )
        a.add_argument("--project", help="only this project")
        a.add_argument("--cadence", choices=["weekly", "monthly"], required=action == "add")
        a.add_argument(
            "--day", required=action == "add", help="weekly: mon..sun; monthly: 1-28 or last"
        )
        a.add_argument("--time", help="local time HH:MM (default 08:00)")
        a.add_argument("--zone", help="IANA time zone, e.g. Europe/Paris (default UTC)")
        a.add_argument(
            "--to",
            action="append",
            metavar="ADDRESS",
            required=action == "add",
            help="recipient; repeatable or comma-separated",
        )
        a.add_argument(
            "--format",
            dest="formats",
            action="append",
            choices=["csv", "json", "pdf"],
            help="repeatable (default pdf)",
        )
    for action, text in (
        ("pause", "stop sending"),
        ("resume", "send again from the next period"),
        ("delete", "delete (its history stays)"),
    ):
        a = actions.add_parser(action, help=text, description=text)
        _lake_arg(a)
        a.add_argument("id", type=int, help="schedule id")
    a = actions.add_parser("list", help="the schedules and their next due time")
    _lake_arg(a)
    a.add_argument("--format", choices=["table", "csv", "json"], default="table")
    a = actions.add_parser("runs", help="the report history: runs, status, errors, files")
    _lake_arg(a)
    a.add_argument("--limit", type=_positive_int("--limit"), default="100")
    a.add_argument("--format", choices=["table", "csv", "json"], default="table")


def _lake_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lake",
        type=Path,
        default=_env("LAKE", "demo-lake"),
        help="lake folder (env PERFLAKE_LAKE, default demo-lake)",
    )


def _kafka_args(p: argparse.ArgumentParser, topic: bool = True) -> None:
    p.add_argument(
        "--bootstrap-servers",
        default=_env("BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="Kafka bootstrap servers host:port[,host:port] (env PERFLAKE_BOOTSTRAP_SERVERS)",
    )
    if topic:
        p.add_argument(
            "--topic",
            default=_env("TOPIC", "perf.job-events"),
            help="topic of the job events (env PERFLAKE_TOPIC, default perf.job-events)",
        )


def _ingest_args(p: argparse.ArgumentParser) -> None:
    _kafka_args(p)
    _lake_arg(p)
    p.add_argument(
        "--group",
        default=_env("GROUP", "perflake-ingest"),
        help="consumer group id (env PERFLAKE_GROUP)",
    )
    p.add_argument(
        "--until-idle",
        type=_seconds("--until-idle", allow_zero=True),
        default=_env("UNTIL_IDLE"),
        metavar="SECONDS",
        help="exit 0 once at the end of every partition and idle this long (env PERFLAKE_UNTIL_IDLE)",
    )
    p.add_argument(
        "--keep-days",
        type=_positive_int("--keep-days"),
        default=_env("KEEP_DAYS", "90"),
        help="retention window: older events are quarantined (env PERFLAKE_KEEP_DAYS, default 90)",
    )
    p.add_argument(
        "--max-records",
        type=_positive_int("--max-records"),
        default=_env("MAX_RECORDS", "50000"),
        help="flush after this many records (env PERFLAKE_MAX_RECORDS, default 50000)",
    )
    p.add_argument(
        "--max-bytes",
        type=_positive_int("--max-bytes", 1024),
        default=_env("MAX_BYTES", str(64 << 20)),
        help="flush after this many message bytes (env PERFLAKE_MAX_BYTES, default 64 MiB)",
    )
    p.add_argument(
        "--max-latency",
        type=_seconds("--max-latency"),
        default=_env("MAX_LATENCY", "5"),
        metavar="SECONDS",
        help="flush buffered events at least this often (env PERFLAKE_MAX_LATENCY, default 5)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int("--workers", 0),
        default=_env("WORKERS", "1"),
        choices=[0, 1],
        help="1: decode and write in a worker process (default); 0: in the consumer's process (env PERFLAKE_WORKERS)",
    )
    p.add_argument(
        "--progress-every",
        type=_seconds("--progress-every"),
        default=_env("PROGRESS_EVERY", "5"),
        metavar="SECONDS",
        help="seconds between progress lines (env PERFLAKE_PROGRESS_EVERY)",
    )
    p.add_argument(
        "--kafka-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="kafka-python option for a real cluster, e.g. security_protocol=SASL_SSL (repeatable; "
        "env PERFLAKE_KAFKA_<KEY>, e.g. PERFLAKE_KAFKA_SASL_PLAIN_PASSWORD)",
    )


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--days",
        type=_positive_int("--days"),
        default=_env("DEMO_DAYS", "60"),
        help="days of history (default 60)",
    )
    p.add_argument(
        "--seed",
        type=_positive_int("--seed", 0),
        default=_env("DEMO_SEED", "7"),
        help="random seed (default 7)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perflake", description="GPU render-farm performance lake."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ingest",
        help="consume job events from Kafka into the lake",
        description="Consume the event topic in a consumer group and publish Parquet, exactly once per event.",
    )
    _ingest_args(p)
    p.set_defaults(func=commands.ingest)

    p = sub.add_parser(
        "broker",
        help="run the embedded Kafka-compatible broker (Tansu) in the foreground",
        description="Run Tansu on 127.0.0.1 (memory storage) and create the default topic.",
    )
    p.add_argument(
        "--port",
        type=_positive_int("--port"),
        default=_env("BROKER_PORT", "9092"),
        help="port (default 9092)",
    )
    p.add_argument(
        "--partitions",
        type=_positive_int("--partitions"),
        default=_env("PARTITIONS", "4"),
        help="partitions of the default topic (default 4)",
    )
    p.add_argument(
        "--topic",
        default=_env("TOPIC", "perf.job-events"),
        help="topic to create (default perf.job-events)",
    )
    p.set_defaults(func=commands.broker)

    p = sub.add_parser(
        "demo-events",
        help="publish a realistic demo studio to Kafka",
        description="Publish the demo studio's events (deterministic ids: publishing twice doubles nothing in the lake).",
    )
    _kafka_args(p)
    _demo_args(p)
    p.set_defaults(func=commands.demo_events)

    p = sub.add_parser(
        "demo",
        help="what `make run` does: broker + demo events + ingest + the app",
        description="Start the broker, fill the lake with the demo studio once, keep ingest running and serve the app.",
    )
    _lake_arg(p)
    p.add_argument(
        "--port",
        type=_positive_int("--port"),
        default=_env("BROKER_PORT", "9092"),
        help="broker port (default 9092)",
    )
    p.add_argument(
        "--app-port",
        type=_positive_int("--app-port"),
        default=_env("APP_PORT", "8501"),
        help="app port (default 8501)",
    )
    _demo_args(p)
    p.add_argument(
        "--no-app", action="store_true", help="fill the lake and stop, without serving the app"
    )
    p.set_defaults(func=commands.demo)

    p = sub.add_parser(
        "app", help="serve the Streamlit app", description="Serve the perflake app over a lake."
    )
    _lake_arg(p)
    p.add_argument(
        "--port",
        type=_positive_int("--port"),
        default=_env("APP_PORT", "8501"),
        help="port (default 8501)",
    )
    p.set_defaults(func=commands.app)

    p = sub.add_parser(
        "sql",
        help="DuckDB shell (or one query) over the lake views",
        description="Without -c: the official DuckDB shell with every lake view defined. With -c: run one query and print it.",
    )
    _lake_arg(p)
    p.add_argument("-c", "--command", dest="sql", help="run this SQL and print the result")
    p.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="output of -c (default table)",
    )
    p.set_defaults(func=commands.sql)

    p = sub.add_parser(
        "query",
        help="print one of the app's views (workflows, workers, compare, ...)",
        description="Print one analytics view over a date range and filters, as a table, CSV or JSON.",
    )
    _query_args(p)
    p.set_defaults(func=commands.query)

    p = sub.add_parser(
        "report",
        help="write one report (performance, delivery, ...) as PDF, CSV or JSON",
        description="Build one report for a period (compared with the previous one) and write it to a file.",
    )
    _report_args(p)
    p.set_defaults(func=_lazy("report"))

    p = sub.add_parser(
        "schedule",
        help="create, edit, pause, resume, delete and list report schedules",
        description="Report schedules, stored in the lake; `perflake scheduler` sends them.",
    )
    _schedule_args(p)
    p.set_defaults(func=_lazy("schedule"))

    p = sub.add_parser(
        "scheduler",
        help="send scheduled reports by e-mail as they fall due",
        description="Run due reports (catching up missed periods once), keep their files in the lake's history and e-mail them.",
    )
    _scheduler_args(p)
    p.set_defaults(func=_lazy("scheduler"))

    p = sub.add_parser(
        "retention",
        help="drop date folders beyond the retention window",
        description="Drop whole date folders older than the window; ingest then quarantines older events.",
    )
    _lake_arg(p)
    p.add_argument(
        "--keep-days",
        type=_positive_int("--keep-days"),
        default=_env("KEEP_DAYS", "90"),
        help="days kept, today included (default 90)",
    )
    p.set_defaults(func=commands.retention)

    p = sub.add_parser(
        "compact",
        help="merge each past day's small files into one",
        description="Merge each past day's files per table into one file, swapped in atomically.",
    )
    _lake_arg(p)
    p.set_defaults(func=commands.compact)
    return parser


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    """A command of app.reporting, imported when run (the report stack is heavy to import)."""

    def run(args: argparse.Namespace) -> int:
        from app import reporting

        result: int = getattr(reporting, name)(args)
        return result

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except commands.UserError as e:
        print(f"perflake {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`perflake query ... | head`): not an error; silence the rest.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
