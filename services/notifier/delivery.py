"""Sends what the notifier has issued: apology letters through the applicant's channel, and
alerts to heads of units and operators by e-mail, through one SMTP client.

Each letter and alert is sent on its own: claimed in a short transaction (SKIP LOCKED, a lease,
the attempt recorded and a Message-ID set once), sent outside any transaction, its outcome
recorded in another. A failure moves only that item's `next_attempt_at` (exponential backoff
with jitter, capped), so an item that keeps failing never delays the others. A permanent
refusal or too many attempts dead-letters it and raises an operator alert.

An attempt recorded but never concluded (the process stopped mid-send, perhaps after the server
accepted the message) is sent again when its lease ends, with the same Message-ID (SMS/Zalo:
the same Idempotency-Key): the legal duty argues against losing a letter, and receiving
systems drop a copy with a Message-ID they already have.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from opentelemetry.metrics import Counter

from services.notifier.channels import (
    Channel,
    ChannelKind,
    DeliveryError,
    Recipient,
    SmtpChannel,
    new_message_id,
)
from services.notifier.letters import ApologyLetter
from services.notifier.notices import CitizenNotice
from services.notifier.repository import NotifierUnitOfWork, PendingAlert, PendingLetter
from shared.events import AlertKind, AlertRaised
from shared.messaging.loops import stop_if_cancelled

logger = logging.getLogger(__name__)
ROUND = 50  # items per round, then the loop checks in (cancellation, the next due time)
ALERT_SUBJECTS = {
    "due_soon": "Cảnh báo: hồ sơ {code} sắp đến hạn trả kết quả",
    "overdue": "Cảnh báo: hồ sơ {code} đã quá hạn giải quyết",
    "step_overdue": "Cảnh báo: hồ sơ {code} bị giữ quá thời gian của bước xử lý",
    "letter_undeliverable": "Cảnh báo: văn bản xin lỗi về hồ sơ {code} không gửi được",
    "supplement_missed": "Cảnh báo: hồ sơ {code} quá hạn bổ sung mà người dân chưa bổ sung",
    "refusal_proposed": "Đề nghị từ chối: hồ sơ {code} quá hạn bổ sung mà người dân chưa bổ sung",
}
ALERT_ACTIONS = {
    "letter_undeliverable": (
        "Đề nghị liên hệ người dân và trao văn bản xin lỗi tại Bộ phận Một cửa."
    ),
    "supplement_missed": (
        "Đề nghị đơn vị liên hệ người dân; đơn vị có thể từ chối giải quyết hồ sơ (Mẫu 03)."
    ),
    "refusal_proposed": (
        "Đề nghị đơn vị đang giữ hồ sơ xem xét từ chối giải quyết hồ sơ (Mẫu 03)."
    ),
}
DEFAULT_ACTION = (
    "Đề nghị Thủ trưởng đơn vị chỉ đạo xử lý và thực hiện xin lỗi người dân nếu trễ hạn."
)


# --- rules (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    initial: timedelta = timedelta(seconds=30)
    maximum: timedelta = timedelta(hours=1)
    max_attempts: int = 12
    lease: timedelta = timedelta(minutes=5)  # longer than any one send (SMTP timeout)


class Verdict(StrEnum):
    RETRY = "retry"
    DEAD = "dead"


class Undeliverable(Exception):
    """The letter cannot go out through its channel as it stands. The message names no one."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def backoff_delay(
    attempts: int, policy: RetryPolicy, jitter: Callable[[], float] = random.random
) -> timedelta:
    """After the `attempts`-th failure: initial * 2^(attempts-1), capped, then "equal jitter"
    (between half and all of it), so that delays still grow while instances spread out."""
    doublings: int = 2 ** min(max(attempts - 1, 0), 32)
    ceiling = min(policy.maximum, policy.initial * doublings)
    return ceiling * (0.5 + jitter() / 2)


def is_permanent(error: BaseException) -> bool:
    return bool(getattr(error, "permanent", False))


def verdict(error: BaseException, attempts: int, policy: RetryPolicy) -> Verdict:
    if is_permanent(error) or attempts >= policy.max_attempts:
        return Verdict.DEAD
    return Verdict.RETRY


def describe(error: BaseException) -> str:
    """What is stored and logged: our own errors' messages name no one; others' may quote
    data, so only their class."""
    if isinstance(error, DeliveryError | Undeliverable):
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


def round_pause(next_due: datetime | None, now: datetime, poll_interval: float) -> float:
    """Seconds to sleep: until the earliest item is due, at most the poll interval (new items
    come from the handlers' transactions, which do not wake the deliverer)."""
    if next_due is None:
        return poll_interval
    return min(poll_interval, max(0.0, (next_due - now).total_seconds()))


def failure_pause(failures: int, poll_interval: float, maximum: float) -> float:
    """After `failures` delivery rounds in a row failed (the database is down): back off."""
    doublings: int = 2 ** min(failures, 32)
    ceiling = min(maximum, poll_interval * doublings)
    return ceiling * (0.5 + random.random() / 2)


# --- the loop --------------------------------------------------------------------------------


class Deliverer:
    def __init__(
        self,
        unit_of_work: Callable[[], NotifierUnitOfWork],
        clock: Callable[[], datetime],
        *,
        email: SmtpChannel | None,
        sms: Channel | None = None,
        operators: Sequence[str] = (),
        policy: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
        dead_lettered: Counter | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._email = email
        self._sms = sms
        self._operators = list(operators)
        self._policy = policy or RetryPolicy()
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._dead_lettered = dead_lettered
        self._jitter = jitter
        self._sender = email.sender if email is not None else "mot-cua@onestop.local"

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self.deliver_due()
                async with self._unit_of_work() as uow:
                    now = self._clock()
                    pause = round_pause(
                        await uow.notices.next_delivery_at(now), now, self._poll_interval
                    )
                failures = 0
            except Exception as error:
                stop_if_cancelled()
                failures += 1
                pause = failure_pause(failures, self._poll_interval, self._max_backoff)
                logger.warning(
                    "delivery round failed",
                    extra={"error": type(error).__name__, "retry_in_s": round(pause, 2)},
                )
            await asyncio.sleep(pause)

    async def deliver_due(self) -> int:
        """Sends what is due now, letters and alerts in turn, each on its own. Returns how
        many items were handled (sent or not)."""
        handled = 0
        while handled < ROUND:
            progressed = False
            letter = await self._claim_letter()
            if letter is not None:
                await self._deliver_letter(letter)
                handled, progressed = handled + 1, True
            alert = await self._claim_alert()
            if alert is not None:
                await self._deliver_alert(alert)
                handled, progressed = handled + 1, True
            if not progressed:
                break
        return handled

    def _retry_at(self, error: Exception, attempts: int, now: datetime) -> datetime | None:
        """None: dead-lettered."""
        if verdict(error, attempts, self._policy) is Verdict.DEAD:
            return None
        return now + backoff_delay(attempts, self._policy, self._jitter)

    # --- letters ---

    async def _claim_letter(self) -> PendingLetter | None:
        async with self._unit_of_work() as uow:
            letter = await uow.notices.claim_due_letter(
                self._clock(), self._policy.lease, new_message_id(self._sender)
            )
            await uow.commit()
        if letter is not None and letter.resumed:
            logger.warning(
                "apology letter attempt with no known outcome: sent again, same Message-ID",
                extra={"dossier_code": letter.dossier_code, "channel": letter.channel},
            )
        return letter

    async def _deliver_letter(self, letter: PendingLetter) -> None:
        try:
            await self._send_letter(letter)
        except Exception as error:
            stop_if_cancelled()  # not a failure of the letter: it is sent again after a restart
            await self._letter_failed(letter, error)
            return
        async with self._unit_of_work() as uow:
            await uow.notices.letter_delivered(letter, self._clock())
            await uow.commit()

    async def _send_letter(self, pending: PendingLetter) -> None:
        if pending.channel == "counter":
            return  # printed and handed over at the one-stop desk
        channel: Channel | None
        if pending.channel == "email":
            channel, kind, address = self._email, ChannelKind.EMAIL, pending.email
        elif pending.channel == "sms":
            channel, kind, address = self._sms, ChannelKind.SMS, pending.phone
        else:
            raise Undeliverable(f"unknown channel {pending.channel}", permanent=True)
        if channel is None:  # switched off since the letter was issued: may come back
            raise Undeliverable(f"the {kind} channel is not configured", permanent=False)
        if not address:
            raise Undeliverable(f"no {kind} address for the applicant", permanent=True)
        try:
            recipient = Recipient(kind, address)
        except ValueError:
            raise Undeliverable(f"invalid {kind} address", permanent=True) from None
        letter: ApologyLetter | CitizenNotice = (
            ApologyLetter.model_validate(pending.letter)
            if pending.kind == "apology"
            else CitizenNotice.model_validate(pending.letter)
        )
        await channel.send(
            letter,
            html=pending.html,
            pdf=pending.pdf,
            recipient=recipient,
            message_id=pending.message_id,
        )

    async def _letter_failed(self, letter: PendingLetter, error: Exception) -> None:
        now = self._clock()
        retry_at = self._retry_at(error, letter.attempts, now)
        dead = retry_at is None
        async with self._unit_of_work() as uow:
            if not await uow.notices.letter_failed(letter, describe(error), retry_at, now):
                return  # the lease ran out and another instance has the letter now
            if dead:
                await self._raise_undeliverable(uow, letter, now)
            await uow.commit()
        extra = {
            "dossier_code": letter.dossier_code,
            "channel": letter.channel,
            "attempts": letter.attempts,
            "error": describe(error),
        }
        if dead:
            logger.error("apology letter dead-lettered: operators alerted", extra=extra)
            if self._dead_lettered is not None:
                self._dead_lettered.add(1, {"onestop.channel": letter.channel})
        else:
            logger.warning("apology letter not delivered; will retry", extra=extra)

    async def _raise_undeliverable(
        self, uow: NotifierUnitOfWork, letter: PendingLetter, now: datetime
    ) -> None:
        raised = await uow.notices.add_alert(
            dossier_code=letter.dossier_code,
            kind=AlertKind.LETTER_UNDELIVERABLE.value,
            step_sequence=0,
            unit_code=letter.unit_code,
            recipients=self._operators,
            raised_at=now,
        )
        if raised:
            uow.emit(
                AlertRaised(
                    dossier_code=letter.dossier_code,
                    kind=AlertKind.LETTER_UNDELIVERABLE,
                    unit_code=letter.unit_code,
                    head_title="",
                    recipients=tuple(self._operators),
                    raised_at=now,
                ),
                occurred_at=now,
            )

    # --- alerts ---

    async def _claim_alert(self) -> PendingAlert | None:
        async with self._unit_of_work() as uow:
            alert = await uow.notices.claim_due_alert(
                self._clock(), self._policy.lease, new_message_id(self._sender)
            )
            await uow.commit()
        return alert

    async def _deliver_alert(self, alert: PendingAlert) -> None:
        try:
            await self._send_alert(alert)
        except Exception as error:
            stop_if_cancelled()
            await self._alert_failed(alert, error)
            return
        async with self._unit_of_work() as uow:
            await uow.notices.alert_delivered(alert, self._clock())
            await uow.commit()

    async def _send_alert(self, alert: PendingAlert) -> None:
        if self._email is None or not alert.recipients:
            return  # no SMTP configured: the alert is on the event stream and the board only
        subject = ALERT_SUBJECTS.get(alert.kind, "Cảnh báo: hồ sơ {code}")
        body = (
            f"Hồ sơ {alert.dossier_code} — đơn vị {alert.unit_code}.\n"
            f"Loại cảnh báo: {alert.kind}; thời điểm: {alert.raised_at.isoformat()}.\n"
            + ALERT_ACTIONS.get(alert.kind, DEFAULT_ACTION)
        )
        await self._email.send_alert(
            alert.recipients,
            subject.format(code=alert.dossier_code),
            body,
            dossier_code=alert.dossier_code,
            message_id=alert.message_id,
        )

    async def _alert_failed(self, alert: PendingAlert, error: Exception) -> None:
        now = self._clock()
        retry_at = self._retry_at(error, alert.attempts, now)
        dead = retry_at is None
        async with self._unit_of_work() as uow:
            recorded = await uow.notices.alert_failed(alert, describe(error), retry_at, now)
            await uow.commit()
        if recorded:
            # No alert about an alert: it would fail the same way. The log and the row say it.
            logger.log(
                logging.ERROR if dead else logging.WARNING,
                "alert dead-lettered" if dead else "alert not delivered; will retry",
                extra={
                    "dossier_code": alert.dossier_code,
                    "alert_kind": alert.kind,
                    "attempts": alert.attempts,
                    "error": describe(error),
                },
            )
