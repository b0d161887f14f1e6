"""An identity provider in memory, for unit tests: it signs tokens with its own RSA key and
gives a verifier that trusts that key. Everything else runs against the real Keycloak."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import Role, StaticKeys, TokenVerifier

ISSUER = "http://identity.test/realms/onestop"
KEY_ID = "unit-test-key"


class LocalIssuer:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self.jwks = {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def verifier(self, audience: str = "onestop-intake") -> TokenVerifier:
        return TokenVerifier(StaticKeys(self.jwks), issuer=ISSUER, audience=audience, leeway=0)

    def token(
        self,
        *roles: Role,
        unit_code: str | None = None,
        name: str = "Cán bộ thử nghiệm",
        subject: str | None = None,
        audience: str | list[str] = "onestop-intake",
        lifetime: float = 300,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "sub": subject or str(uuid.uuid4()),
            "iat": now,
            "exp": now + int(lifetime),
            "preferred_username": name.lower().replace(" ", "."),
            "name": name,
            "realm_access": {"roles": [str(r) for r in roles]},
            **({"unit_code": unit_code} if unit_code else {}),
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def headers(self, *roles: Role, unit_code: str | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, unit_code=unit_code, **claims)}"}
