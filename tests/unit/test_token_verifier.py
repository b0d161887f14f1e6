"""The token verifier remembers a token that verified, until it expires: a counter's session
sends one token with every request, and its signature is checked once."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.auth import Role, StaticKeys, TokenVerifier, Unauthenticated
from tests.fakes.identity import ISSUER, LocalIssuer


class CountingKeys(StaticKeys):
    def __init__(self, issuer: LocalIssuer) -> None:
        super().__init__(issuer.jwks)
        self.lookups = 0

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        self.lookups += 1
        return await super().key(key_id)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> LocalIssuer:
    return LocalIssuer()


def verifier_of(
    keys: CountingKeys, clock: Clock, *, leeway: float = 0, remembered: int = 1024
) -> TokenVerifier:
    return TokenVerifier(
        keys,
        issuer=ISSUER,
        audience="onestop-intake",
        leeway=leeway,
        remembered=remembered,
        clock=clock,
    )


async def test_a_token_is_checked_once_and_gives_the_same_caller(issuer: LocalIssuer) -> None:
    keys, clock = CountingKeys(issuer), Clock()
    verifier = verifier_of(keys, clock)
    token = issuer.token(Role.COUNTER_OFFICER, unit_code="000.00.00.H29")

    first = await verifier.verify(token)
    again = await verifier.verify(token)

    assert again == first and first.unit_code == "000.00.00.H29"
    assert keys.lookups == 1


async def test_a_remembered_token_is_checked_again_once_it_expires(issuer: LocalIssuer) -> None:
    """After exp plus the leeway, the check runs again (and refuses it: PyJWT reads the real
    time, so here only the second check is seen; test_intake_api sees the refusal)."""
    keys, clock = CountingKeys(issuer), Clock()
    verifier = verifier_of(keys, clock, leeway=5)
    token = issuer.token(Role.COUNTER_OFFICER, lifetime=60)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    await verifier.verify(token)

    clock.now = exp + 4  # within the leeway: still remembered
    await verifier.verify(token)
    assert keys.lookups == 1

    clock.now = exp + 5
    await verifier.verify(token)
    assert keys.lookups == 2


async def test_a_token_that_fails_is_not_remembered(issuer: LocalIssuer) -> None:
    keys, clock = CountingKeys(issuer), Clock()
    verifier = verifier_of(keys, clock)
    forged = LocalIssuer().token(Role.OPERATOR)

    for _ in range(2):
        with pytest.raises(Unauthenticated, match="does not verify"):
            await verifier.verify(forged)
    assert keys.lookups == 2


async def test_only_the_most_recent_tokens_are_remembered(issuer: LocalIssuer) -> None:
    keys, clock = CountingKeys(issuer), Clock()
    verifier = verifier_of(keys, clock, remembered=2)
    tokens = [issuer.token(Role.COUNTER_OFFICER, subject=f"counter-{n}") for n in range(3)]
    for token in tokens:
        await verifier.verify(token)

    await verifier.verify(tokens[0])  # pushed out by the third: checked again

    assert keys.lookups == 4
