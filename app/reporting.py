"""What `perflake report`, `perflake schedule ...` and `perflake scheduler` do, given their flags.

The flags are declared in app/cli.py; the reports are built by `queries.reports`, written by
`app.exports`, scheduled by `lake.schedules` and sent by `app.scheduler`.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from app import exports
from app.commands import UserError, print_rows
from app.mailer import MailSettingsError, SmtpSettings
from app.scheduler import (
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    RetryPolicy,
    run_rows,
    schedule_add,
    schedule_delete,
    schedule_edit,
    schedule_pause,
    schedule_rows,
    scheduler_main,
)
from ingest.consumer import stop_on_signals
from lake import LakeError
from queries.reports import DEFAULT_GPU_RATES, ReportOptions, build_report


def report(args: argparse.Namespace) -> int:
    """Build one report and write it to --out (a folder gets the report's own file name)."""
    try:
        rates = dict(DEFAULT_GPU_RATES) | dict(args.gpu_rate or [])
        options = ReportOptions(gpu_hourly_usd=rates, per_reviewer=args.per_reviewer)
        built = build_report(args.lake, args.kind, args.start, args.end, args.project, options)
        data = exports.export(built, args.format)
    except (ValueError, LakeError) as e:
        raise UserError(str(e)) from e
    out: Path = args.out
    if out.is_dir():
        out = out / exports.file_name(built, args.format)
    out.write_bytes(data)
    print(f"{built.title}, {built.start} to {built.end}: {out} ({len(data):,} bytes)")
    return 0


def smtp_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> SmtpSettings:
    """SMTP settings from the flags; the credentials only from the environment."""
    try:
        return SmtpSettings(
            host=args.smtp_host,
            port=args.smtp_port,
            security=args.smtp_security,
            user=environ.get("PERFLAKE_SMTP_USER") or None,
            password=environ.get("PERFLAKE_SMTP_PASSWORD") or None,
            sender=args.smtp_from,
            ca_file=args.smtp_ca_file,
        )
    except MailSettingsError as e:
        rule = str(e).removeprefix(f"{e.field}: ")
        raise UserError(f"--smtp-{e.field.replace('_', '-')}: {rule}") from e


def scheduler(args: argparse.Namespace) -> int:
    settings = smtp_settings(args, os.environ)
    policy = RetryPolicy(base_s=args.retry_base, max_attempts=args.max_attempts)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            return scheduler_main(args.lake, settings, args.once, args.interval, stop, policy)
    except (ValueError, LakeError) as e:
        raise UserError(str(e)) from e


def schedule(args: argparse.Namespace) -> int:
    """`perflake schedule add|edit|pause|resume|delete|list|runs`."""
    try:
        if args.action in ("add", "edit"):
            fields = {
                "kind": args.report,
                "project": args.project,
                "cadence": args.cadence,
                "day": args.day,
                "time": args.time,
                "zone": args.zone,
                "recipients": ",".join(args.to) if args.to else None,
                "formats": ",".join(args.formats) if args.formats else None,
            }
            if args.action == "add":
                saved = schedule_add(
                    args.lake, **{k: v for k, v in fields.items() if v is not None}
                )
            else:
                saved = schedule_edit(args.lake, args.id, **fields)
            print(f"schedule {saved.id} saved")
        elif args.action in ("pause", "resume"):
            schedule_pause(args.lake, args.id, paused=args.action == "pause")
            print(f"schedule {args.id} {args.action}d")
        elif args.action == "delete":
            schedule_delete(args.lake, args.id)
            print(f"schedule {args.id} deleted (its runs and files stay in the history)")
        elif args.action == "list":
            print_rows(SCHEDULE_COLUMNS, schedule_rows(args.lake), args.format)
        else:
            print_rows(RUN_COLUMNS, run_rows(args.lake, args.limit), args.format)
    except (ValueError, LakeError) as e:
        raise UserError(str(e)) from e
    sys.stdout.flush()
    return 0
