"""Real reports e-mailed to a real SMTP server on loopback (aiosmtpd): what arrives is what the
history keeps, byte for byte; STARTTLS and SSL with a login; a failing or absent server is retried
with backoff until it recovers; two scheduler processes racing send each period once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pypdf import PdfReader

from app.exports import media_type
from app.mailer import MailError, SmtpSettings, build_message, send
from app.scheduler import RetryPolicy, run_pass
from ingest.broker import free_port
from lake.report_runs import list_runs, run_file
from lake.schedules import Schedule, save_schedule
from queries.reports import build_report
from tests.app.conftest import farm_events
from tests.lakes import write_events

ROOT = Path(__file__).resolve().parents[2]
SENDER = "perflake@studio.example.com"
RECIPIENTS = ("ops@studio.example.com", "lead@studio.example.com")


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps each accepted message, or answers `fail_with` to DATA."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    fail_with: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_with:
            return self.fail_with
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        found = [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.received]
        assert all(isinstance(m, EmailMessage) for m in found)
        return found


def _content(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("smtp") / "farm", farm_events())


@pytest.fixture
def lake(farm: Path, tmp_path: Path) -> Path:
    """A fresh copy of the farm lake per test: its own store and report history."""
    return Path(shutil.copytree(farm, tmp_path / "lake"))


def _smtp(port: int, **kw: Any) -> SmtpSettings:
    fields: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none"}
    return SmtpSettings(**(fields | {"sender": SENDER} | kw))


def test_the_report_arrives_with_its_attachments_intact(
    lake: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    # Mondays 08:00 UTC from Tuesday June 3rd: the week June 2-8 is due on June 9th.
    save_schedule(
        lake,
        Schedule(project="p-1", recipients=RECIPIENTS, formats=("csv", "json", "pdf")),
        datetime(2025, 6, 3, tzinfo=UTC),
    )
    now = datetime(2025, 6, 9, 8, 0, tzinfo=UTC)
    (run,) = run_pass(lake, _smtp(port), clock=lambda: now)
    assert (run.status, run.attempts, run.last_error) == ("sent", 1, None)
    ((mail_from, rcpt_tos, _),) = box.received
    assert (mail_from, rcpt_tos) == (SENDER, list(RECIPIENTS))
    (message,) = box.messages()
    assert message["Subject"] == "perflake: Performance summary, 2025-06-02 to 2025-06-08 (p-1)"
    assert message["To"] == ", ".join(RECIPIENTS)
    assert run.files == (
        "perflake-performance-p-1-2025-06-02_2025-06-08.zip",
        "perflake-performance-p-1-2025-06-02_2025-06-08.json",
        "perflake-performance-p-1-2025-06-02_2025-06-08.pdf",
    )
    attached = {
        str(a.get_filename()): (a.get_content_type(), _content(a))
        for a in message.iter_attachments()
    }
    assert {name: kind for name, (kind, _) in attached.items()} == {
        run.files[0]: "application/zip",
        run.files[1]: "application/json",
        run.files[2]: "application/pdf",
    }
    for name, (_, content) in attached.items():
        assert content == run_file(lake, run, name).read_bytes()
    # The attachments are real reports of the period.
    document = json.loads(attached[run.files[1]][1])
    assert (document["report"], document["period"], document["filters"]) == (
        "performance",
        {"from": "2025-06-02", "to": "2025-06-08"},
        {"project": "p-1"},
    )
    pdf = PdfReader(BytesIO(attached[run.files[2]][1]))
    assert "Performance summary" in pdf.pages[0].extract_text()
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")  # the wire's line ends
    assert text.startswith("Performance summary, 2025-06-02 to 2025-06-08, project p-1.\n\n")
    report = build_report(lake, "performance", date(2025, 6, 2), date(2025, 6, 8), "p-1")
    assert report.summary
    for sentence in report.summary:
        assert sentence in text
    # The mailer's media types agree with the exporter's.
    for fmt, name in zip(("csv", "json", "pdf"), run.files, strict=True):
        assert attached[name][0] == media_type(report, fmt)


def _certificate(folder: Path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"perf", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login(tmp_path: Path, security: str) -> None:
    import ssl

    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box, port = Mailbox(), free_port()
    tls: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if security == "starttls"
        # aiosmtpd sees no STARTTLS on an SSL connection (encrypted from the first byte), so it
        # is told to offer AUTH anyway, and warns when it must also require it.
        else {"ssl_context": context, "auth_require_tls": False, "auth_required": False}
    )
    tls.setdefault("auth_required", True)
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=_authenticate, **tls
    )
    controller.start()
    try:
        settings = _smtp(port, security=security, user="perf", password="s3cret", ca_file=cert)
        message = build_message(
            SENDER, ["ops@studio.example.com"], "hello", "body\n", [("a.csv", b"x,y\r\n1,2\r\n")]
        )
        assert send(settings, message) == {}
        with pytest.raises(
            MailError, match=r"refused the message: 535 5\.7\.8 Authentication credentials invalid"
        ):
            send(
                _smtp(port, security=security, user="perf", password="wrong", ca_file=cert), message
            )
        # Without the CA the certificate is not trusted: nothing is sent in the clear.
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
            send(_smtp(port, security=security, user="perf", password="s3cret"), message)
    finally:
        controller.stop()
    (received,) = box.messages()
    (attachment,) = received.iter_attachments()
    assert _content(attachment) == b"x,y\r\n1,2\r\n"


def test_a_failing_server_is_retried_with_backoff_and_sent_once_it_recovers(
    lake: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    closed = free_port()  # nothing listens there
    save_schedule(
        lake,
        Schedule(recipients=RECIPIENTS, formats=("csv",)),
        datetime(2025, 6, 3, tzinfo=UTC),
    )
    t0 = datetime(2025, 6, 9, 8, 0, tzinfo=UTC)
    retry = RetryPolicy(base_s=60, max_attempts=5)

    def attempt(settings: SmtpSettings, at: datetime) -> Any:
        (run,) = run_pass(lake, settings, clock=lambda: at, policy=retry)
        return run

    run = attempt(_smtp(closed), t0)
    assert (run.status, run.attempts, run.next_attempt_at) == (
        "failed",
        1,
        t0 + timedelta(seconds=60),
    )
    assert run.last_error.startswith(
        f"cannot connect to 127.0.0.1:{closed}: ConnectionRefusedError"
    )
    box.fail_with = "451 4.3.0 Try again later"
    t1 = t0 + timedelta(seconds=60)
    assert run_pass(lake, _smtp(port), clock=lambda: t1 - timedelta(seconds=1), policy=retry) == []
    run = attempt(_smtp(port), t1)
    assert (run.status, run.attempts, run.next_attempt_at) == (
        "failed",
        2,
        t1 + timedelta(seconds=120),
    )
    assert run.last_error == f"127.0.0.1:{port} refused the message: 451 4.3.0 Try again later"
    assert list_runs(lake)[0].last_error == run.last_error  # what the app shows
    box.fail_with = None
    t2 = t1 + timedelta(seconds=120)
    run = attempt(_smtp(port), t2)
    assert (run.status, run.attempts, run.sent_at, run.last_error) == ("sent", 3, t2, None)
    assert len(box.received) == 1
    assert run_pass(lake, _smtp(port), clock=lambda: t2 + timedelta(days=1), policy=retry) == []
    assert len(box.received) == 1


RACER = """
import logging, sys, time
from datetime import datetime
from pathlib import Path
import app.exports, queries.reports  # loaded before the start, so the racers start level
from app.mailer import SmtpSettings
from app.scheduler import scheduler_main
logging.basicConfig(level=logging.INFO, stream=sys.stdout)
lake, port, ready, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
now = datetime.fromisoformat(sys.argv[5])
settings = SmtpSettings(host="127.0.0.1", port=port, security="none", sender="perflake@studio.example.com")
ready.touch()
while not go.exists():
    time.sleep(0.002)
sys.exit(scheduler_main(lake, settings, True, 60, clock=lambda: now))
"""


@pytest.mark.slow
def test_two_scheduler_processes_racing_send_each_period_once(
    lake: Path, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    # Weekly from May 1st, run on June 10th: six weeks due, April 28th to June 8th.
    save_schedule(
        lake,
        Schedule(recipients=RECIPIENTS, formats=("csv",)),
        datetime(2025, 5, 1, tzinfo=UTC),
    )
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    now = "2025-06-10T00:00:00+00:00"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(lake), str(port), str(flag), str(go), now],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for flag in ready
    ]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [racer.communicate(timeout=240)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    subjects = sorted(str(m["Subject"]) for m in box.messages())
    assert subjects == [
        f"perflake: Performance summary, {start} to {end}"
        for start, end in [
            ("2025-04-28", "2025-05-04"),
            ("2025-05-05", "2025-05-11"),
            ("2025-05-12", "2025-05-18"),
            ("2025-05-19", "2025-05-25"),
            ("2025-05-26", "2025-06-01"),
            ("2025-06-02", "2025-06-08"),
        ]
    ]
    assert [(r.status, r.attempts) for r in list_runs(lake)] == [("sent", 1)] * 6
    # Both processes sent some: a race that one process won outright would prove little.
    assert all("sent to 2 recipient(s)" in out for out in outputs), outputs
