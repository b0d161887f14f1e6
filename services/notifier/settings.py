"""The notifier service's settings: what `ServiceSettings` has, and its own (environment
variables; a missing or malformed value stops the service at start)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    smtp_host: str | None = Field(default=None, description="e-mail is off when unset")
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_sender: str = "mot-cua@tphcm.gov.vn"
    sms_webhook_url: str | None = Field(default=None, description="SMS/Zalo gateway")
    operator_emails: list[str] = Field(default_factory=list)
    apology_extension_working_days: float = Field(
        default=5, gt=0, description="how much later the new return date is (unverified default)"
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    delivery_poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often the deliverer looks for new letters and alerts"
    )
    delivery_backoff_initial_seconds: float = Field(
        default=30.0, gt=0, description="wait after a letter's first failed send; doubles"
    )
    delivery_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    delivery_max_attempts: int = Field(
        default=12, gt=0, description="then the letter is dead-lettered and operators alerted"
    )
    delivery_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="a claimed letter is left alone this long; then its attempt counts as"
        " unknown and it is sent again with the same Message-ID",
    )
