"""The local Keycloak's demo users, as the tests sign in (deploy/keycloak/onestop-realm.json)."""

from __future__ import annotations

import jwt

from deploy.local.identity import counter_of, head_of, officer_of, password_token

__all__ = ["OPERATOR_USER", "bearer", "counter_of", "head_of", "name_of", "officer_of"]

OPERATOR_USER = "operator"


async def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await password_token(user)}"}


async def name_of(user: str) -> str:
    """The official's name as their token gives it (and the events record it)."""
    claims = jwt.decode(await password_token(user), options={"verify_signature": False})
    return str(claims["name"])
