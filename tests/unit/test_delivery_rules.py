"""The deliverer's rules as pure functions: backoff, what is permanent, when to stop, pauses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiosmtplib
import pytest

from services.notifier.channels import (
    ChannelKind,
    DeliveryError,
    WebhookRejected,
    smtp_refusal_is_permanent,
    webhook_status_is_permanent,
)
from services.notifier.delivery import (
    RetryPolicy,
    Undeliverable,
    Verdict,
    backoff_delay,
    describe,
    failure_pause,
    round_pause,
    verdict,
)

POLICY = RetryPolicy(initial=timedelta(seconds=30), maximum=timedelta(hours=1), max_attempts=5)
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    delays = [backoff_delay(n, POLICY, jitter=lambda: 1.0) for n in range(1, 10)]
    assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delays[-1] == timedelta(hours=1) and max(delays) == timedelta(hours=1)


@pytest.mark.parametrize("attempts", range(1, 12))
def test_jitter_keeps_the_delay_between_half_and_all_and_never_below_the_previous(
    attempts: int,
) -> None:
    low = backoff_delay(attempts, POLICY, jitter=lambda: 0.0)
    high = backoff_delay(attempts, POLICY, jitter=lambda: 1.0)
    assert low * 2 == high
    assert backoff_delay(attempts + 1, POLICY, jitter=lambda: 0.0) >= min(high, POLICY.maximum / 2)


def test_a_huge_attempt_count_does_not_overflow() -> None:
    assert backoff_delay(10_000, POLICY, jitter=lambda: 1.0) == POLICY.maximum


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "x", "a")]), True),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(451, "x", "a")]), False),
        (aiosmtplib.SMTPRecipientRefused(553, "x", "a"), True),
        (aiosmtplib.SMTPDataError(554, "rejected"), True),
        (aiosmtplib.SMTPDataError(452, "full"), False),
        (aiosmtplib.SMTPSenderRefused(550, "x", "us"), False),  # our configuration
        (aiosmtplib.SMTPConnectError("down"), False),
        (aiosmtplib.SMTPServerDisconnected("gone"), False),
        (aiosmtplib.SMTPTimeoutError("slow"), False),
    ],
)
def test_smtp_5xx_on_rcpt_or_data_is_permanent(error: Exception, permanent: bool) -> None:
    assert smtp_refusal_is_permanent(error) is permanent


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (403, True),
        (404, True),
        (422, True),
        (408, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
def test_webhook_4xx_is_permanent_except_timeout_and_rate_limit(
    status: int, permanent: bool
) -> None:
    assert webhook_status_is_permanent(status) is permanent
    rejected = WebhookRejected("x", dossier_code="C", channel=ChannelKind.SMS, status_code=status)
    assert rejected.permanent is permanent


def test_verdict_dead_letters_permanent_failures_and_those_past_the_cap() -> None:
    transient = DeliveryError("451", dossier_code="C", channel=ChannelKind.EMAIL)
    refused = DeliveryError("550", dossier_code="C", channel=ChannelKind.EMAIL, permanent=True)
    assert verdict(transient, 1, POLICY) is Verdict.RETRY
    assert verdict(transient, 4, POLICY) is Verdict.RETRY
    assert verdict(transient, 5, POLICY) is Verdict.DEAD
    assert verdict(refused, 1, POLICY) is Verdict.DEAD
    assert verdict(Undeliverable("invalid email address", permanent=True), 1, POLICY) is (
        Verdict.DEAD
    )
    assert verdict(OSError("reset"), 1, POLICY) is Verdict.RETRY  # unknown: retried, capped


def test_describe_keeps_only_the_class_of_foreign_errors() -> None:
    assert describe(ValueError("nguyen.van.an@example.vn is bad")) == "ValueError"
    ours = DeliveryError("SMTPRecipientsRefused 550", dossier_code="C", channel=ChannelKind.EMAIL)
    assert describe(ours) == "DeliveryError: SMTPRecipientsRefused 550"


def test_the_loop_sleeps_until_the_next_item_is_due_at_most_the_poll_interval() -> None:
    assert round_pause(None, NOW, 1.0) == 1.0
    assert round_pause(NOW, NOW, 1.0) == 0.0
    assert round_pause(NOW - timedelta(hours=1), NOW, 1.0) == 0.0
    assert round_pause(NOW + timedelta(milliseconds=250), NOW, 1.0) == 0.25
    assert round_pause(NOW + timedelta(minutes=5), NOW, 1.0) == 1.0


def test_failed_rounds_back_off_up_to_the_maximum() -> None:
    pauses = [failure_pause(n, 1.0, 30.0) for n in range(1, 40)]
    assert all(0.5 <= p <= 30.0 for p in pauses)
    assert failure_pause(1, 1.0, 30.0) <= 2.0 and failure_pause(10, 1.0, 30.0) >= 15.0
