"""Delivery of the apology letter to the applicant: e-mail (SMTP), SMS and Zalo (through the
city's messaging gateway, a webhook), and an in-memory channel for tests.

Adapters only, no decisions: which channel a citizen gets is the caller's business.
Personal data (names, phones, e-mail addresses, postal addresses) is never logged and never put
in an exception's message: logs and errors name the dossier code and the channel kind only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import aiosmtplib
import httpx
from email_validator import EmailNotValidError, validate_email

from services.notifier.letters import ApologyLetter, letter_text
from services.notifier.notices import (
    CitizenNotice,
    notice_attachment_name,
    notice_subject,
    notice_text,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# What goes to the applicant: the apology, or another of the unit's letters (notices.py).
Letter = ApologyLetter | CitizenNotice


def text_of(letter: Letter) -> str:
    return notice_text(letter) if isinstance(letter, CitizenNotice) else letter_text(letter)


def _what(letter: Letter) -> str:
    return f"{letter.kind} notice" if isinstance(letter, CitizenNotice) else "apology letter"


def _now() -> datetime:
    return datetime.now(UTC)


class ChannelKind(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    ZALO = "zalo"


_PHONE = re.compile(r"^\+?[0-9]{8,15}$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")


@dataclass(frozen=True)
class Recipient:
    """Where the applicant gets the letter: an e-mail address, or a phone number for SMS and
    Zalo (separators are dropped: "0909 123 456" becomes "0909123456").
    Personal data: `repr` hides the address and invalid input is not echoed in the error."""

    kind: ChannelKind
    address: str = field(repr=False)

    def __post_init__(self) -> None:
        kind = ChannelKind(self.kind)
        object.__setattr__(self, "kind", kind)
        if kind is ChannelKind.EMAIL:
            try:
                email = validate_email(self.address, check_deliverability=False).normalized
            except EmailNotValidError:
                raise ValueError("recipient: not a valid e-mail address") from None
            object.__setattr__(self, "address", email)
        else:
            phone = _PHONE_SEPARATORS.sub("", self.address)
            if not _PHONE.match(phone):
                raise ValueError(f"recipient: not a valid phone number for {kind}")
            object.__setattr__(self, "address", phone)


@dataclass(frozen=True)
class DeliveryReceipt:
    channel: ChannelKind
    message_id: str
    sent_at: datetime
    dossier_code: str


class DeliveryError(Exception):
    """The channel did not take the letter. The message names no personal data.
    `permanent`: the channel refused it for good, trying again would not help."""

    def __init__(
        self,
        message: str,
        *,
        dossier_code: str,
        channel: ChannelKind,
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.dossier_code = dossier_code
        self.channel = channel
        self.permanent = permanent


class WebhookRejected(DeliveryError):
    """The messaging gateway answered with a status other than 2xx."""

    def __init__(
        self, message: str, *, dossier_code: str, channel: ChannelKind, status_code: int
    ) -> None:
        super().__init__(
            message,
            dossier_code=dossier_code,
            channel=channel,
            permanent=webhook_status_is_permanent(status_code),
        )
        self.status_code = status_code


def webhook_status_is_permanent(status: int) -> bool:
    """A 4xx is the gateway refusing this request for good, except 408 (timeout) and 429
    (too many requests); 5xx and anything else may pass on a later try."""
    return 400 <= status < 500 and status not in (408, 429)


def smtp_refusal_is_permanent(error: Exception) -> bool:
    """A 5xx reply to RCPT (every recipient) or DATA refuses this message for good. Other
    failures (connection, timeouts, 4xx, a refused sender, which is our configuration) pass."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(r.code >= 500 for r in error.recipients)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return error.code >= 500
    return False


@runtime_checkable
class Channel(Protocol):
    """Delivers one apology letter to one recipient."""

    kinds: frozenset[ChannelKind]

    async def send(
        self,
        letter: Letter,
        *,
        html: str,
        pdf: bytes,
        recipient: Recipient,
        message_id: str | None = None,
    ) -> DeliveryReceipt: ...


def _require(channel: Channel, recipient: Recipient) -> None:
    if recipient.kind not in channel.kinds:
        raise ValueError(
            f"{type(channel).__name__} delivers {sorted(channel.kinds)}, not {recipient.kind}"
        )


def _log_sent(receipt: DeliveryReceipt) -> None:
    logger.info(
        "apology letter sent",
        extra={"dossier_code": receipt.dossier_code, "channel": str(receipt.channel)},
    )


def _log_failed(letter: Letter, kind: ChannelKind, error: DeliveryError) -> None:
    logger.warning(
        "apology letter not delivered: %s",
        error,
        extra={"dossier_code": letter.dossier_code, "channel": str(kind)},
    )


# --- e-mail ----------------------------------------------------------------------------------


def email_subject(letter: Letter) -> str:
    if isinstance(letter, CitizenNotice):
        return notice_subject(letter)
    return f"Văn bản xin lỗi về việc giải quyết hồ sơ {letter.dossier_code}"


def attachment_name(letter: Letter) -> str:
    """`xin-loi-{code}.pdf`, with anything but letters, digits, dot, dash and underscore
    replaced so that the name is safe in a MIME header and on any file system."""
    if isinstance(letter, CitizenNotice):
        return notice_attachment_name(letter)
    return "xin-loi-" + re.sub(r"[^A-Za-z0-9._-]", "-", letter.dossier_code) + ".pdf"


def new_message_id(sender: str) -> str:
    domain = sender.rpartition("@")[2].strip(" >") or "onestop.local"
    return make_msgid(domain=domain)


def build_alert_email(
    *,
    recipients: list[str],
    subject: str,
    body: str,
    sender: str,
    sent_at: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id or new_message_id(sender)
    message.set_content(body, charset="utf-8")
    return message


def build_email(
    letter: Letter,
    *,
    html: str,
    pdf: bytes,
    recipient: Recipient,
    sender: str,
    sent_at: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """multipart/mixed: [multipart/alternative: text/plain, text/html], application/pdf."""
    message = EmailMessage()
    message["Subject"] = email_subject(letter)
    message["From"] = sender
    message["To"] = recipient.address
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id or new_message_id(sender)
    plain = f"Kính gửi: Ông/Bà {letter.addressee.full_name}\n\n{text_of(letter)}\n\n" + (
        f"{letter.title} được gửi kèm theo thư này (tệp PDF).\n"
        if isinstance(letter, CitizenNotice)
        else "Văn bản xin lỗi được gửi kèm theo thư này (tệp PDF).\n"
    )
    message.set_content(plain, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    message.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=attachment_name(letter)
    )
    return message


class SmtpChannel:
    """E-mail through an SMTP server: the HTML letter, a plain-text alternative, and the PDF;
    and the plain alerts to heads of units and operators (`send_alert`).

    `use_tls` connects with implicit TLS (port 465); otherwise `start_tls` None upgrades the
    connection if the server offers STARTTLS, True requires it, False never tries."""

    kinds = frozenset({ChannelKind.EMAIL})

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        use_tls: bool = False,
        *,
        start_tls: bool | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        clock: Clock = _now,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.tls_context = tls_context
        self._clock = clock

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self.host!r}, port={self.port})"

    async def send(
        self,
        letter: Letter,
        *,
        html: str,
        pdf: bytes,
        recipient: Recipient,
        message_id: str | None = None,
    ) -> DeliveryReceipt:
        """`message_id`: the letter's own, kept across retries so that a copy sent again after
        an unknown outcome is recognised as the same message."""
        _require(self, recipient)
        sent_at = self._clock()
        message = build_email(
            letter,
            html=html,
            pdf=pdf,
            recipient=recipient,
            sender=self.sender,
            sent_at=sent_at,
            message_id=message_id,
        )
        try:
            await self._transmit(message)
        except DeliveryError as error:
            failure = DeliveryError(
                f"SMTP delivery of the {_what(letter)} for dossier {letter.dossier_code} failed:"
                f" {error}",
                dossier_code=letter.dossier_code,
                channel=ChannelKind.EMAIL,
                permanent=error.permanent,
            )
            _log_failed(letter, ChannelKind.EMAIL, failure)
            raise failure from None
        receipt = DeliveryReceipt(
            channel=ChannelKind.EMAIL,
            message_id=str(message["Message-ID"]),
            sent_at=sent_at,
            dossier_code=letter.dossier_code,
        )
        _log_sent(receipt)
        return receipt

    async def send_alert(
        self,
        recipients: list[str],
        subject: str,
        body: str,
        *,
        dossier_code: str,
        message_id: str | None = None,
    ) -> str:
        """A plain-text alert; returns its Message-ID."""
        message = build_alert_email(
            recipients=recipients,
            subject=subject,
            body=body,
            sender=self.sender,
            sent_at=self._clock(),
            message_id=message_id,
        )
        try:
            await self._transmit(message)
        except DeliveryError as error:
            raise DeliveryError(
                f"SMTP delivery of an alert for dossier {dossier_code} failed: {error}",
                dossier_code=dossier_code,
                channel=ChannelKind.EMAIL,
                permanent=error.permanent,
            ) from None
        return str(message["Message-ID"])

    async def _transmit(self, message: EmailMessage) -> None:
        """One SMTP session. The connection is closed whatever happens, cancellation included:
        a session left open would keep the server (and its shutdown) waiting."""
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
            tls_context=self.tls_context,
        )
        try:
            await client.connect()
            await client.send_message(message)
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
        except aiosmtplib.SMTPException as error:
            # Refusals quote the addresses: keep only the class and the SMTP code, and do not
            # chain the original, which a logged traceback would print.
            detail = type(error).__name__
            if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
                detail += " " + ", ".join(str(refused.code) for refused in error.recipients)
            elif isinstance(error, aiosmtplib.SMTPResponseException):
                detail += f" {error.code}"
            raise DeliveryError(
                detail,
                dossier_code="",
                channel=ChannelKind.EMAIL,
                permanent=smtp_refusal_is_permanent(error),
            ) from None
        finally:
            client.close()


# --- SMS and Zalo through the messaging gateway ----------------------------------------------


def idempotency_key(letter: Letter, kind: ChannelKind) -> str:
    """The same letter to the same channel kind gives the same key, so that the gateway can
    drop a retried request; it is a hash and carries no personal data."""
    material = f"{letter.dossier_code}\n{letter.number}\n{kind}".encode()
    return hashlib.sha256(material).hexdigest()


class WebhookChannel:
    """SMS and Zalo through an HTTP gateway: POST {"channel", "to", "text", "dossier_code"} as
    JSON, with `Authorization: Bearer <token>` if a token is given and an `Idempotency-Key`.
    A 2xx answer is delivery; the gateway's `message_id` (or `id`) becomes the receipt's."""

    kinds = frozenset({ChannelKind.SMS, ChannelKind.ZALO})

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock = _now,
    ) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout
        self._client = client
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookChannel(url={self.url!r})"

    def payload(self, letter: Letter, recipient: Recipient) -> dict[str, str]:
        return {
            "channel": str(recipient.kind),
            "to": recipient.address,
            "text": text_of(letter),
            "dossier_code": letter.dossier_code,
        }

    async def send(
        self,
        letter: Letter,
        *,
        html: str,
        pdf: bytes,
        recipient: Recipient,
        message_id: str | None = None,
    ) -> DeliveryReceipt:
        """The `Idempotency-Key` is already stable per letter: `message_id` is not needed."""
        _require(self, recipient)
        key = idempotency_key(letter, recipient.kind)
        headers = {"Idempotency-Key": key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = await self._post(self.payload(letter, recipient), headers)
        except httpx.HTTPError as error:
            failure = DeliveryError(
                f"the messaging gateway could not be reached for dossier {letter.dossier_code}:"
                f" {type(error).__name__}",
                dossier_code=letter.dossier_code,
                channel=recipient.kind,
            )
            _log_failed(letter, recipient.kind, failure)
            raise failure from None
        if not response.is_success:
            # The body may echo the phone number: only the status goes into the error.
            rejected = WebhookRejected(
                f"the messaging gateway answered {response.status_code} "
                f"{response.reason_phrase} for dossier {letter.dossier_code}",
                dossier_code=letter.dossier_code,
                channel=recipient.kind,
                status_code=response.status_code,
            )
            _log_failed(letter, recipient.kind, rejected)
            raise rejected
        receipt = DeliveryReceipt(
            channel=recipient.kind,
            message_id=_gateway_message_id(response) or key,
            sent_at=self._clock(),
            dossier_code=letter.dossier_code,
        )
        _log_sent(receipt)
        return receipt

    async def _post(self, body: dict[str, str], headers: dict[str, str]) -> httpx.Response:
        if self._client is not None:
            return await self._client.post(
                self.url, json=body, headers=headers, timeout=self.timeout
            )
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await client.post(self.url, json=body, headers=headers)


def _gateway_message_id(response: httpx.Response) -> str | None:
    try:
        body: Any = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        for name in ("message_id", "id"):
            value = body.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None
