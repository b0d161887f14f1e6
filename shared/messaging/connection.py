"""How every Kafka client of the project reaches the broker: address, security protocol, SASL
mechanism, principal and CA. One value, turned into FastStream's security object for the
broker and into keyword arguments for aiokafka's producers, consumers and admin clients, so
that no client connects differently from the others."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from ssl import SSLContext
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.kafka.security import parse_security
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"
    SSL = "SSL"


class SaslMechanism(StrEnum):
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    PLAIN = "PLAIN"


_SASL = {SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL}
_TLS = {SecurityProtocol.SASL_SSL, SecurityProtocol.SSL}
_SECURITY_CLASSES = {
    SaslMechanism.SCRAM_SHA_256: SASLScram256,
    SaslMechanism.SCRAM_SHA_512: SASLScram512,
    SaslMechanism.PLAIN: SASLPlaintext,
}


class KafkaConnection(BaseModel):
    """A client's way to the broker. SASL needs a username and a password; TLS checks the
    broker's certificate against `ca_file`, or the system's CAs when none is given."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(min_length=1, description="host:port[,host:port]")
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> KafkaConnection:
        if self.security_protocol in _SASL:
            missing = [
                name
                for name, value in (
                    ("KAFKA_USERNAME", self.username),
                    ("KAFKA_PASSWORD", self.password),
                )
                if not value or (isinstance(value, SecretStr) and not value.get_secret_value())
            ]
            if missing:
                raise ValueError(
                    f"security protocol {self.security_protocol} needs a principal:"
                    f" set {' and '.join(missing)}"
                )
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"KAFKA_CA_FILE {self.ca_file} is not a readable file")
        return self

    def security(self) -> BaseSecurity | None:
        """FastStream's security object (None for PLAINTEXT)."""
        ssl_context = self._ssl_context()
        if self.security_protocol in _SASL:
            assert self.username is not None and self.password is not None  # validated
            return _SECURITY_CLASSES[self.sasl_mechanism](
                self.username,
                self.password.get_secret_value(),
                ssl_context=ssl_context,
                use_ssl=ssl_context is not None,
            )
        if ssl_context is not None:
            return BaseSecurity(ssl_context=ssl_context)
        return None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient:
        the same translation FastStream makes for its own clients."""
        return {"bootstrap_servers": self.bootstrap_servers, **parse_security(self.security())}

    def as_principal(self, username: str, password: str) -> KafkaConnection:
        """The same broker, reached as another principal."""
        return self.model_copy(update={"username": username, "password": SecretStr(password)})

    def _ssl_context(self) -> SSLContext | None:
        if self.security_protocol not in _TLS:
            return None
        context: SSLContext = create_ssl_context(cafile=str(self.ca_file) if self.ca_file else None)
        return context
