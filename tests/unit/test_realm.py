"""The committed realm file is what deploy/tools/realm.py makes of the catalog, and it keeps the
contract the services rely on (names of roles, groups, users, clients and claims)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.tools import realm
from shared.catalog import load_catalog
from shared.settings import DEFAULT_CATALOG

CATALOG = load_catalog(DEFAULT_CATALOG)


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    document = json.loads(realm.REALM_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_committed_realm_file_is_generated_from_the_catalog() -> None:
    assert realm.REALM_FILE.read_text(encoding="utf-8") == realm.render(CATALOG), (
        "deploy/keycloak/onestop-realm.json is stale: run `make realm` and commit it"
    )


def test_one_group_per_unit_with_its_code_and_name(committed: dict[str, Any]) -> None:
    groups = {g["name"]: g["attributes"] for g in committed["groups"]}
    assert groups == {u.code: {"unit_code": [u.code], "unit_name": [u.name]} for u in CATALOG.units}


def test_roles_and_the_head_composite(committed: dict[str, Any]) -> None:
    roles = {r["name"]: r for r in committed["roles"]["realm"]}
    assert set(roles) == {
        "counter-officer",
        "unit-officer",
        "unit-head",
        "operator",
        "downstream-system",
    }
    assert roles["unit-head"]["composites"] == {"realm": ["unit-officer"]}


def test_three_users_per_unit_in_its_group_and_two_without_a_unit(
    committed: dict[str, Any],
) -> None:
    users = {u["username"]: u for u in committed["users"] if "serviceAccountClientId" not in u}
    assert len(users) == 3 * len(CATALOG.units) + 2
    for unit in CATALOG.units:
        for prefix, role in (
            ("counter", "counter-officer"),
            ("officer", "unit-officer"),
            ("head", "unit-head"),
        ):
            user = users[f"{prefix}.{unit.code.lower()}"]
            assert user["realmRoles"] == [role]
            assert user["groups"] == [f"/{unit.code}"]
            assert user["attributes"] == {"unit_code": [unit.code]}
    for name in ("operator", "leader"):
        assert users[name]["realmRoles"] == ["operator"] and "attributes" not in users[name]
    for user in users.values():
        assert user["firstName"] and user["lastName"] and user["emailVerified"]
        assert user["requiredActions"] == []
        assert user["credentials"] == [
            {"type": "password", "value": "onestop-demo", "temporary": False}
        ]


def test_the_downstream_secret_is_a_placeholder_never_a_value(committed: dict[str, Any]) -> None:
    [client] = [c for c in committed["clients"] if c["clientId"] == "onestop-downstream"]
    assert client["secret"] == "${KEYCLOAK_DOWNSTREAM_CLIENT_SECRET}"
    assert client["serviceAccountsEnabled"] and not client["publicClient"]
    [account] = [u for u in committed["users"] if u.get("serviceAccountClientId")]
    assert account["realmRoles"] == ["downstream-system"]


def test_the_portal_names_every_service_as_audience_and_maps_unit_code(
    committed: dict[str, Any],
) -> None:
    [portal] = [c for c in committed["clients"] if c["clientId"] == "onestop-portal"]
    assert portal["publicClient"] and portal["directAccessGrantsEnabled"]
    assert portal["attributes"]["pkce.code.challenge.method"] == "S256"
    audiences = {
        m["config"]["included.client.audience"]
        for m in portal["protocolMappers"]
        if m["protocolMapper"] == "oidc-audience-mapper"
    }
    assert audiences == set(realm.SERVICE_CLIENTS)
    service_clients = {c["clientId"]: c for c in committed["clients"]}
    for name in realm.SERVICE_CLIENTS:
        assert service_clients[name]["bearerOnly"], f"{name} is an audience, nobody signs in"


def test_tokens_last_fifteen_minutes_and_guessing_is_slowed(committed: dict[str, Any]) -> None:
    assert committed["accessTokenLifespan"] == 900
    assert committed["bruteForceProtected"] is True


def test_users_cannot_edit_their_own_unit_code(committed: dict[str, Any]) -> None:
    [profile] = committed["components"]["org.keycloak.userprofile.UserProfileProvider"]
    config = json.loads(profile["config"]["kc.user.profile.config"][0])
    [unit_code] = [a for a in config["attributes"] if a["name"] == "unit_code"]
    assert unit_code["permissions"]["edit"] == ["admin"]
