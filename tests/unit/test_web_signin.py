"""The officials' pages sign in with the identity provider (code flow with PKCE) and keep a
server-side session: here the flow runs against an in-memory provider and session store, with
a clock the test moves. The same flow against the real Keycloak, in Chromium:
tests/e2e/test_office_pages.py."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse

from services.intake.web_signin import (
    CALLBACK_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_PATH,
    SIGN_OUT_PATH,
    WebSignIn,
    pkce_pair,
    safe_next,
    session_hash,
)
from shared.auth import OidcSettings, Principal, Role
from tests.fakes.identity import ISSUER, LocalIssuer
from tests.fakes.intake import InMemoryWebSessions

UNIT = "000.41.01.H29"


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/van-hanh/ton-dong?don-vi=X", "/van-hanh/ton-dong?don-vi=X"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("van-hanh", "/"),
    ],
)
def test_after_sign_in_the_browser_goes_only_to_a_path_of_this_site(
    asked: str | None, goes_to: str
) -> None:
    assert safe_next(asked) == goes_to


def test_the_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    verifier, challenge = pkce_pair()
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(verifier) <= 128 and pkce_pair()[0] != verifier


class Sessions:
    """The unit of work the sign-in needs: just the session store."""

    def __init__(self, store: InMemoryWebSessions) -> None:
        self.web_sessions = store

    async def commit(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class Provider:
    """Keycloak's token endpoint: the code it issued, for the verifier it was issued with."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (challenge, access token)
        self.exchanged: list[str] = []

    def issue(self, challenge: str, *roles: Role, unit_code: str | None = None) -> str:
        code = f"code-{len(self.codes)}"
        token = self.issuer.token(*roles, unit_code=unit_code, name="Trần Văn Cán Bộ")
        self.codes[code] = (challenge, token)
        return code

    async def __call__(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        challenge, token = self.codes.pop(code)
        digest = hashlib.sha256(verifier.encode()).digest()
        assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
        self.exchanged.append(redirect_uri)
        return {"access_token": token, "id_token": "id-token"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def issuer() -> LocalIssuer:
    return LocalIssuer()


@pytest.fixture
def provider(issuer: LocalIssuer) -> Provider:
    return Provider(issuer)


@pytest.fixture
def store() -> InMemoryWebSessions:
    return InMemoryWebSessions()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def browser(
    issuer: LocalIssuer, provider: Provider, store: InMemoryWebSessions, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    settings = OidcSettings(oidc_issuer=ISSUER, oidc_audience="onestop-intake")
    web = WebSignIn(
        settings,
        issuer.verifier(),
        lambda: Sessions(store),
        clock,
        session_lifetime=timedelta(hours=8),
        idle_timeout=timedelta(minutes=60),
        exchange=provider,
    )
    app = FastAPI()

    def error_page(status_code: int, title: str, message: str) -> Response:
        return PlainTextResponse(f"{title}: {message}", status_code)

    web.install(app, error_page)

    operator = web.require(Role.OPERATOR)

    @app.get("/van-hanh/ton-dong")
    async def stuck(principal: Principal = operator) -> Response:
        return PlainTextResponse(f"{principal.name} {principal.unit_code}")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


async def sign_in(
    browser: httpx.AsyncClient, provider: Provider, *roles: Role, next_path: str
) -> httpx.Response:
    """What the browser does: page → sign-in → provider (which issues a code) → callback."""
    page = await browser.get(next_path)
    assert page.status_code == 303
    started = await browser.get(page.headers["location"])
    assert started.status_code == 303
    authorize = urlsplit(started.headers["location"])
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert authorize.geturl().startswith(f"{ISSUER}/protocol/openid-connect/auth")
    assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
    assert query["redirect_uri"] == f"http://127.0.0.1:8000{CALLBACK_PATH}"
    code = provider.issue(query["code_challenge"], *roles, unit_code=UNIT)
    return await browser.get(CALLBACK_PATH, params={"code": code, "state": query["state"]})


async def test_an_operator_signs_in_and_lands_on_the_page_asked_for(
    browser: httpx.AsyncClient, provider: Provider, store: InMemoryWebSessions
) -> None:
    back = await sign_in(browser, provider, Role.OPERATOR, next_path="/van-hanh/ton-dong?x=1")

    assert back.status_code == 303 and back.headers["location"] == "/van-hanh/ton-dong?x=1"
    cookie = next(c for c in back.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await browser.get("/van-hanh/ton-dong")
    assert page.status_code == 200 and page.text == f"Trần Văn Cán Bộ {UNIT}"
    # The store keeps a hash of the browser's session id, never the id itself.
    session_id = browser.cookies[SESSION_COOKIE]
    assert list(store.sessions) == [session_hash(session_id)] and not store.pending


async def test_without_the_role_the_page_says_which_role_it_needs(
    browser: httpx.AsyncClient, provider: Provider
) -> None:
    await sign_in(browser, provider, Role.UNIT_OFFICER, next_path="/van-hanh/ton-dong")

    page = await browser.get("/van-hanh/ton-dong")

    assert page.status_code == 403 and "operator" in page.text


async def test_a_callback_not_started_in_this_browser_or_replayed_opens_no_session(
    browser: httpx.AsyncClient, provider: Provider, store: InMemoryWebSessions
) -> None:
    await browser.get("/van-hanh/ton-dong")
    started = await browser.get(f"{SIGN_IN_PATH}?next=/van-hanh/ton-dong")
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    challenge = parse_qs(urlsplit(started.headers["location"]).query)["code_challenge"][0]

    browser.cookies.delete(SIGN_IN_COOKIE)  # another browser
    forged = await browser.get(CALLBACK_PATH, params={"code": "x", "state": state})
    browser.cookies.set(SIGN_IN_COOKIE, state)
    code = provider.issue(challenge, Role.OPERATOR)
    first = await browser.get(CALLBACK_PATH, params={"code": code, "state": state})
    browser.cookies.set(SIGN_IN_COOKIE, state)
    replayed = await browser.get(CALLBACK_PATH, params={"code": code, "state": state})

    assert forged.status_code == 401 and "không bắt đầu từ trình duyệt này" in forged.text
    assert first.status_code == 303
    assert replayed.status_code == 401 and "đã được dùng" in replayed.text
    assert len(store.sessions) == 1


async def test_a_refused_sign_in_is_a_page_saying_so(browser: httpx.AsyncClient) -> None:
    refused = await browser.get(CALLBACK_PATH, params={"error": "access_denied", "state": "s"})

    assert refused.status_code == 401 and "access_denied" in refused.text


async def test_a_session_ends_when_idle_or_after_its_lifetime_and_at_sign_out(
    browser: httpx.AsyncClient, provider: Provider, clock: Clock, store: InMemoryWebSessions
) -> None:
    await sign_in(browser, provider, Role.OPERATOR, next_path="/van-hanh/ton-dong")
    for _ in range(8):  # in use all day: never idle for an hour, but the day ends
        clock.now += timedelta(minutes=55)
        assert (await browser.get("/van-hanh/ton-dong")).status_code == 200
    clock.now += timedelta(minutes=55)
    assert (await browser.get("/van-hanh/ton-dong")).status_code == 303  # 8 h 15 min

    await sign_in(browser, provider, Role.OPERATOR, next_path="/van-hanh/ton-dong")
    clock.now += timedelta(minutes=61)
    assert (await browser.get("/van-hanh/ton-dong")).status_code == 303  # idle

    await sign_in(browser, provider, Role.OPERATOR, next_path="/van-hanh/ton-dong")
    signed_out = await browser.post(SIGN_OUT_PATH)
    assert signed_out.status_code == 303
    logout = urlsplit(signed_out.headers["location"])
    assert logout.path.endswith("/protocol/openid-connect/logout")
    assert parse_qs(logout.query)["id_token_hint"] == ["id-token"]
    assert (await browser.get("/van-hanh/ton-dong")).status_code == 303
    assert all(not s.alive(clock.now, timedelta(minutes=60)) for s in store.sessions.values())
