"""The report scheduler: finds due (schedule, period) pairs, claims each once, builds and keeps its
files in the lake's report history, e-mails them, and retries failed sends with backoff.

Also the `perflake scheduler` and `perflake schedule ...` commands as functions of their parsed
values (app/cli.py owns the flags). State lives in lake/schedules.py and lake/report_runs.py; the
report comes from queries.reports through app.exports.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from app import mailer
from app.mailer import MailError, SmtpSettings
from lake import report_runs
from lake.layout import ensure_lake
from lake.report_runs import Run
from lake.schedules import (
    Schedule,
    delete_schedule,
    describe,
    due_periods,
    get_schedule,
    list_schedules,
    next_due,
    save_schedule,
    set_paused,
)

log = logging.getLogger("perflake.scheduler")


@dataclass(frozen=True)
class Rendered:
    """A report ready to send: its title, executive summary and files (name, content)."""

    title: str
    summary: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...]


#: (lake, report type, first day, last day, project or None, formats) -> the rendered report.
Render = Callable[[Path, str, date, date, str | None, Sequence[str]], Rendered]
#: (settings, message) -> refused recipients; raises MailError when nothing was accepted.
Send = Callable[[SmtpSettings, EmailMessage], dict[str, str]]
Clock = Callable[[], datetime]


def render_report(
    lake: Path, kind: str, start: date, end: date, project: str | None, formats: Sequence[str]
) -> Rendered:
    """The report built once by queries.reports and exported in each of `formats`."""
    from app.exports import export, file_name
    from queries.reports import build_report

    report = build_report(lake, kind, start, end, project)
    files = tuple((file_name(report, f), export(report, f)) for f in formats)
    return Rendered(report.title, tuple(report.summary), files)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of failed runs: base * 2^(attempts-1) seconds, capped, up to max_attempts; a
    claim not finished within lease_s is taken to be abandoned."""

    base_s: float = 60.0
    max_s: float = 3600.0
    max_attempts: int = 8
    lease_s: float = 900.0

    def retry_at(self, now: datetime, attempts: int) -> datetime | None:
        """When to try again after `attempts` failed attempts, or None to give up."""
        if attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=min(self.base_s * 2 ** (attempts - 1), self.max_s))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_s)


def utc_now() -> datetime:
    return datetime.now(UTC)


def subject(title: str, start: date, end: date, project: str | None) -> str:
    """'perflake: Performance summary, 2025-06-02 to 2025-06-08 (proj-aurora)'."""
    scope = f" ({project})" if project else ""
    return f"perflake: {title}, {start.isoformat()} to {end.isoformat()}{scope}"


def body(schedule: Schedule, run: Run, rendered: Rendered) -> str:
    """The plain-text e-mail: the period, the executive summary, the files, the schedule."""
    scope = f", project {run.project}" if run.project else ", all projects"
    lines = [
        f"{rendered.title}, {run.period.start} to {run.period.end}{scope}.",
        "",
        *rendered.summary,
        "",
        "Attached: " + ", ".join(name for name, _ in rendered.files) + ".",
        "",
        f"Sent by perflake for schedule {schedule.id} ({describe(schedule)}).",
    ]
    return "\n".join(lines) + "\n"


def _owner() -> str:
    """Who claims runs: host, process and a random part (a restarted process is another)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _write_files(folder: Path, files: Sequence[tuple[str, bytes]]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for name, content in files:
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"unsafe report file name {name!r}")
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, folder / name)
        names.append(name)
    return names


@dataclass(frozen=True)
class _Pass:
    lake: Path
    smtp: SmtpSettings
    clock: Clock
    render: Render
    send: Send
    policy: RetryPolicy
    owner: str

    def attempt(self, run: Run) -> Run | None:
        """One attempt at a claimed run: files (unless kept from an earlier attempt), then the
        send; the run as stored after it, or None when another scheduler took it over."""
        try:
            run = run if run.files else self.render_files(run)
            attachments = [
                (name, report_runs.run_file(self.lake, run, name).read_bytes())
                for name in run.files
            ]
        # A report that fails to build must not stop the others: record why, retry later.
        except Exception as e:
            log.exception("report run %s: building its files failed", run.id)
            return self.failed(run, f"building the report failed: {type(e).__name__}: {e}")
        assert run.subject is not None and run.body is not None
        message = mailer.build_message(
            self.smtp.sender, run.recipients, run.subject, run.body, attachments
        )
        if not report_runs.start_send(
            self.lake, run.id, self.owner, self.clock(), self.policy.lease
        ):
            return None
        try:
            refused = self.send(self.smtp, message)
        except MailError as e:
            return self.failed(run, str(e))
        note = "; ".join(f"refused {a}: {why}" for a, why in refused.items()) or None
        return report_runs.finish_run(
            self.lake, run.id, self.owner, self.clock(), error=note, sent=True
        )

    def render_files(self, run: Run) -> Run:
        start, end = run.period
        rendered = self.render(self.lake, run.kind, start, end, run.project, run.formats)
        schedule = get_schedule(self.lake, run.schedule_id)
        names = _write_files(report_runs.run_dir(self.lake, run), rendered.files)
        text = body(schedule, run, rendered)
        title = subject(rendered.title, start, end, run.project)
        if not report_runs.record_files(self.lake, run.id, self.owner, names, title, text):
            raise RuntimeError("another scheduler took this run over")
        return report_runs.get_run(self.lake, run.id)

    def failed(self, run: Run, error: str) -> Run | None:
        now = self.clock()
        retry_at = self.policy.retry_at(now, run.attempts + 1)
        log.warning("report run %s failed (attempt %d): %s", run.id, run.attempts + 1, error)
        return report_runs.finish_run(self.lake, run.id, self.owner, now, error, retry_at)


def run_pass(
    lake: Path,
    smtp: SmtpSettings,
    *,
    clock: Clock = utc_now,
    render: Render = render_report,
    send: Send = mailer.send,
    policy: RetryPolicy = RetryPolicy(),
    owner: str | None = None,
) -> list[Run]:
    """One per run this pass attempted, as stored after its attempt: every due period not yet
    claimed (oldest first, per schedule), then every failed run whose retry is due."""
    p = _Pass(lake, smtp, clock, render, send, policy, owner or _owner())
    report_runs.expire_leases(lake, clock(), policy.max_attempts)
    done: list[Run | None] = []
    for schedule in list_schedules(lake):
        assert schedule.id is not None
        claimed = report_runs.claimed_periods(lake, schedule.id)
        for period in due_periods(schedule, clock()):
            if period in claimed:
                continue
            run = report_runs.claim_period(lake, schedule, period, p.owner, clock(), policy.lease)
            if run is not None:
                done.append(p.attempt(run))
    for waiting in report_runs.retry_due(lake, clock()):
        run = report_runs.claim_retry(lake, waiting.id, p.owner, clock(), policy.lease)
        if run is not None:
            done.append(p.attempt(run))
    return [run for run in done if run is not None]


def next_wake(lake: Path, now: datetime, interval_s: float) -> float:
    """Seconds until the next due run or retry, at most `interval_s` (which picks up edits)."""
    times = [next_due(s, now) for s in list_schedules(lake)]
    times.append(report_runs.earliest_retry(lake))
    soonest = min((t for t in times if t is not None), default=None)
    if soonest is None:
        return interval_s
    return max(1.0, min(interval_s, (soonest - now).total_seconds()))


def scheduler_main(
    lake: Path,
    smtp_settings: SmtpSettings,
    once: bool,
    interval_s: float,
    stop: threading.Event | None = None,
    policy: RetryPolicy = RetryPolicy(),
    *,
    clock: Clock = utc_now,
    render: Render = render_report,
    send: Send = mailer.send,
) -> int:
    """`perflake scheduler`: passes until `stop` is set (or one with `once`). Exit status 1 when
    a run of the `once` pass failed, else 0."""
    lake = ensure_lake(lake)
    stop = stop or threading.Event()
    owner = _owner()
    log.info("scheduler on %s as %s", lake, owner)
    while True:
        try:
            runs = run_pass(
                lake,
                smtp_settings,
                clock=clock,
                render=render,
                send=send,
                policy=policy,
                owner=owner,
            )
        except Exception:
            if once:
                raise
            # A locked store or a full disk is usually gone by the next pass.
            log.exception("scheduler pass failed")
            runs = []
        for run in runs:
            _log_run(run)
        if once:
            return 1 if any(run.status != "sent" for run in runs) else 0
        if stop.wait(next_wake(lake, clock(), interval_s)):
            return 0


def _log_run(run: Run) -> None:
    what = f"run {run.id}: {run.kind} {run.period.start}..{run.period.end}"
    if run.status == "sent":
        log.info(
            "%s sent to %d recipient(s), %d file(s)", what, len(run.recipients), len(run.files)
        )
    else:
        retry = (
            f"retry at {run.next_attempt_at:%Y-%m-%d %H:%M:%S}Z"
            if run.next_attempt_at
            else "no retry"
        )
        log.warning(
            "%s %s after %d attempt(s), %s: %s",
            what,
            run.status,
            run.attempts,
            retry,
            run.last_error,
        )


# --- `perflake schedule ...` -------------------------------------------------------------------

SCHEDULE_COLUMNS = [
    "id", "report", "project", "timing", "recipients", "formats", "state", "next_due_utc",
]  # fmt: skip
RUN_COLUMNS = [
    "id", "schedule", "report", "project", "period", "status", "attempts", "sent_at_utc",
    "next_attempt_utc", "files", "last_error",
]  # fmt: skip


def schedule_add(lake: Path, now: datetime | None = None, **fields: Any) -> Schedule:
    """`perflake schedule add`: a new schedule from its fields (Schedule's names), as stored."""
    return save_schedule(lake, Schedule(**fields), now)


def schedule_edit(lake: Path, id: int, now: datetime | None = None, **changes: Any) -> Schedule:
    """`perflake schedule edit ID`: the fields given (not None) replaced, as stored."""
    old = get_schedule(lake, id)
    changed = replace(old, **{k: v for k, v in changes.items() if v is not None})
    return save_schedule(lake, changed, now)


def schedule_pause(
    lake: Path, id: int, paused: bool = True, now: datetime | None = None
) -> Schedule:
    """`perflake schedule pause ID` (paused) and `resume ID` (not paused)."""
    return set_paused(lake, id, paused, now)


def schedule_delete(lake: Path, id: int) -> None:
    """`perflake schedule delete ID`: the schedule goes, its runs and files stay."""
    delete_schedule(lake, id)


def schedule_rows(lake: Path, now: datetime | None = None) -> list[tuple[Any, ...]]:
    """`perflake schedule list`: one row per schedule (SCHEDULE_COLUMNS), by id."""
    now = now or utc_now()
    rows = []
    for s in list_schedules(lake):
        due = next_due(s, now)
        rows.append(
            (
                s.id,
                s.kind,
                s.project or "",
                describe(s),
                ", ".join(s.recipients),
                ",".join(s.formats),
                "paused" if s.paused else "active",
                f"{due:%Y-%m-%d %H:%M}" if due else "",
            )
        )
    return rows


def run_rows(lake: Path, limit: int = 100) -> list[tuple[Any, ...]]:
    """`perflake schedule runs`: one row per run (RUN_COLUMNS), newest period first."""
    return [
        (
            r.id,
            r.schedule_id,
            r.kind,
            r.project or "",
            f"{r.period.start}..{r.period.end}",
            r.status,
            r.attempts,
            f"{r.sent_at:%Y-%m-%d %H:%M:%S}" if r.sent_at else "",
            f"{r.next_attempt_at:%Y-%m-%d %H:%M:%S}" if r.next_attempt_at else "",
            ",".join(r.files),
            r.last_error or "",
        )
        for r in report_runs.list_runs(lake, limit)
    ]
