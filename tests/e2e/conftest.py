from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.local.stack import Stack
from tests.conftest import TEST_DATABASE, TEST_NAMESPACE, TEST_PORT_BASE


@pytest.fixture(scope="module")
async def stack(infrastructure: dict[str, str]) -> AsyncIterator[Stack]:
    """The four services as real processes on the test database, like `make run`; one stack
    per module, so that no two systems share the consumer groups at once."""
    running = Stack(
        database=TEST_DATABASE,
        base_port=TEST_PORT_BASE,
        namespace=TEST_NAMESPACE,
        extra_env={"WORKLOAD_REFRESH_SECONDS": "0.5"},
    )
    running.start()
    try:
        running.wait_ready(timeout=120)
        yield running
    finally:
        running.stop()
