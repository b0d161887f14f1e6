"""Each service's HTTP API keeps its own OpenAPI contract: schemathesis runs every check over
every operation of the four services, running as processes on the real broker and database.

Every status an operation answers must be documented, with a body of the documented schema
and content type; what the schema refuses must be refused, what it allows must be taken;
a method an operation lacks is a 405 with `Allow`. The examples per operation are bounded
and the seed fixed, so that the run takes seconds and repeats itself; set
ONESTOP_CONTRACT_SEED to explore other inputs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.stack import SERVICES, Stack
from tests.conftest import TEST_DATABASE, TEST_PORT_BASE, clean_database, throwaway_namespace
from tests.factories import submission
from tests.users import OPERATOR_USER, bearer, counter_of

MAX_EXAMPLES = 10
SEED = os.environ.get("ONESTOP_CONTRACT_SEED", "20261201")
SCHEMATHESIS = Path(sys.executable).with_name("st")


# Whose valid token each service's run carries (from the running Keycloak): a counter officer
# (receives dossiers, acts at the desk, reads clocks), and an operator for the letters. Other
# operations answer 403 or 401, which must be documented like every other status.
DESK = "000.00.00.H29"
USERS = {
    "intake": counter_of(DESK),
    "routing": counter_of(DESK),
    "deadline": counter_of(DESK),
    "notifier": OPERATOR_USER,
}


async def contract_auth_headers(service: str) -> dict[str, str]:
    """Headers every request of the service's contract run carries: a valid bearer token."""
    return await bearer(USERS[service])


@pytest.fixture(scope="module")
async def contract_stack(kafka_bootstrap: str) -> AsyncIterator[Stack]:
    """The four services on a database and topics of their own: the run posts dossiers of
    every shape, which no other test should count."""
    database = f"{TEST_DATABASE}_contract"
    await clean_database(database)
    running = Stack(
        database=database,
        base_port=TEST_PORT_BASE + 40,
        namespace=await throwaway_namespace("contract"),
    )
    running.start()
    try:
        running.wait_ready(timeout=120)
        yield running
    finally:
        running.stop()


async def known_dossiers(
    stack: Stack, document: dict[str, Any], headers: dict[str, str]
) -> dict[str, str]:
    """A fresh dossier's code for each path that names one, so that each operation on a
    dossier reaches its logic (not only its 404) and acts on a dossier of its own."""
    paths = [path for path in document["paths"] if "{code}" in path]
    codes = {}
    async with httpx.AsyncClient(base_url=stack.url("intake"), headers=headers) as intake:
        for path in paths:
            response = await intake.post("/v1/dossiers", json=submission())
            assert response.status_code == 201, response.text
            codes[path] = response.json()["dossier_code"]
    return codes


# A schema-valid post may still be refused: the run sends one Idempotency-Key with several
# bodies, and a key is bound to its first body (422, documented). Otherwise the defaults.
REUSED_KEY = """[[operations]]
include-path = "/v1/dossiers"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

"""


def schemathesis_config(service: str, codes: dict[str, str], folder: Path) -> Path:
    config = folder / "schemathesis.toml"
    config.write_text(
        (REUSED_KEY if service == "intake" else "")
        + "".join(
            f"[[operations]]\ninclude-path = {json.dumps(path)}\n"
            f"parameters = {{ code = {json.dumps(code)} }}\n\n"
            for path, code in codes.items()
        )
    )
    return config


@pytest.mark.parametrize("service", SERVICES)
async def test_the_api_keeps_its_openapi_contract(
    contract_stack: Stack, service: str, tmp_path: Path
) -> None:
    base_url = contract_stack.url(service)
    auth = await contract_auth_headers(service)
    desk = await bearer(counter_of(DESK))  # posts the dossiers the operations act on
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"{base_url}/openapi.json")).json()
    codes = await known_dossiers(contract_stack, document, desk)
    config = schemathesis_config(service, codes, tmp_path)
    headers = [f"--header={name}: {value}" for name, value in auth.items()]
    run = await asyncio.to_thread(
        subprocess.run,
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--request-timeout",
            "10",
            *headers,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "NO_COLOR": "1"},
    )

    assert run.returncode == 0, f"{service} breaks its OpenAPI contract:\n{run.stdout}{run.stderr}"
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested is not None, run.stdout
    assert int(tested.group(1)) == operation_count(document), run.stdout


def operation_count(document: dict[str, Any]) -> int:
    methods = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    return sum(method in methods for item in document["paths"].values() for method in item)
