"""The scheduler against a controlled clock, with a stand-in report and a recording mailbox:
catch-up after downtime, no second send, backoff, give-up, DST nights, racing passes, the CLI
functions. Real reports and a real SMTP server are in tests/e2e/test_smtp.py."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from app.mailer import MailError, SmtpSettings
from app.scheduler import (
    Rendered,
    RetryPolicy,
    next_wake,
    run_pass,
    run_rows,
    schedule_add,
    schedule_delete,
    schedule_edit,
    schedule_pause,
    schedule_rows,
    scheduler_main,
    subject,
)
from lake.layout import ensure_lake
from lake.report_runs import (
    INTERRUPTED_SEND,
    claim_period,
    get_run,
    list_runs,
    retry_now,
    run_file,
    start_send,
)
from lake.schedules import Period, Schedule, ScheduleError, save_schedule, set_paused

SMTP = SmtpSettings(host="127.0.0.1", port=2525, security="none", sender="perflake@example.com")
CREATED = datetime(2025, 5, 1, tzinfo=UTC)
LEASE = timedelta(minutes=15)


@dataclass
class Farm:
    """A stand-in report renderer and mailbox that record every call."""

    lake: Path
    now: datetime = CREATED
    renders: list[tuple[Any, ...]] = field(default_factory=list)
    sent: list[EmailMessage] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    render_failures: list[Exception] = field(default_factory=list)

    def render(
        self,
        lake: Path,
        kind: str,
        start: date,
        end: date,
        project: str | None,
        formats: Sequence[str],
    ) -> Rendered:
        self.renders.append((kind, start, end, project, tuple(formats)))
        if self.render_failures:
            raise self.render_failures.pop(0)
        files = tuple((f"{kind}-{start}.{f}", f"{f} of {start}\r\n".encode()) for f in formats)
        return Rendered("Performance summary", (f"Week of {start}.", "Jobs rose 5%."), files)

    def send(self, settings: SmtpSettings, message: EmailMessage) -> dict[str, str]:
        assert settings == SMTP
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return self.refused

    def run(self, policy: RetryPolicy | None = None, owner: str = "test") -> list[Any]:
        return run_pass(
            self.lake,
            SMTP,
            clock=lambda: self.now,
            render=self.render,
            send=self.send,
            policy=policy or RetryPolicy(),
            owner=owner,
        )


@pytest.fixture
def farm(tmp_path: Path) -> Farm:
    return Farm(ensure_lake(tmp_path / "lake", create=True))


def _schedule(farm: Farm, **kw: Any) -> Schedule:
    fields = {
        "project": "proj-aurora",
        "zone": "Europe/Paris",
        "recipients": ("ops@example.com", "lead@example.com"),
        "formats": ("csv", "pdf"),
    } | kw
    return save_schedule(farm.lake, Schedule(**fields), CREATED)


def _week(start: date) -> Period:
    return Period(start, start + timedelta(days=6))


def _subjects(farm: Farm) -> list[str]:
    return [str(m["Subject"]) for m in farm.sent]


def test_catch_up_sends_each_missed_week_once(farm: Farm) -> None:
    _schedule(farm)  # Mondays 08:00 Paris (06:00 UTC); active from May 1st
    farm.now = datetime(2025, 5, 20, 12, tzinfo=UTC)  # back after three Mondays down
    runs = farm.run()
    weeks = [date(2025, 4, 28), date(2025, 5, 5), date(2025, 5, 12)]
    assert [(r.period, r.status, r.attempts) for r in runs] == [
        (_week(w), "sent", 1) for w in weeks
    ]
    assert farm.renders == [
        ("performance", w, w + timedelta(days=6), "proj-aurora", ("csv", "pdf")) for w in weeks
    ]
    assert _subjects(farm) == [
        "perflake: Performance summary, 2025-04-28 to 2025-05-04 (proj-aurora)",
        "perflake: Performance summary, 2025-05-05 to 2025-05-11 (proj-aurora)",
        "perflake: Performance summary, 2025-05-12 to 2025-05-18 (proj-aurora)",
    ]
    assert farm.run() == []  # the same moment again: nothing twice
    farm.now = datetime(2025, 5, 26, 5, 59, tzinfo=UTC)
    assert farm.run() == []
    farm.now = datetime(2025, 5, 26, 6, 0, tzinfo=UTC)
    assert [r.period for r in farm.run()] == [_week(date(2025, 5, 19))]
    assert len(farm.sent) == 4
    assert [r.sent_at for r in list_runs(farm.lake)][:1] == [farm.now]


def test_the_message_and_the_kept_files(farm: Farm) -> None:
    _schedule(farm)
    farm.now = datetime(2025, 5, 5, 6, tzinfo=UTC)
    (run,) = farm.run()
    (message,) = farm.sent
    assert message["To"] == "ops@example.com, lead@example.com"
    assert message["From"] == "perflake@example.com"
    assert message.get_body(("plain",)).get_content() == (  # type: ignore[union-attr]
        "Performance summary, 2025-04-28 to 2025-05-04, project proj-aurora.\n"
        "\n"
        "Week of 2025-04-28.\n"
        "Jobs rose 5%.\n"
        "\n"
        "Attached: performance-2025-04-28.csv, performance-2025-04-28.pdf.\n"
        "\n"
        "Sent by perflake for schedule 1 (weekly on Monday at 08:00 Europe/Paris).\n"
    )
    attached = [
        (a.get_filename(), a.get_content_type(), a.get_payload(decode=True))
        for a in message.iter_attachments()
    ]
    assert attached == [
        ("performance-2025-04-28.csv", "text/csv", b"csv of 2025-04-28\r\n"),
        ("performance-2025-04-28.pdf", "application/pdf", b"pdf of 2025-04-28\r\n"),
    ]
    assert run.files == ("performance-2025-04-28.csv", "performance-2025-04-28.pdf")
    kept = run_file(farm.lake, run, "performance-2025-04-28.pdf")
    assert kept == farm.lake / "_reports" / "2025" / "run-1" / "performance-2025-04-28.pdf"
    assert kept.read_bytes() == b"pdf of 2025-04-28\r\n"
    assert sorted(p.name for p in kept.parent.iterdir()) == list(run.files)  # no temp left


def test_failed_sends_back_off_then_send_once_the_server_recovers(farm: Farm) -> None:
    _schedule(farm)
    policy = RetryPolicy(base_s=60, max_s=100, max_attempts=5)
    t0 = datetime(2025, 5, 5, 6, tzinfo=UTC)
    farm.failures = [MailError(f"451 4.3.0 try again later ({n})") for n in (1, 2, 3)]
    farm.now = t0
    (run,) = farm.run(policy)
    assert (run.status, run.attempts, run.last_error, run.next_attempt_at) == (
        "failed",
        1,
        "451 4.3.0 try again later (1)",
        t0 + timedelta(seconds=60),
    )
    farm.now = t0 + timedelta(seconds=59)
    assert farm.run(policy) == []
    farm.now = t0 + timedelta(seconds=60)
    (run,) = farm.run(policy)
    assert (run.attempts, run.next_attempt_at) == (
        2,
        farm.now + timedelta(seconds=100),
    )  # 120 capped
    farm.now += timedelta(seconds=100)
    (run,) = farm.run(policy)
    assert (run.attempts, run.last_error) == (3, "451 4.3.0 try again later (3)")
    farm.now += timedelta(seconds=100)
    (run,) = farm.run(policy)
    assert (run.status, run.attempts, run.last_error, run.sent_at) == ("sent", 4, None, farm.now)
    assert len(farm.sent) == 1
    assert len(farm.renders) == 1  # the files are built once and kept for every retry
    farm.now += timedelta(days=1)
    assert farm.run(policy) == []


def test_a_send_that_keeps_failing_stays_failed_until_retried_by_hand(farm: Farm) -> None:
    _schedule(farm)
    policy = RetryPolicy(base_s=1, max_attempts=2)
    farm.failures = [MailError("cannot connect to 127.0.0.1:2525: ConnectionRefusedError")] * 3
    farm.now = datetime(2025, 5, 5, 6, tzinfo=UTC)
    farm.run(policy)
    farm.now += timedelta(seconds=1)
    (run,) = farm.run(policy)
    assert (run.status, run.attempts, run.next_attempt_at) == ("failed", 2, None)
    assert run_rows(farm.lake)[0][5:7] == ("failed", 2)
    assert run_rows(farm.lake)[0][-1] == "cannot connect to 127.0.0.1:2525: ConnectionRefusedError"
    farm.now += timedelta(days=7)
    assert [r.period for r in farm.run(policy)] == [_week(date(2025, 5, 5))]  # only the new week
    farm.failures = []
    retry_now(farm.lake, run.id, farm.now)
    (again,) = farm.run(policy)
    assert (again.id, again.status, again.attempts) == (run.id, "sent", 3)


def test_a_report_that_fails_to_build_is_built_again_later(farm: Farm) -> None:
    _schedule(farm)
    farm.render_failures = [ValueError("start: after end")]
    farm.now = datetime(2025, 5, 5, 6, tzinfo=UTC)
    (run,) = farm.run()
    assert (run.status, run.files, run.last_error) == (
        "failed",
        (),
        "building the report failed: ValueError: start: after end",
    )
    assert farm.sent == []
    farm.now = run.next_attempt_at
    (run,) = farm.run()
    assert (run.status, run.attempts, len(farm.renders), len(farm.sent)) == ("sent", 2, 2, 1)


def test_refused_recipients_are_noted_and_not_sent_again(farm: Farm) -> None:
    _schedule(farm)
    farm.refused = {"lead@example.com": "550 5.1.1 no such user"}
    farm.now = datetime(2025, 5, 5, 6, tzinfo=UTC)
    (run,) = farm.run()
    assert (run.status, run.last_error) == (
        "sent",
        "refused lead@example.com: 550 5.1.1 no such user",
    )
    farm.now += timedelta(hours=1)
    assert farm.run() == []


def test_paused_schedules_send_nothing_and_resume_without_catching_up(farm: Farm) -> None:
    _schedule(farm)
    set_paused(farm.lake, 1, True, CREATED)
    farm.now = datetime(2025, 5, 20, tzinfo=UTC)
    assert farm.run() == []
    set_paused(farm.lake, 1, False, farm.now)
    assert farm.run() == []
    farm.now = datetime(2025, 5, 26, 6, tzinfo=UTC)
    assert [r.period for r in farm.run()] == [_week(date(2025, 5, 19))]


@pytest.mark.parametrize(
    ("active", "start", "end", "sent_at"),
    [
        # Sunday 02:30 Berlin does not exist on 2025-03-30: sent once, at 03:30 CEST.
        (
            datetime(2025, 3, 24, tzinfo=UTC),
            datetime(2025, 3, 29, 22, tzinfo=UTC),
            datetime(2025, 3, 30, 4, tzinfo=UTC),
            datetime(2025, 3, 30, 1, 30, tzinfo=UTC),
        ),
        # ... and happens twice on 2025-10-26: sent once, at the first.
        (
            datetime(2025, 10, 20, tzinfo=UTC),
            datetime(2025, 10, 25, 22, tzinfo=UTC),
            datetime(2025, 10, 26, 4, tzinfo=UTC),
            datetime(2025, 10, 26, 0, 30, tzinfo=UTC),
        ),
    ],
)
def test_dst_nights_send_once(
    farm: Farm, active: datetime, start: datetime, end: datetime, sent_at: datetime
) -> None:
    save_schedule(
        farm.lake,
        Schedule(day=6, time="02:30", zone="Europe/Berlin", recipients=("ops@example.com",)),
        active,
    )
    farm.now = start
    while farm.now <= end:
        farm.run()
        farm.now += timedelta(minutes=5)
    assert [(r.status, r.sent_at) for r in list_runs(farm.lake)] == [("sent", sent_at)]
    assert len(farm.sent) == 1


def test_racing_passes_send_each_period_once(farm: Farm) -> None:
    _schedule(farm)
    farm.now = datetime(2025, 7, 1, tzinfo=UTC)  # nine Mondays due
    start = threading.Barrier(4)

    def race(owner: str) -> None:
        start.wait()
        farm.run(owner=owner)

    threads = [threading.Thread(target=race, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(farm.sent) == 9
    assert len(set(_subjects(farm))) == 9
    assert {r.status for r in list_runs(farm.lake)} == {"sent"}


def test_abandoned_runs(farm: Farm) -> None:
    s = _schedule(farm)
    farm.now = datetime(2025, 5, 12, 7, tzinfo=UTC)
    # A scheduler died while building week 1 and another while sending week 2.
    building = claim_period(farm.lake, s, _week(date(2025, 4, 28)), "dead", farm.now, LEASE)
    sending = claim_period(farm.lake, s, _week(date(2025, 5, 5)), "dead", farm.now, LEASE)
    assert building and sending
    start_send(farm.lake, sending.id, "dead", farm.now, LEASE)
    assert farm.run() == []  # their leases still hold
    farm.now += LEASE + timedelta(seconds=1)
    assert [(r.id, r.status) for r in farm.run()] == [(building.id, "sent")]
    stuck = get_run(farm.lake, sending.id)
    assert (stuck.status, stuck.last_error, stuck.next_attempt_at) == (
        "failed",
        INTERRUPTED_SEND,
        None,
    )
    assert len(farm.sent) == 1


def test_next_wake(farm: Farm) -> None:
    now = datetime(2025, 5, 5, 5, 0, tzinfo=UTC)
    assert next_wake(farm.lake, now, 60) == 60  # nothing scheduled
    _schedule(farm)
    assert next_wake(farm.lake, now, 7200) == 3600  # the run due at 06:00 UTC
    assert next_wake(farm.lake, now, 60) == 60
    assert next_wake(farm.lake, datetime(2025, 5, 5, 5, 59, 59, 900000, tzinfo=UTC), 60) == 1.0


def test_scheduler_main(farm: Farm) -> None:
    _schedule(farm)
    farm.now = datetime(2025, 5, 5, 6, tzinfo=UTC)
    given: dict[str, Any] = {"clock": lambda: farm.now, "render": farm.render, "send": farm.send}
    assert scheduler_main(farm.lake, SMTP, True, 60, **given) == 0
    assert len(farm.sent) == 1
    farm.now += timedelta(days=7)
    farm.failures = [MailError("451 later")]
    assert scheduler_main(farm.lake, SMTP, True, 60, **given) == 1  # a run failed
    stop = threading.Event()
    stop.set()  # the loop makes one pass, then sees the stop
    farm.now += timedelta(days=7)
    assert scheduler_main(farm.lake, SMTP, False, 60, stop, **given) == 0
    # The new week, and the failed one's retry (due long ago).
    assert len(farm.sent) == 3
    assert [(r.status, r.attempts) for r in list_runs(farm.lake)] == [
        ("sent", 1),
        ("sent", 2),
        ("sent", 1),
    ]


def test_subject_without_a_project() -> None:
    assert (
        subject("Cost", date(2025, 6, 1), date(2025, 6, 30), None)
        == "perflake: Cost, 2025-06-01 to 2025-06-30"
    )


def test_schedule_commands(farm: Farm) -> None:
    lake = farm.lake
    s = schedule_add(
        lake,
        kind="cost",
        cadence="monthly",
        day="last",
        time="18:00",
        zone="UTC",
        recipients="ops@example.com,cfo@example.com",
        formats="pdf,json",
        now=CREATED,
    )
    assert (s.id, s.recipients, s.formats) == (
        1,
        ("ops@example.com", "cfo@example.com"),
        ("json", "pdf"),
    )
    edited = schedule_edit(lake, 1, time="07:15", project="proj-aurora", recipients=None)
    assert (edited.time, edited.project, edited.recipients) == (
        "07:15",
        "proj-aurora",
        s.recipients,
    )
    assert schedule_pause(lake, 1).paused
    now = datetime(2025, 6, 3, tzinfo=UTC)
    assert schedule_rows(lake, now) == [
        (
            1,
            "cost",
            "proj-aurora",
            "monthly on the last day at 07:15 UTC",
            "ops@example.com, cfo@example.com",
            "json,pdf",
            "paused",
            "",
        )
    ]
    schedule_pause(lake, 1, paused=False, now=now)
    assert schedule_rows(lake, now)[0][6:] == ("active", "2025-06-30 07:15")
    with pytest.raises(ScheduleError, match="day: must be a day of the month"):
        schedule_edit(lake, 1, cadence="monthly", day="31")
    with pytest.raises(ScheduleError, match="recipients: not an e-mail address"):
        schedule_add(lake, recipients="ops at example.com")
    schedule_delete(lake, 1)
    assert schedule_rows(lake, now) == []
    with pytest.raises(ScheduleError, match="no schedule has id 1"):
        schedule_delete(lake, 1)


def test_the_lake_knows_every_report_type_and_format() -> None:
    # lake/ cannot import queries/ or app/, so it names them again: they must agree.
    from app.exports import FORMATS
    from lake import schedules
    from queries.reports import REPORT_TYPES

    assert tuple(REPORT_TYPES) == schedules.REPORT_KINDS
    assert schedules.FORMATS == FORMATS
