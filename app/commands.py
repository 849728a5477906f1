"""What each `perflake` subcommand does, given its parsed flags (see app/cli.py for the flags)."""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from ingest import IngestError, SettingsError
from ingest.broker import BrokerError, EmbeddedBroker, create_topic
from ingest.columnar import prepare_process
from ingest.consumer import Ingest, stop_on_signals
from ingest.pipeline import FlushPolicy
from ingest.settings import KAFKA_PASSTHROUGH, IngestSettings
from lake import LakeError, maintenance, sample
from lake.layout import ensure_lake, read_meta, write_meta

log = logging.getLogger("perflake")

APP_SCRIPT = Path(__file__).with_name("streamlit_app.py")


class UserError(Exception):
    """A failure to report in one line, without a traceback."""


def ingest_settings(args: argparse.Namespace) -> IngestSettings:
    """The ingest settings from flags, PERFLAKE_* variables and --kafka-option pairs."""
    kafka: dict[str, Any] = {}
    for key in KAFKA_PASSTHROUGH:
        value = os.environ.get(f"PERFLAKE_KAFKA_{key.upper()}")
        if value is not None:
            kafka[key] = value
    for pair in args.kafka_option:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"--kafka-option: must be KEY=VALUE, got {pair!r}")
        kafka[key.strip()] = value
    for key in (
        "request_timeout_ms",
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
    ):
        if key in kafka:
            kafka[key] = _int_option(key, kafka[key])
    if "ssl_check_hostname" in kafka:
        kafka["ssl_check_hostname"] = str(kafka["ssl_check_hostname"]).lower() in (
            "1",
            "true",
            "yes",
        )
    try:
        return IngestSettings(
            bootstrap_servers=args.bootstrap_servers,
            topic=args.topic,
            lake=Path(args.lake),
            group=args.group,
            until_idle_s=args.until_idle,
            keep_days=args.keep_days,
            policy=FlushPolicy(args.max_records, args.max_bytes, args.max_latency),
            workers=args.workers,
            progress_every_s=args.progress_every,
            kafka=kafka,
        )
    except SettingsError as e:
        raise UserError(str(e)) from e


def _int_option(key: str, value: Any) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{key}: must be an integer, got {value!r}") from None


def ingest(args: argparse.Namespace) -> int:
    settings = ingest_settings(args)
    prepare_process()  # this process is ingest's alone
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            Ingest(settings, stop).run()
        except (IngestError, LakeError) as e:
            raise UserError(str(e)) from e
    return 0


def broker(args: argparse.Namespace) -> int:
    b = EmbeddedBroker(args.port)
    try:
        b.start()
        b.create_topic(args.topic, args.partitions)
    except BrokerError as e:
        b.stop()
        raise UserError(str(e)) from e
    print(
        f"broker on {b.bootstrap}, topic {args.topic} ({args.partitions} partitions); Ctrl-C stops it",
        flush=True,
    )
    try:
        assert b.process is not None
        b.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()
    return 0


def demo_events(args: argparse.Namespace) -> int:
    from ingest.demo import publish_studio

    sent = publish_studio(args.bootstrap_servers, args.topic, days=args.days, seed=args.seed)
    print(f"published {sent} messages to {args.topic}")
    return 0


def demo(args: argparse.Namespace) -> int:
    """Broker + demo events (once per lake) + ingest + app: the whole of `make run`."""
    from ingest.demo import publish_studio

    lake = ensure_lake(args.lake, create=True)
    topic = "perf.job-events"
    with EmbeddedBroker(args.port, log_path=lake / "_meta" / "broker.log") as b:
        create_topic(b.bootstrap, topic, 4)
        seeded = read_meta(lake).get("demo")
        wanted = {"seed": args.seed, "days": args.days}
        if seeded == wanted:
            print(
                f"the lake {lake} already holds the demo studio (seed {args.seed}); not regenerating"
            )
        else:
            print(
                f"publishing the demo studio ({args.days} days, seed {args.seed}) to {b.bootstrap}"
            )
            publish_studio(b.bootstrap, topic, days=args.days, seed=args.seed)
        settings = IngestSettings(b.bootstrap, topic, lake, until_idle_s=2.0, progress_every_s=2.0)
        print("ingesting into", lake)
        Ingest(settings).run()
        write_meta(lake, demo=wanted)
        if args.no_app:
            return 0
        # Ingest stays up beside the app, so events published from now on land too.
        live = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "ingest",
                "--bootstrap-servers",
                b.bootstrap,
                "--topic",
                topic,
                "--lake",
                str(lake),
                "--progress-every",
                "30",
            ]
        )
        print(f"\n  perflake is up: http://localhost:{args.app_port}\n", flush=True)
        try:
            return _serve(lake, args.app_port)
        finally:
            live.terminate()
            live.wait(timeout=30)


def app(args: argparse.Namespace) -> int:
    lake = ensure_lake(args.lake, create=True)
    print(f"\n  perflake: http://localhost:{args.port}\n", flush=True)
    return _serve(lake, args.port)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(lake: Path, port: int) -> int:
    # SIGTERM (a supervisor, `timeout`) stops the app like Ctrl-C, so the caller's cleanup runs.
    signal.signal(signal.SIGTERM, _interrupt)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--lake",
        str(lake),
    ]
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


def sql(args: argparse.Namespace) -> int:
    from lake import views  # DuckDB: imported by the commands that query, not by `ingest`

    try:
        lake = ensure_lake(args.lake)
        if args.sql is None:
            return _shell(lake)
        con = views.connect(lake)
        result = views.run(con, args.sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall() if columns else []
    except LakeError as e:
        raise UserError(str(e)) from e
    print_rows(columns, rows, args.format)
    return 0


def _shell(lake: Path) -> int:
    from lake import views

    shell = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which("duckdb")
    if shell is None:
        raise UserError("the duckdb shell is not installed (pip install duckdb-cli)")
    init = lake / "_meta" / "views.sql"
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(views.init_script(lake, relative=True))
    # The init script's paths are relative to the lake folder: the shell runs from there.
    return subprocess.call([shell, "-init", str(init)], cwd=lake)


def print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        records = [dict(zip(columns, r, strict=True)) for r in rows]
        out.write(orjson.dumps(records, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        cells = [columns] + [["" if v is None else str(v) for v in r] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        for n, row in enumerate(cells):
            out.write(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
            )
            if n == 0:
                out.write("  ".join("-" * w for w in widths) + "\n")
        out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def query(args: argparse.Namespace) -> int:
    # Imported here: the analytics stack (polars, the query modules) is not needed by ingest.
    from app import query as views_cli

    try:
        frame = views_cli.run(args)
    except (ValueError, LakeError) as e:
        raise UserError(str(e)) from e
    views_cli.print_frame(frame, args.format)
    return 0


def retention(args: argparse.Namespace) -> int:
    try:
        dropped = maintenance.expire(args.lake, args.keep_days)
    except LakeError as e:
        raise UserError(str(e)) from e
    for change in dropped:
        print(f"dropped {change.table}/date={change.day} ({change.files_before} files)")
    print(f"{len(dropped)} partitions dropped; keeping {args.keep_days} days")
    return 0


def compact(args: argparse.Namespace) -> int:
    try:
        backfilled = sample.backfill(args.lake)
        merged = maintenance.compact(args.lake)
    except LakeError as e:
        raise UserError(str(e)) from e
    if backfilled:
        print(f"job sample: {backfilled} rows written for days ingested before it existed")
    for change in merged:
        print(
            f"compacted {change.table}/date={change.day}: {change.files_before} files -> 1 ({change.rows} rows)"
        )
    print(f"{len(merged)} partitions compacted")
    return 0
