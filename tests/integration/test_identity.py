"""The local Keycloak issues the tokens the services rely on: each claim of the realm's contract
(deploy/tools/realm.py) checked on a real token, verified against the realm's JWKS."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from deploy.local import identity
from deploy.tools.realm import SERVICE_CLIENTS
from shared.catalog import load_catalog
from shared.settings import DEFAULT_CATALOG

UNITS = load_catalog(DEFAULT_CATALOG).units
UNIT = UNITS[1].code
OTHER_UNIT = UNITS[-1].code


async def verified_claims(token: str, audience: str = "onestop-intake") -> dict[str, Any]:
    """The token's claims once PyJWT checked signature, issuer, audience and expiry."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(identity.JWKS_URL)
    response.raise_for_status()
    keys = jwt.PyJWKSet.from_dict(response.json())
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [k for k in keys.keys if k.key_id == kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=identity.ISSUER,
        audience=audience,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return claims


def roles(claims: dict[str, Any]) -> set[str]:
    return set(claims["realm_access"]["roles"])


async def test_an_officer_token_carries_unit_roles_and_every_service_audience(
    keycloak_issuer: str,
) -> None:
    claims = await verified_claims(await identity.password_token(identity.officer_of(UNIT)))

    assert claims["iss"] == keycloak_issuer
    assert claims["unit_code"] == UNIT
    assert "unit-officer" in roles(claims)
    assert not roles(claims) & {"unit-head", "counter-officer", "operator", "downstream-system"}
    assert set(SERVICE_CLIENTS) <= set(claims["aud"])
    assert claims["preferred_username"] == identity.officer_of(UNIT)
    assert claims["name"] and claims["sub"]
    assert claims["exp"] - claims["iat"] == 15 * 60


@pytest.mark.parametrize("audience", SERVICE_CLIENTS)
async def test_each_service_accepts_a_counter_token_as_its_audience(
    keycloak_issuer: str, audience: str
) -> None:
    token = await identity.password_token(identity.counter_of(OTHER_UNIT))
    claims = await verified_claims(token, audience=audience)
    assert claims["unit_code"] == OTHER_UNIT
    assert "counter-officer" in roles(claims)


async def test_a_token_is_refused_for_an_audience_it_does_not_name(keycloak_issuer: str) -> None:
    token = await identity.password_token(identity.officer_of(UNIT))
    with pytest.raises(jwt.InvalidAudienceError):
        await verified_claims(token, audience="onestop-downstream")


async def test_a_head_is_a_unit_officer_through_the_composite_role(keycloak_issuer: str) -> None:
    claims = await verified_claims(await identity.password_token(identity.head_of(UNIT)))
    assert {"unit-head", "unit-officer"} <= roles(claims)
    assert claims["unit_code"] == UNIT


@pytest.mark.parametrize("user", ["operator", "leader"])
async def test_operator_and_leader_have_no_unit(keycloak_issuer: str, user: str) -> None:
    claims = await verified_claims(await identity.password_token(user))
    assert "operator" in roles(claims)
    assert "unit_code" not in claims
    assert not roles(claims) & {"counter-officer", "unit-officer", "unit-head"}


async def test_a_wrong_password_is_refused(keycloak_issuer: str) -> None:
    user = identity.counter_of(UNITS[-2].code)
    with pytest.raises(identity.TokenRefused) as refused:
        await identity.password_token(user, password="not-the-password")
    assert (refused.value.status, refused.value.error) == (400, "invalid_grant")
    # One failure locks nobody out (and a success resets the brute-force count).
    assert (await verified_claims(await identity.password_token(user)))["unit_code"]


async def test_the_downstream_client_gets_the_downstream_role(keycloak_issuer: str) -> None:
    token = await identity.client_token(identity.DOWNSTREAM_CLIENT, identity.downstream_secret())
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == keycloak_issuer
    assert claims["azp"] == identity.DOWNSTREAM_CLIENT
    assert roles(claims) == {"downstream-system"}
    assert "unit_code" not in claims


async def test_the_downstream_client_is_refused_with_a_wrong_secret(keycloak_issuer: str) -> None:
    with pytest.raises(identity.TokenRefused) as refused:
        await identity.client_token(identity.DOWNSTREAM_CLIENT, "not-the-secret")
    assert refused.value.status == 401


async def test_a_cached_token_is_reused_until_shortly_before_it_expires(
    keycloak_issuer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = identity.head_of(OTHER_UNIT)
    first = await identity.password_token(user)
    assert await identity.password_token(user) == first

    now = time.monotonic()
    monkeypatch.setattr(identity.time, "monotonic", lambda: now + 15 * 60 - 30)
    renewed = await identity.password_token(user)

    assert renewed != first
    assert (await verified_claims(renewed))["preferred_username"] == user


async def test_an_officer_cannot_move_to_another_unit_through_the_account_api(
    keycloak_issuer: str,
) -> None:
    user = identity.officer_of(UNIT)
    token = await identity.password_token(user)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{keycloak_issuer}/account/",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "username": user,
                "firstName": "x",
                "lastName": "y",
                "email": f"{user}@onestop.example",
                "attributes": {"unit_code": [OTHER_UNIT]},
            },
        )
    assert response.status_code in (401, 403)
    identity.forget_tokens()
    claims = await verified_claims(await identity.password_token(user))
    assert claims["unit_code"] == UNIT
