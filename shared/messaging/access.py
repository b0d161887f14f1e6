"""Who may do what on the broker: one principal per service and one for downstream systems,
each allowed only its own part of a namespace (the broker denies whatever no rule allows).

- A service writes only its own topics (`<ns>onestop.<service>.`, its personal-data topic
  included) and the dead-letter topics of its own consumer groups.
- A service reads only the topics its consumer groups subscribe to, in those groups.
- `downstream` reads the four public topics, in consumer groups named `<ns>downstream.…`:
  not the restricted personal-data topic, not the dead letters.

`grant` provisions the rules of namespaces as the admin principal (a super user): it
creates the missing ones, so it runs at every start.

    python -m shared.messaging.access NAMESPACE...   # admin's KAFKA_* variables, see below
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest,
)
from aiokafka.protocol.api import Request

from shared.events import PUBLIC_TOPICS, Topic, dead_letter_topic
from shared.messaging.connection import KafkaConnection

# Intake's restricted topic: the applicant's personal data, for the principals named below.
PERSONAL_DATA_TOPIC = Topic.INTAKE_PERSONAL_DATA
ADMIN = "admin"
DOWNSTREAM = "downstream"
DOWNSTREAM_GROUP_PREFIX = "downstream."

# Each service's consumer groups and the topics each reads (services/*/main.py; a unit test
# holds the two together).
CONSUMER_GROUPS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "intake": {"intake-projection": (Topic.ROUTING, Topic.DEADLINE, Topic.NOTIFIER)},
    "routing": {"routing": (Topic.INTAKE,)},
    "deadline": {"deadline": (Topic.INTAKE, Topic.ROUTING, Topic.NOTIFIER)},
    "notifier": {"notifier": (Topic.DEADLINE, Topic.INTAKE, PERSONAL_DATA_TOPIC)},
}
SERVICES = tuple(CONSUMER_GROUPS)


class ResourceType(IntEnum):  # the Kafka protocol's codes (org.apache.kafka.common.resource)
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):  # org.apache.kafka.common.acl.AclOperation
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    IDEMPOTENT_WRITE = 12


_ALLOW = 3
Binding = tuple[int, str, int, str, str, int, int]  # as CreateAcls v1 and DescribeAcls carry it
_ANY_HOST = "*"
_CLUSTER = "kafka-cluster"
_WRITES = (Operation.WRITE, Operation.DESCRIBE, Operation.CREATE)
_READS = (Operation.READ, Operation.DESCRIBE)


@dataclass(frozen=True)
class Rule:
    """ALLOW `operation` on a resource to `principal` (a username), from any host."""

    principal: str
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    def binding(self) -> Binding:
        return (
            self.resource_type,
            self.name,
            self.pattern,
            f"User:{self.principal}",
            _ANY_HOST,
            self.operation,
            _ALLOW,
        )


def rules(namespace: str) -> list[Rule]:
    """Every rule of one namespace ("" for `make run`'s system, "test.", "demo." …)."""
    return [*_service_rules(namespace), *_downstream_rules(namespace)]


def _service_rules(ns: str) -> Iterator[Rule]:
    for service, groups in CONSUMER_GROUPS.items():
        for operation in _WRITES:
            yield Rule(
                service,
                ResourceType.TOPIC,
                f"{ns}onestop.{service}.",
                PatternType.PREFIXED,
                operation,
            )
        for group, topics in groups.items():
            for operation in _WRITES:
                yield Rule(
                    service,
                    ResourceType.TOPIC,
                    ns + dead_letter_topic(group),
                    PatternType.LITERAL,
                    operation,
                )
            for topic in topics:
                for operation in _READS:
                    yield Rule(
                        service, ResourceType.TOPIC, ns + topic, PatternType.LITERAL, operation
                    )
            for operation in _READS:
                yield Rule(service, ResourceType.GROUP, ns + group, PatternType.LITERAL, operation)


def _downstream_rules(ns: str) -> Iterator[Rule]:
    for topic in PUBLIC_TOPICS:
        for operation in _READS:
            yield Rule(DOWNSTREAM, ResourceType.TOPIC, ns + topic, PatternType.LITERAL, operation)
    for operation in _READS:
        yield Rule(
            DOWNSTREAM,
            ResourceType.GROUP,
            ns + DOWNSTREAM_GROUP_PREFIX,
            PatternType.PREFIXED,
            operation,
        )


class GrantError(RuntimeError):
    pass


# Many bindings in one request (aiokafka's own requests carry one each): the broker handles a
# connection's requests one at a time, each a write to the metadata log.
class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # an untyped base
    API_KEY = 30

    def __init__(self, bindings: list[Binding]) -> None:
        self._bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._bindings)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]  # an untyped base
    API_KEY = 31

    def __init__(self, bindings: list[Binding]) -> None:
        self._bindings = bindings  # each an exact filter

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._bindings)


async def grant(admin: KafkaConnection, *namespaces: str, timeout: float = 30.0) -> int:
    """Put in place every rule of the namespaces; returns how many were missing. One
    request reads the broker's ACLs, one creates those missing (none, after the first time).
    `admin` must be a super user, or hold ALTER and DESCRIBE on the cluster."""
    wanted = list(dict.fromkeys(r.binding() for ns in namespaces for r in rules(ns)))
    async with _client(admin, timeout) as (client, node):
        existing = await _existing(client, node)
        missing = [binding for binding in wanted if binding not in existing]
        if not missing:
            return 0
        response = await client.send(node, _CreateAcls(missing))
    _check(f"create ACLs of namespaces {namespaces!r}", missing, response.creation_responses)
    return len(missing)


async def revoke(admin: KafkaConnection, prefix: str, *, timeout: float = 30.0) -> int:
    """Delete every ACL whose resource name starts with `prefix` (the throwaway namespaces
    of earlier test runs, say); returns how many."""
    async with _client(admin, timeout) as (client, node):
        stale = [b for b in await _existing(client, node) if b[1].startswith(prefix)]
        if not stale:
            return 0
        response = await client.send(node, _DeleteAcls(stale))
    _check(f"delete ACLs of {prefix!r}…", stale, response.filter_responses)
    return len(stale)


@asynccontextmanager
async def _client(
    admin: KafkaConnection, timeout: float
) -> AsyncIterator[tuple[AIOKafkaClient, int]]:
    client = AIOKafkaClient(
        **admin.client_options(), client_id="onestop-access", request_timeout_ms=15_000
    )
    try:
        async with asyncio.timeout(timeout):
            await client.bootstrap()
            yield client, client.get_random_node()
    finally:
        await client.close()


_ANY = 1
_EVERY_ACL = DescribeAclsRequest(
    resource_type=_ANY,
    resource_name=None,  # null: any name
    resource_pattern_type_filter=_ANY,
    principal=None,
    host=None,
    operation=_ANY,
    permission_type=_ANY,
)


async def _existing(client: AIOKafkaClient, node: int) -> set[Binding]:
    response = await client.send(node, _EVERY_ACL)
    if response.error_code != 0:
        raise GrantError(
            f"the broker did not list its ACLs: {for_code(response.error_code).__name__}"
            f" {response.error_message or ''}"
        )
    return {
        (resource_type, name, pattern, principal, host, operation, permission)
        for resource_type, name, pattern, acls in response.resources
        for principal, host, operation, permission in acls
    }


def _check(what: str, bindings: list[Binding], results: list[tuple[Any, ...]]) -> None:
    failures = [
        f"{binding}: {for_code(result[0]).__name__} {result[1] or ''}".rstrip()
        for binding, result in zip(bindings, results, strict=True)
        if result[0] != 0
    ]
    if failures:
        raise GrantError(
            f"the broker refused to {what}, {len(failures)} of {len(bindings)}:"
            f" {'; '.join(failures[:3])}"
        )


def main(namespaces: list[str]) -> int:
    """The admin's connection from the same variables a service reads (KAFKA_BOOTSTRAP_SERVERS,
    KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD,
    KAFKA_CA_FILE)."""
    if not namespaces:
        print(__doc__, file=sys.stderr)
        return 2
    admin = KafkaConnection.model_validate(
        {
            field: os.environ[f"KAFKA_{field.upper()}"]
            for field in KafkaConnection.model_fields
            if f"KAFKA_{field.upper()}" in os.environ
        }
    )

    created = asyncio.run(grant(admin, *namespaces))
    print(f"[kafka-access] ACLs in place for {namespaces}: {created} created")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
