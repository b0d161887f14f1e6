"""The delivery adapters against real local servers: an SMTP server (aiosmtpd) and an HTTP
server standing in for the SMS/Zalo gateway, both on 127.0.0.1. No Kafka, no PostgreSQL."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notifier.channels import (
    Channel,
    ChannelKind,
    DeliveryError,
    Recipient,
    SmtpChannel,
    WebhookChannel,
    WebhookRejected,
)
from services.notifier.letters import letter_text, render_html, render_pdf
from tests.unit.test_letters import CODE, sample_letter

EMAIL = "nguyen.thi.ngoc.anh@example.vn"
PHONE = "0909123456"
NAME = "Nguyễn Thị Ngọc Ánh"
SENDER = "Bộ phận Một cửa <motcua@hcmc.example.vn>"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_no_personal_data(caplog: pytest.LogCaptureFixture, *extra: str) -> None:
    for record in caplog.records:
        if not record.name.startswith(("services.", "httpx", "aiosmtplib")):
            continue  # aiosmtpd logs the test server's side of the conversation
        dumped = f"{record.getMessage()} {record.__dict__}"
        for secret in (EMAIL, PHONE, NAME, "Lê Lợi", *extra):
            assert secret not in dumped, (secret, record.getMessage())


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    envelopes: list[Envelope] = field(default_factory=list)
    refuse_recipients: bool = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_recipients:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


async def test_smtp_sends_the_html_letter_with_the_pdf_attached(
    smtp_server: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    mailbox, port = smtp_server
    letter = sample_letter()
    html, pdf = render_html(letter), render_pdf(letter)
    channel = SmtpChannel("127.0.0.1", port, SENDER, timeout=10)
    caplog.set_level(logging.DEBUG)

    receipt = await channel.send(
        letter, html=html, pdf=pdf, recipient=Recipient(ChannelKind.EMAIL, EMAIL)
    )

    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "motcua@hcmc.example.vn"
    assert envelope.rcpt_tos == [EMAIL]
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == f"Văn bản xin lỗi về việc giải quyết hồ sơ {CODE}"
    assert message["To"] == EMAIL
    assert message["From"].addresses[0].display_name == "Bộ phận Một cửa"
    assert message["Message-ID"] == receipt.message_id
    assert message.get_content_type() == "multipart/mixed"

    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    assert html_part.get_content().replace("\r\n", "\n") == html  # SMTP lines end in CRLF
    plain_part = message.get_body(preferencelist=("plain",))
    assert plain_part is not None
    plain = plain_part.get_content()
    assert f"Kính gửi: Ông/Bà {NAME}" in plain and letter_text(letter) in plain
    assert "<" not in plain

    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"xin-loi-{CODE}.pdf"
    assert attachment.get_content() == pdf

    assert receipt.channel is ChannelKind.EMAIL and receipt.dossier_code == CODE
    assert any(getattr(r, "dossier_code", None) == CODE for r in caplog.records)
    assert_no_personal_data(caplog)


async def test_smtp_refusal_is_a_delivery_error_that_names_no_one(
    smtp_server: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    mailbox, port = smtp_server
    mailbox.refuse_recipients = True
    letter = sample_letter()
    channel = SmtpChannel("127.0.0.1", port, SENDER, timeout=10)

    with pytest.raises(DeliveryError) as raised:
        await channel.send(
            letter,
            html=render_html(letter),
            pdf=render_pdf(letter),
            recipient=Recipient(ChannelKind.EMAIL, EMAIL),
        )

    assert raised.value.dossier_code == CODE and raised.value.channel is ChannelKind.EMAIL
    assert CODE in str(raised.value) and "550" in str(raised.value)
    assert EMAIL not in str(raised.value) and raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert mailbox.envelopes == []
    assert_no_personal_data(caplog)


async def test_smtp_server_down_is_a_delivery_error() -> None:
    letter = sample_letter()
    channel = SmtpChannel("127.0.0.1", free_port(), SENDER, timeout=5)
    with pytest.raises(DeliveryError, match=CODE):
        await channel.send(
            letter, html="<p></p>", pdf=b"%PDF-", recipient=Recipient(ChannelKind.EMAIL, EMAIL)
        )


async def test_smtp_takes_only_email_recipients() -> None:
    channel = SmtpChannel("127.0.0.1", 25, SENDER)
    with pytest.raises(ValueError, match="sms"):
        await channel.send(
            sample_letter(), html="", pdf=b"", recipient=Recipient(ChannelKind.SMS, PHONE)
        )


# --- webhook (SMS, Zalo) ---------------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 202
    answer: bytes = b'{"message_id": "gw-0001"}'


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state = Gateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            self.wfile.write(state.answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/messages"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_webhook_posts_the_sms_text_as_json(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    letter = sample_letter()
    channel = WebhookChannel(gateway.url, token="s3cret")
    caplog.set_level(logging.DEBUG)

    receipt = await channel.send(
        letter, html="<p>x</p>", pdf=b"%PDF-", recipient=Recipient(ChannelKind.SMS, "0909 123 456")
    )

    [request] = gateway.requests
    assert request["path"] == "/messages"
    assert request["json"] == {
        "channel": "sms",
        "to": PHONE,
        "text": letter_text(letter),
        "dossier_code": CODE,
    }
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert len(request["headers"]["Idempotency-Key"]) == 64
    assert receipt.message_id == "gw-0001"
    assert receipt.channel is ChannelKind.SMS and receipt.dossier_code == CODE
    assert_no_personal_data(caplog, "s3cret")


async def test_webhook_sends_zalo_messages_and_retries_carry_the_same_key(
    gateway: Gateway,
) -> None:
    letter = sample_letter()
    channel = WebhookChannel(gateway.url)
    gateway.answer = b"accepted"
    recipient = Recipient(ChannelKind.ZALO, "+84 909 123 456")

    first = await channel.send(letter, html="", pdf=b"", recipient=recipient)
    second = await channel.send(letter, html="", pdf=b"", recipient=recipient)

    assert [r["json"]["channel"] for r in gateway.requests] == ["zalo", "zalo"]
    assert gateway.requests[0]["json"]["to"] == "+84909123456"
    assert "Authorization" not in gateway.requests[0]["headers"]
    keys = {r["headers"]["Idempotency-Key"] for r in gateway.requests}
    assert len(keys) == 1
    assert first.message_id == second.message_id == keys.pop()  # no id in the answer


async def test_webhook_non_2xx_raises_without_personal_data(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway.status = 502
    gateway.answer = json.dumps({"error": f"cannot reach {PHONE}"}).encode()
    letter = sample_letter()

    with pytest.raises(WebhookRejected) as raised:
        await WebhookChannel(gateway.url).send(
            letter, html="", pdf=b"", recipient=Recipient(ChannelKind.SMS, PHONE)
        )

    assert raised.value.status_code == 502
    assert raised.value.dossier_code == CODE and raised.value.channel is ChannelKind.SMS
    assert "502" in str(raised.value) and CODE in str(raised.value)
    assert PHONE not in str(raised.value)
    assert len(gateway.requests) == 1
    assert_no_personal_data(caplog)


async def test_webhook_unreachable_is_a_delivery_error() -> None:
    channel = WebhookChannel(f"http://127.0.0.1:{free_port()}/messages", timeout=5)
    with pytest.raises(DeliveryError, match=CODE):
        await channel.send(
            sample_letter(), html="", pdf=b"", recipient=Recipient(ChannelKind.SMS, PHONE)
        )


async def test_webhook_takes_only_phone_recipients(gateway: Gateway) -> None:
    with pytest.raises(ValueError, match="email"):
        await WebhookChannel(gateway.url).send(
            sample_letter(), html="", pdf=b"", recipient=Recipient(ChannelKind.EMAIL, EMAIL)
        )
    assert gateway.requests == []


# --- recipients and the in-memory channel ----------------------------------------------------


def test_recipient_validates_and_hides_its_address() -> None:
    assert Recipient(ChannelKind.EMAIL, EMAIL).address == EMAIL
    assert Recipient("sms", "(090) 912-34.56").address == PHONE  # type: ignore[arg-type]
    assert EMAIL not in repr(Recipient(ChannelKind.EMAIL, EMAIL))
    with pytest.raises(ValueError) as bad_email:
        Recipient(ChannelKind.EMAIL, "not-an-address")
    assert "not-an-address" not in str(bad_email.value)
    with pytest.raises(ValueError) as bad_phone:
        Recipient(ChannelKind.ZALO, "09-abc")
    assert "abc" not in str(bad_phone.value)


def test_every_adapter_is_a_channel() -> None:
    for adapter in (SmtpChannel("127.0.0.1", 25, SENDER), WebhookChannel("http://127.0.0.1/")):
        assert isinstance(adapter, Channel)
