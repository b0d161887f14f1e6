"""Settings read from the environment; a missing or malformed value stops the service at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PostgresDsn
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.calendar import UnitCalendars, load_overrides
from shared.catalog import Catalog

DEFAULT_CATALOG = Path(__file__).parent / "data" / "catalog.toml"
DEFAULT_CALENDAR_OVERRIDES = Path(__file__).parent / "data" / "calendar_overrides.toml"


class ServiceSettings(BaseSettings):
    """What every service needs. Subclasses add their own fields."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(min_length=1, description="host:port[,host:port]")
    database_url: PostgresDsn
    http_host: str = "127.0.0.1"
    http_port: int = Field(gt=0, lt=65536)
    catalog_path: Path = DEFAULT_CATALOG
    calendar_overrides_path: Path = Field(
        default=DEFAULT_CALENDAR_OVERRIDES,
        description="the agency's table of extra days off and make-up working days",
    )
    timezone: str = "Asia/Ho_Chi_Minh"
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=200, gt=0)
    retry_max_backoff_seconds: float = Field(default=30.0, gt=0)
    database_pool_size: int = Field(default=10, gt=0)
    kafka_partitions: int = Field(default=3, gt=0, description="for topics the service creates")
    kafka_namespace: str = Field(
        default="",
        pattern=r"^([a-z0-9-]+\.)?$",
        description="prefix of every topic and consumer group, e.g. 'demo.': a separate system"
        " on the same broker",
    )
    kafka_replication_factor: int = Field(default=1, gt=0)
    parking_max_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="how long a message may wait for a prerequisite from another topic",
    )
    parking_retry_interval_seconds: float = Field(default=1.0, gt=0)


class IntakeSettings(ServiceSettings):
    max_request_bytes: int = Field(default=256 * 1024, gt=0)
    workload_refresh_seconds: float = Field(default=15.0, gt=0)
    supplement_deadline_working_days: float = Field(
        default=10, gt=0, description="time the citizen has to supplement (unverified default)"
    )


class RoutingSettings(ServiceSettings):
    pass


class DeadlineSettings(ServiceSettings):
    due_soon_lead_working_hours: float = Field(default=8.0, ge=0)
    lateness_scan_interval_seconds: float = Field(default=1.0, gt=0)


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


def unit_calendars(settings: ServiceSettings, catalog: Catalog) -> UnitCalendars:
    """Each unit's legal calendar, with the agency's overrides (a broken table stops the
    service)."""
    return UnitCalendars(catalog, load_overrides(settings.calendar_overrides_path))
