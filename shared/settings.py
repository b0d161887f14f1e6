"""Settings read from the environment; a missing or malformed value stops the service at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PostgresDsn, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.calendar import UnitCalendars, load_overrides
from shared.catalog import Catalog
from shared.messaging.connection import KafkaConnection, SaslMechanism, SecurityProtocol
from shared.retention import RetentionSettings

DEFAULT_CATALOG = Path(__file__).parent / "data" / "catalog.toml"
DEFAULT_CALENDAR_OVERRIDES = Path(__file__).parent / "data" / "calendar_overrides.toml"


class ServiceSettings(RetentionSettings, BaseSettings):
    """What every service needs (retention: shared/retention.py). Subclasses add their own
    fields."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(min_length=1, description="host:port[,host:port]")
    kafka_security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    kafka_sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    kafka_username: str | None = Field(default=None, description="the service's principal")
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = Field(
        default=None, description="CA of the broker's certificate (SSL, SASL_SSL)"
    )
    database_url: PostgresDsn
    http_host: str = "127.0.0.1"
    http_port: int = Field(gt=0, lt=65536)
    http_reuse_port: bool = Field(
        default=False,
        description="bind with SO_REUSEPORT: several instances share one port, the kernel"
        " spreads the connections (the local multi-node mode's intake)",
    )
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
    consumer_batch_max_records: int = Field(
        default=100, gt=0, description="records a consumer applies in one transaction at most"
    )
    consumer_batch_timeout_ms: int = Field(
        default=25,
        gt=0,
        description="how long a consumer waits for records before handling what it has",
    )

    @model_validator(mode="after")
    def _kafka_connection_is_complete(self) -> ServiceSettings:
        try:
            self.kafka_connection()
        except ValidationError as error:  # raised again naming the settings, not the model
            messages = (str(e.get("ctx", {}).get("error", e["msg"])) for e in error.errors())
            raise ValueError("; ".join(messages)) from None
        return self

    def kafka_connection(self) -> KafkaConnection:
        """How this service's clients reach the broker, as its own principal."""
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password,
            ca_file=self.kafka_ca_file,
        )


def unit_calendars(settings: ServiceSettings, catalog: Catalog) -> UnitCalendars:
    """Each unit's legal calendar, with the agency's overrides (a broken table stops the
    service)."""
    return UnitCalendars(catalog, load_overrides(settings.calendar_overrides_path))
