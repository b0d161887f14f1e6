"""Settings read from the environment; a missing or malformed value stops the service at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PostgresDsn
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.calendar import UnitCalendars, load_overrides
from shared.catalog import Catalog
from shared.retention import RetentionSettings

DEFAULT_CATALOG = Path(__file__).parent / "data" / "catalog.toml"
DEFAULT_CALENDAR_OVERRIDES = Path(__file__).parent / "data" / "calendar_overrides.toml"


class ServiceSettings(RetentionSettings, BaseSettings):
    """What every service needs (retention: shared/retention.py). Subclasses add their own
    fields."""

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


def unit_calendars(settings: ServiceSettings, catalog: Catalog) -> UnitCalendars:
    """Each unit's legal calendar, with the agency's overrides (a broken table stops the
    service)."""
    return UnitCalendars(catalog, load_overrides(settings.calendar_overrides_path))
