"""The local broker's principals (deploy/local/kafka.sh creates them, with the passwords of
.run/secrets.env) and the access rules of a namespace on it.

    python -m deploy.local.kafka_access grant "" test. bench. demo.   # kafka.sh, at each start

In code: `connection("admin")` for provisioning and the tests' own clients,
`service_settings(name)` for a service run as its own principal, `await grant(namespace)`
for a namespace of one's own (the test suite's throwaway ones, say)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from pydantic import SecretStr

from deploy.local import local_secrets
from shared.messaging import access
from shared.messaging.connection import KafkaConnection, SaslMechanism, SecurityProtocol

KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
# The three-broker cluster of deploy/local/kafka-cluster.sh (node N on KAFKA_CLUSTER_PORT + N - 1)
# and what the services' topics get there (KAFKA_CLUSTER_PARTITIONS: 12 by default).
CLUSTER_PORT = int(os.environ.get("KAFKA_CLUSTER_PORT", "29092"))
CLUSTER_NODES = int(os.environ.get("KAFKA_CLUSTER_NODES", "3"))
CLUSTER_BOOTSTRAP = ",".join(f"127.0.0.1:{CLUSTER_PORT + n}" for n in range(CLUSTER_NODES))
CLUSTER_PARTITIONS = int(os.environ.get("KAFKA_CLUSTER_PARTITIONS", "12"))
CLUSTER_REPLICATION_FACTOR = 3
SECURITY_PROTOCOL = SecurityProtocol.SASL_PLAINTEXT
SASL_MECHANISM = SaslMechanism.SCRAM_SHA_512
PRINCIPALS = (access.ADMIN, *access.SERVICES, access.DOWNSTREAM)


def password(principal: str) -> str:
    if principal not in PRINCIPALS:
        raise KeyError(f"{principal} is not a principal of the local broker: {PRINCIPALS}")
    return local_secrets.get(f"KAFKA_{principal.upper()}_PASSWORD")


def connection(principal: str = access.ADMIN, bootstrap: str = KAFKA_BOOTSTRAP) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=bootstrap,
        security_protocol=SECURITY_PROTOCOL,
        sasl_mechanism=SASL_MECHANISM,
        username=principal,
        password=SecretStr(password(principal)),
    )


def service_settings(service: str) -> dict[str, Any]:
    """A service's Kafka settings (ServiceSettings fields) as its own principal."""
    return {
        "kafka_security_protocol": SECURITY_PROTOCOL.value,
        "kafka_sasl_mechanism": SASL_MECHANISM.value,
        "kafka_username": service,
        "kafka_password": password(service),
    }


def service_environment(service: str) -> dict[str, str]:
    """The same, as the environment variables of a service process."""
    return {name.upper(): str(value) for name, value in service_settings(service).items()}


async def grant(*namespaces: str, bootstrap: str = KAFKA_BOOTSTRAP) -> int:
    """The ACLs of the namespaces, those missing created; returns how many were."""
    return await access.grant(connection(access.ADMIN, bootstrap), *namespaces)


def cluster_environment(partitions: int = CLUSTER_PARTITIONS) -> dict[str, str]:
    """A service's environment on the cluster: its bootstrap, and the partitions and replicas
    of the topics it creates."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": CLUSTER_BOOTSTRAP,
        "KAFKA_PARTITIONS": str(partitions),
        "KAFKA_REPLICATION_FACTOR": str(CLUSTER_REPLICATION_FACTOR),
    }


def main(argv: list[str]) -> int:
    if argv[:1] != ["grant"] or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2

    try:
        created = asyncio.run(grant(*argv[1:]))
        print(f"[kafka] ACLs in place for the namespaces {argv[1:]}: {created} created")
    except Exception as error:
        print(
            f"[kafka] ERROR: granting access on {KAFKA_BOOTSTRAP} as {access.ADMIN} failed:"
            f" {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
