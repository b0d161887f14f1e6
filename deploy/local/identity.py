"""Tokens from the local Keycloak (deploy/local/keycloak.sh), for scripts and tests.

    token = await password_token(officer_of("000.00.05.H29"))   # a demo user's access token
    token = await client_token(DOWNSTREAM_CLIENT, downstream_secret())

The demo users and clients are those of the realm file (deploy/tools/realm.py); their password is
the local demo one, not a secret. Tokens are cached per user and fetched anew shortly before they
expire, so a long scenario never sends an expired one."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx

from deploy.local.local_secrets import get as local_secret
from deploy.tools.realm import (
    DEMO_PASSWORD,
    DOWNSTREAM_CLIENT,
    DOWNSTREAM_SECRET_VARIABLE,
    PORTAL_CLIENT,
    REALM,
    username,
)

KEYCLOAK_URL = os.environ.get(
    "KEYCLOAK_URL", f"http://127.0.0.1:{os.environ.get('KEYCLOAK_PORT', '18080')}"
)
ISSUER = f"{KEYCLOAK_URL}/realms/{REALM}"
DISCOVERY_URL = f"{ISSUER}/.well-known/openid-configuration"
TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
JWKS_URL = f"{ISSUER}/protocol/openid-connect/certs"
START_HINT = "start it with `deploy/local/keycloak.sh start` (make run and make test do)"
REFRESH_MARGIN_SECONDS = 60.0  # a cached token is replaced once it has less than this left
TIMEOUT_SECONDS = 10.0

__all__ = [
    "DEMO_PASSWORD",
    "DOWNSTREAM_CLIENT",
    "ISSUER",
    "JWKS_URL",
    "KEYCLOAK_URL",
    "PORTAL_CLIENT",
    "TOKEN_URL",
    "KeycloakUnavailable",
    "TokenRefused",
    "check_ready",
    "client_token",
    "counter_of",
    "downstream_secret",
    "forget_tokens",
    "head_of",
    "officer_of",
    "password_token",
]


class KeycloakUnavailable(RuntimeError):
    """Keycloak does not answer, or answers for another issuer than the one expected."""


class TokenRefused(RuntimeError):
    """Keycloak answered, and refused the credentials."""

    def __init__(self, who: str, status: int, error: str, description: str) -> None:
        super().__init__(f"Keycloak refused a token for {who}: {status} {error}: {description}")
        self.status = status
        self.error = error


def counter_of(unit_code: str) -> str:
    """The counter officer of a unit (role counter-officer)."""
    return username("counter", unit_code)


def officer_of(unit_code: str) -> str:
    """The unit officer of a unit (role unit-officer)."""
    return username("officer", unit_code)


def head_of(unit_code: str) -> str:
    """The head of a unit (role unit-head, which includes unit-officer)."""
    return username("head", unit_code)


def downstream_secret() -> str:
    """The onestop-downstream client's secret, from this checkout's .run/secrets.env."""
    return local_secret(DOWNSTREAM_SECRET_VARIABLE)


@dataclass(frozen=True)
class _Cached:
    token: str
    refresh_at: float  # time.monotonic()


_cache: dict[tuple[str, str, str], _Cached] = {}


def forget_tokens() -> None:
    """Drops every cached token: the next call asks Keycloak again."""
    _cache.clear()


async def password_token(user: str, password: str = DEMO_PASSWORD) -> str:
    """An access token for a demo user (password grant on the onestop-portal client)."""
    form = {
        "grant_type": "password",
        "client_id": PORTAL_CLIENT,
        "username": user,
        "password": password,
        "scope": "openid",
    }
    return await _token(("password", user, password), user, form)


async def client_token(client_id: str, secret: str) -> str:
    """An access token for a confidential client (client credentials grant)."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await _token(("client", client_id, secret), f"client {client_id}", form)


async def _token(key: tuple[str, str, str], who: str, form: dict[str, str]) -> str:
    cached = _cache.get(key)
    if cached is not None and time.monotonic() < cached.refresh_at:
        return cached.token
    requested = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.post(TOKEN_URL, data=form)
    except httpx.HTTPError as error:
        raise KeycloakUnavailable(
            f"Keycloak at {KEYCLOAK_URL} did not answer ({type(error).__name__}: {error});"
            f" {START_HINT}"
        ) from error
    if response.status_code != 200:
        body = _json_or_empty(response)
        raise TokenRefused(
            who,
            response.status_code,
            str(body.get("error", "no error code")),
            str(body.get("error_description", response.text[:200])),
        )
    body = response.json()
    lifetime = float(body["expires_in"])
    # Counted from the request, so time spent waiting for the answer is not counted twice.
    refresh_at = requested + max(lifetime - REFRESH_MARGIN_SECONDS, lifetime / 2)
    _cache[key] = _Cached(token=str(body["access_token"]), refresh_at=refresh_at)
    return _cache[key].token


def _json_or_empty(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def check_ready() -> None:
    """Raises KeycloakUnavailable, naming the URL and how to start it, unless the realm's
    discovery document answers with the expected issuer."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.get(DISCOVERY_URL)
        response.raise_for_status()
        issuer = response.json().get("issuer")
    except (httpx.HTTPError, ValueError) as error:
        raise KeycloakUnavailable(
            f"Keycloak is not ready at {DISCOVERY_URL} ({type(error).__name__}: {error});"
            f" {START_HINT}"
        ) from error
    if issuer != ISSUER:
        raise KeycloakUnavailable(
            f"Keycloak at {KEYCLOAK_URL} names its issuer {issuer!r}, not {ISSUER!r}: is another"
            " Keycloak on that port? Stop it, or point KEYCLOAK_URL at the project's"
        )
