"""Who is calling: bearer tokens from the identity provider (Keycloak, OpenID Connect), verified
with PyJWT against the provider's signing keys (JWKS): signature, issuer, audience, expiry,
with a little clock skew allowed. The unit an official acts for comes from the token, never
from a request body.

The HTTP glue (`Authenticator`) turns a missing or bad token into 401 and a missing role into
403, both as a Problem naming what is wrong, and declares the scheme in the OpenAPI document
so that /docs can sign in (authorization code with PKCE on the public `onestop-portal` client).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx
import jwt
from cachetools import TLRUCache
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2AuthorizationCodeBearer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.api import Problem, problem

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "PS256", "ES256")


class Role(StrEnum):
    """The realm roles (deploy/keycloak/onestop-realm.json)."""

    COUNTER_OFFICER = "counter-officer"  # receives dossiers at its unit's desk, returns results
    UNIT_OFFICER = "unit-officer"  # acts on dossiers its unit holds now
    UNIT_HEAD = "unit-head"  # an officer who also signs the unit's apologies
    OPERATOR = "operator"  # operators and leaders: read everything, change nothing
    DOWNSTREAM_SYSTEM = "downstream-system"  # reads events only


STAFF = (Role.COUNTER_OFFICER, Role.UNIT_OFFICER, Role.UNIT_HEAD, Role.OPERATOR)


@dataclass(frozen=True)
class Principal:
    """The caller, as the token says. `name` is an official's name: a public duty, recorded on
    the events they cause (the control slip and the lateness board show it)."""

    subject: str
    username: str
    name: str
    roles: frozenset[str]
    unit_code: str | None

    def has(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        roles = claims.get("realm_access", {}).get("roles", [])
        username = str(claims.get("preferred_username") or claims["sub"])
        unit = claims.get("unit_code")
        return cls(
            subject=str(claims["sub"]),
            username=username,
            name=str(claims.get("name") or username),
            roles=frozenset(str(r) for r in roles if isinstance(r, str)),
            unit_code=str(unit) if isinstance(unit, str) and unit.strip() else None,
        )


class OidcSettings(BaseSettings):
    """Mixed into the settings of every service with an HTTP API."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    oidc_issuer: str = Field(
        min_length=1,
        pattern=r"^https?://",
        description="the identity provider's issuer, e.g. http://127.0.0.1:18080/realms/onestop;"
        " tokens must name it, and browsers sign in there",
    )
    oidc_audience: str = Field(min_length=1, description="this service's client id")
    oidc_jwks_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="where this service fetches the signing keys, when it reaches the provider"
        " by another address than browsers do (default: the issuer's certs endpoint)",
    )
    oidc_leeway_seconds: float = Field(default=30.0, ge=0, le=300, description="clock skew")
    oidc_portal_client_id: str = Field(
        default="onestop-portal",
        description="the public client that /docs and the web pages sign in with",
    )
    oidc_token_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="where the web pages exchange a sign-in code, when this service reaches the"
        " provider by another address than browsers do (default: the issuer's token endpoint)",
    )

    @property
    def jwks_url(self) -> str:
        return self.oidc_jwks_url or f"{self.oidc_issuer.rstrip('/')}/protocol/openid-connect/certs"


# --- errors ------------------------------------------------------------------------------------


class Unauthenticated(Exception):
    """No token, or one that does not verify: 401."""


class Forbidden(Exception):
    """A valid token without the right to do this: 403, naming the role or unit needed."""


class ProviderUnavailable(Exception):
    """The signing keys could not be fetched: 503, retry later."""


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No bearer token, or one that does not verify"},
    403: {"model": Problem, "description": "The token lacks the role, or the unit, this needs"},
}


# --- signing keys ------------------------------------------------------------------------------


class SigningKeys(Protocol):
    async def key(self, key_id: str | None) -> jwt.PyJWK: ...


class StaticKeys:
    """A fixed key set (a JWKS document): for a provider whose keys are pinned, and for tests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = jwt.PyJWKSet.from_dict(jwks)

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        return _pick(self._keys, key_id)


class JwksKeys:
    """The provider's published keys, fetched when first needed and again when a token names a
    key not seen yet (the provider rotated), at most once per `refetch_after` seconds."""

    def __init__(self, url: str, *, refetch_after: float = 10.0, timeout: float = 5.0) -> None:
        self._url = url
        self._refetch_after = refetch_after
        self._timeout = timeout
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        keys = self._keys
        if keys is not None:
            try:
                return _pick(keys, key_id)
            except Unauthenticated:
                if time.monotonic() - self._fetched_at < self._refetch_after:
                    raise
        return _pick(await self._fetch(), key_id)

    async def _fetch(self) -> jwt.PyJWKSet:
        async with self._lock:
            if self._keys is not None and time.monotonic() - self._fetched_at < 1.0:
                return self._keys  # another request fetched them just now
            try:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(self._url)
                    response.raise_for_status()
                self._keys = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as error:
                logger.warning(
                    "signing keys unavailable", extra={"url": self._url, "error": repr(error)}
                )
                raise ProviderUnavailable(
                    "the identity provider's signing keys cannot be fetched; retry later"
                ) from error
            self._fetched_at = time.monotonic()
            return self._keys


def _pick(keys: jwt.PyJWKSet, key_id: str | None) -> jwt.PyJWK:
    if key_id is None:
        raise Unauthenticated("the token names no signing key (kid)")
    for key in keys.keys:
        if key.key_id == key_id:
            return key
    raise Unauthenticated("the token is signed with a key the identity provider does not publish")


# --- verification ------------------------------------------------------------------------------


class TokenVerifier:
    """Verifies bearer tokens offline against the provider's keys. A counter sends the same
    token with every request of its session, and checking its RSA signature was a tenth of
    intake's CPU per POST: a token that verified is remembered, by its exact text, until it
    expires (exp plus the leeway, as the check itself allows), among the `remembered` most
    recent. As with offline verification anyway, a token stays valid until it expires."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str,
        leeway: float,
        remembered: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._verified: TLRUCache[str, tuple[Principal, float]] = TLRUCache(
            maxsize=remembered, ttu=lambda _token, verified, _now: verified[1], timer=clock
        )

    @classmethod
    def from_settings(cls, settings: OidcSettings) -> TokenVerifier:
        return cls(
            JwksKeys(settings.jwks_url),
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            leeway=settings.oidc_leeway_seconds,
        )

    async def verify(self, token: str) -> Principal:
        if (verified := self._verified.get(token)) is not None:
            return verified[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the bearer token is malformed: {error}") from error
        key = await self._keys.key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the token has expired; sign in again") from error
        except jwt.InvalidAudienceError as error:
            raise Unauthenticated(f"the token is not meant for {self._audience}") from error
        except jwt.InvalidIssuerError as error:
            raise Unauthenticated(f"the token was not issued by {self._issuer}") from error
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token does not verify: {error}") from error
        principal = Principal.from_claims(claims)
        self._verified[token] = (principal, float(claims["exp"]) + self._leeway)
        return principal


# --- HTTP --------------------------------------------------------------------------------------


class Authenticator:
    """FastAPI dependencies over a verifier: `optional` (None without a token) and
    `require(roles…)`; `install` adds the error responses and /docs' sign-in."""

    def __init__(self, verifier: TokenVerifier, settings: OidcSettings) -> None:
        self.verifier = verifier
        self.settings = settings
        base = f"{settings.oidc_issuer.rstrip('/')}/protocol/openid-connect"
        self.scheme = OAuth2AuthorizationCodeBearer(
            authorizationUrl=f"{base}/auth",
            tokenUrl=f"{base}/token",
            refreshUrl=f"{base}/token",
            scheme_name="keycloak",
            description="Sign in with the city's identity provider (Keycloak).",
            auto_error=False,
        )
        scheme = self.scheme

        # Dependencies as defaults, not in Annotated: FastAPI resolves (string) annotations in
        # the module's globals, where these closures' names do not exist.
        async def optional(
            request: Request, token: str | None = Depends(scheme)
        ) -> Principal | None:
            if token is None:
                if request.headers.get("authorization"):
                    raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
                return None
            principal = await verifier.verify(token)
            request.state.principal = principal
            return principal

        self.optional = optional

    def require(self, *roles: Role) -> Any:
        """A dependency giving the caller, who must hold one of `roles` (any role if none)."""
        caller = Depends(self.optional)

        async def required(principal: Principal | None = caller) -> Principal:
            if principal is None:
                raise Unauthenticated("sign in: this needs a bearer token")
            if roles and not principal.has(*roles):
                held = ", ".join(sorted(principal.roles & {r.value for r in Role})) or "none"
                raise Forbidden(
                    f"this needs the role {' or '.join(roles)}; your token's roles: {held}"
                )
            return principal

        return Depends(required)

    def install(self, app: FastAPI) -> None:
        app.swagger_ui_init_oauth = {
            "clientId": self.settings.oidc_portal_client_id,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": "openid",
        }
        install_auth_error_handlers(app)


def install_auth_error_handlers(app: FastAPI) -> None:
    async def on_unauthenticated(_: Request, error: Exception) -> JSONResponse:
        challenge = f'Bearer error="invalid_token", error_description="{_quoted(str(error))}"'
        return problem(401, "unauthenticated", str(error), headers={"WWW-Authenticate": challenge})

    async def on_forbidden(_: Request, error: Exception) -> JSONResponse:
        return problem(403, "forbidden", str(error))

    async def on_provider_unavailable(_: Request, error: Exception) -> JSONResponse:
        return problem(503, "unavailable", str(error), headers={"Retry-After": "5"})

    app.add_exception_handler(Unauthenticated, on_unauthenticated)
    app.add_exception_handler(Forbidden, on_forbidden)
    app.add_exception_handler(ProviderUnavailable, on_provider_unavailable)


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")
