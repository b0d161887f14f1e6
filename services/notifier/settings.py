"""The notifier service's settings: what `ServiceSettings` has, and its own (environment
variables; a missing or malformed value stops the service at start)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.auth import OidcSettings
from shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings, OidcSettings):
    oidc_audience: str = "onestop-notifier"
    link_signing_key: SecretStr = Field(
        min_length=32, description="signs the citizens' links to their apology letters"
    )
    letter_link_lifetime_days: float = Field(default=30, gt=0, le=366)
    public_base_url: str = Field(
        default="http://127.0.0.1:8003",
        pattern=r"^https?://",
        description="where citizens reach this service: the start of letter links",
    )
    smtp_host: str | None = Field(default=None, description="e-mail is off when unset")
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_sender: str = "mot-cua@tphcm.gov.vn"
    sms_webhook_url: str | None = Field(default=None, description="SMS/Zalo gateway")
    operator_emails: list[str] = Field(default_factory=list)
    apology_extension_working_days: float = Field(
        default=5,
        gt=0,
        description="the new return date the city sets when it issues an apology on a unit's"
        " behalf, after the due date (a configurable default)",
    )
    apology_new_date_limit_working_days: float = Field(
        default=10,
        gt=0,
        description="the latest new return date a unit may choose in its apology, in working"
        " days after the due date (a configurable default: the decree sets no bound)",
    )
    signing_directory: Path = Field(
        description="the signing certificates and keys: ca.pem and signers/<unit code or"
        " city>/{cert,key}.pem (deploy/local/signing.py makes a local test CA's)"
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
    render_batch_size: int = Field(
        default=20,
        gt=0,
        description="apology PDFs one rendering round claims and signs in one transaction",
    )
    render_poll_interval_seconds: float = Field(
        default=0.5, gt=0, description="how often the renderer looks for letters to render"
    )
    render_processes: int = Field(
        default=1,
        ge=0,
        description="processes laying out PDFs beside the service's event loop (0: in it)",
    )
    render_process_idle_seconds: float = Field(
        default=300.0,
        ge=0,
        description="the layout processes stop after this long without a letter to lay out"
        " (their memory back), and start again with the next",
    )
    render_backoff_initial_seconds: float = Field(
        default=5.0, gt=0, description="wait after a letter's failed render; doubles"
    )
    render_backoff_max_seconds: float = Field(default=600.0, gt=0)
