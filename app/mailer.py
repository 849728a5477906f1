"""E-mail delivery over SMTP: the settings, the message with its attachments, one send.

Settings come from the caller (the CLI builds them from flags and PERFLAKE_SMTP_* variables);
nothing here reads the environment. A send either hands the message to the server or raises
MailError with the server's answer; retrying is the scheduler's business.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

SECURITY = ("starttls", "ssl", "none")
#: The port each security mode uses unless told otherwise (submission, SMTPS, plain SMTP).
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
#: Media types of the files reports are exported to, by suffix; others go as octet-stream.
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".png": "image/png",
}


class MailError(Exception):
    """The SMTP server could not be reached or refused the message; the text says why."""


class MailSettingsError(MailError, ValueError):
    """A setting is invalid; `field` names it."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send. `port` None takes the security mode's usual port; `ca_file` is a
    PEM bundle that verifies the server's certificate instead of the system's (a private CA)."""

    host: str = "localhost"
    port: int | None = None
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    sender: str = "perflake@localhost"
    timeout_s: float = 30.0
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.host or not self.host.strip():
            raise MailSettingsError("host", "required")
        if self.security not in SECURITY:
            raise MailSettingsError(
                "security", f"must be one of {', '.join(SECURITY)}, got {self.security!r}"
            )
        if self.port is not None and not 0 < self.port < 65536:
            raise MailSettingsError("port", f"must be 1-65535, got {self.port}")
        if "@" not in parseaddr(self.sender)[1]:
            raise MailSettingsError("sender", f"must be an e-mail address, got {self.sender!r}")
        if bool(self.user) != bool(self.password):
            raise MailSettingsError("user", "set both the user and the password, or neither")
        if self.timeout_s <= 0:
            raise MailSettingsError("timeout_s", f"must be > 0, got {self.timeout_s}")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise MailSettingsError("ca_file", f"no such file {self.ca_file}")

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port or DEFAULT_PORTS[self.security]


def media_type(name: str) -> str:
    """The media type an attachment named `name` is sent as."""
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def build_message(
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> EmailMessage:
    """A plain-text message with `attachments` (file name, content) in base64, bytes intact."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    message.set_content(body)
    for name, content in attachments:
        maintype, subtype = media_type(name).split("/")
        message.add_attachment(
            content, maintype=maintype, subtype=subtype, filename=name, cte="base64"
        )
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> dict[str, str]:
    """Hand `message` to the server; returns the refused recipients (address -> the server's
    answer) when others were accepted. MailError when nothing was accepted."""
    host, port = settings.address
    context = ssl.create_default_context(cafile=settings.ca_file)
    try:
        if settings.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=settings.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=settings.timeout_s)
    except (OSError, smtplib.SMTPException) as e:
        raise MailError(f"cannot connect to {host}:{port}: {_reason(e)}") from e
    try:
        if settings.security == "starttls":
            smtp.starttls(context=context)
        if settings.user and settings.password:
            smtp.login(settings.user, settings.password)
        refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as e:
        raise MailError(f"{host}:{port} refused the message: {_reason(e)}") from e
    finally:
        # The message is handed over once send_message returns: a failing QUIT must not turn
        # that into an error (the scheduler would send it again).
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return {address: _answer(code, text) for address, (code, text) in refused.items()}


def _answer(code: int, text: bytes | str) -> str:
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {text}".strip()


def _reason(e: BaseException) -> str:
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        return "every recipient refused: " + "; ".join(
            f"{address}: {_answer(*answer)}" for address, answer in e.recipients.items()
        )
    if isinstance(e, smtplib.SMTPResponseException):
        return _answer(e.smtp_code, e.smtp_error)
    if isinstance(e, smtplib.SMTPNotSupportedError):
        return f"the server does not support it ({e})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
