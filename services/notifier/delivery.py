"""Sends what the notifier has issued: apology letters through the applicant's channel, and
alerts to heads of units and operators by e-mail. Rows are claimed with SKIP LOCKED and
retried with backoff, so an SMTP or gateway outage delays a letter but never loses it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib

from services.notifier.channels import DeliveryError
from services.notifier.repository import NotifierUnitOfWork, PendingAlert, PendingLetter
from shared.messaging.retry import is_transient

logger = logging.getLogger(__name__)
BATCH = 20
ALERT_SUBJECTS = {
    "due_soon": "Cảnh báo: hồ sơ {code} sắp đến hạn trả kết quả",
    "overdue": "Cảnh báo: hồ sơ {code} đã quá hạn giải quyết",
    "step_overdue": "Cảnh báo: hồ sơ {code} bị giữ quá thời gian của bước xử lý",
}


class Mailer:
    """Plain e-mail over SMTP for alerts (letters go through SmtpChannel, with the PDF)."""

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    async def send(self, to: list[str], subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, ", ".join(to), subject
        message.set_content(body)
        await aiosmtplib.send(message, hostname=self.host, port=self.port, timeout=30)


class Deliverer:
    def __init__(
        self,
        unit_of_work: Callable[[], NotifierUnitOfWork],
        clock: Callable[[], datetime],
        send_letter: Callable[[PendingLetter], object],
        mailer: Mailer | None,
        interval: float = 1.0,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._send_letter = send_letter
        self._mailer = mailer
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_pending()
            except Exception as error:
                logger.warning("delivery round failed", extra={"error": type(error).__name__})
            await asyncio.sleep(self._interval)

    async def deliver_pending(self) -> int:
        sent = 0
        async with self._unit_of_work() as uow:
            for letter in await uow.notices.claim_undelivered_letters(BATCH):
                error = await self._attempt(self._send_letter, letter)
                await uow.notices.mark_letter(
                    letter.dossier_code, None if error else self._clock(), error
                )
                sent += error is None
            for alert in await uow.notices.claim_undelivered_alerts(BATCH):
                error = await self._attempt(self._send_alert, alert)
                await uow.notices.mark_alert(alert, None if error else self._clock())
                sent += error is None
            await uow.commit()
        return sent

    async def _attempt(self, send: Callable[..., object], item: object) -> str | None:
        try:
            result = send(item)
            if asyncio.iscoroutine(result):
                await result
            return None
        except (DeliveryError, aiosmtplib.SMTPException) as error:
            logger.warning(
                "delivery failed; will retry",
                extra={
                    "dossier_code": getattr(item, "dossier_code", None),
                    "error": type(error).__name__,
                },
            )
            return type(error).__name__
        except Exception as error:
            if not is_transient(error):
                raise
            return type(error).__name__

    async def _send_alert(self, alert: PendingAlert) -> None:
        if self._mailer is None or not alert.recipients:
            return  # no SMTP configured: the alert is on the event stream and the board only
        subject = ALERT_SUBJECTS[alert.kind].format(code=alert.dossier_code)
        body = (
            f"Hồ sơ {alert.dossier_code} — đơn vị {alert.unit_code}.\n"
            f"Loại cảnh báo: {alert.kind}; thời điểm: {alert.raised_at.isoformat()}.\n"
            "Đề nghị Thủ trưởng đơn vị chỉ đạo xử lý và thực hiện xin lỗi người dân nếu trễ hạn."
        )
        await self._mailer.send(alert.recipients, subject, body)
