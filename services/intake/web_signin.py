"""Sign-in for the officials' web pages, with the same identity provider as the API.

The page server is the OpenID Connect client (authorization code with PKCE, on the public
`onestop-portal` client): `/dang-nhap` sends the browser to Keycloak, `/dang-nhap/xong` takes
the code back, exchanges it server-side, verifies the access token exactly as the API does and
opens a session. The browser holds only a random session id (HttpOnly, SameSite=Lax cookie);
the database keeps a hash of it with who signed in, so a stolen database row opens nothing and
signing out ends the session everywhere at once. `/dang-xuat` (POST) closes the session and
ends the provider's single sign-on session too.

A session lasts at most `WEB_SESSION_HOURS` and ends after `WEB_SESSION_IDLE_MINUTES` without
a request. Roles and unit are those of the token at sign-in: a change in Keycloak applies at
the next sign-in (at most a working day later by default).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from shared.auth import (
    OidcSettings,
    Principal,
    ProviderUnavailable,
    Role,
    TokenVerifier,
    Unauthenticated,
)

SIGN_IN_PATH, CALLBACK_PATH, SIGN_OUT_PATH = "/dang-nhap", "/dang-nhap/xong", "/dang-xuat"
SESSION_COOKIE, SIGN_IN_COOKIE = "onestop_session", "onestop_sign_in"
SIGN_IN_TTL = timedelta(minutes=10)  # time to type a password at the provider
IDLE_TOUCH = timedelta(minutes=1)  # a session's last use is written at most this often


# --- the pure parts ----------------------------------------------------------------------------


def safe_next(path: str | None, default: str = "/") -> str:
    """Where to go after sign-in: a path on this site only (never `//host` or `https://…`)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return default
    return path


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingSignIn:
    state: str
    code_verifier: str
    next_path: str
    expires_at: datetime


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    id_token: str | None
    expires_at: datetime
    last_seen_at: datetime

    def alive(self, now: datetime, idle: timedelta) -> bool:
        return now < self.expires_at and now - self.last_seen_at < idle


# --- where sessions live -----------------------------------------------------------------------


class WebSessions(abc.ABC):
    @abc.abstractmethod
    async def begin(self, pending: PendingSignIn) -> None: ...

    @abc.abstractmethod
    async def take_pending(self, state: str, now: datetime) -> PendingSignIn | None:
        """The sign-in started with `state`, once: a replayed callback finds nothing."""

    @abc.abstractmethod
    async def open(self, key: str, session: WebSession) -> None: ...

    @abc.abstractmethod
    async def find(self, key: str) -> WebSession | None: ...

    @abc.abstractmethod
    async def touch(self, key: str, now: datetime) -> None: ...

    @abc.abstractmethod
    async def close(self, key: str) -> WebSession | None: ...

    @abc.abstractmethod
    async def purge(self, now: datetime, idle: timedelta) -> None:
        """Forget ended sessions and abandoned sign-ins."""


class PostgresWebSessions(WebSessions):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def begin(self, pending: PendingSignIn) -> None:
        await self._db.execute(
            "INSERT INTO web_sign_ins (state, code_verifier, next_path, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            pending.state,
            pending.code_verifier,
            pending.next_path,
            pending.expires_at,
        )

    async def take_pending(self, state: str, now: datetime) -> PendingSignIn | None:
        row = await self._db.fetchrow(
            "DELETE FROM web_sign_ins WHERE state = $1 RETURNING code_verifier, next_path,"
            " expires_at",
            state,
        )
        if row is None or row["expires_at"] <= now:
            return None
        return PendingSignIn(state, row["code_verifier"], row["next_path"], row["expires_at"])

    async def open(self, key: str, session: WebSession) -> None:
        p = session.principal
        await self._db.execute(
            "INSERT INTO web_sessions (key, subject, username, name, roles, unit_code, id_token,"
            " expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            key,
            p.subject,
            p.username,
            p.name,
            sorted(p.roles),
            p.unit_code,
            session.id_token,
            session.expires_at,
            session.last_seen_at,
        )

    async def find(self, key: str) -> WebSession | None:
        row = await self._db.fetchrow("SELECT * FROM web_sessions WHERE key = $1", key)
        return None if row is None else _session(row)

    async def touch(self, key: str, now: datetime) -> None:
        await self._db.execute("UPDATE web_sessions SET last_seen_at = $2 WHERE key = $1", key, now)

    async def close(self, key: str) -> WebSession | None:
        row = await self._db.fetchrow("DELETE FROM web_sessions WHERE key = $1 RETURNING *", key)
        return None if row is None else _session(row)

    async def purge(self, now: datetime, idle: timedelta) -> None:
        await self._db.execute(
            "DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2", now, now - idle
        )
        await self._db.execute("DELETE FROM web_sign_ins WHERE expires_at <= $1", now)


def _session(row: asyncpg.Record) -> WebSession:
    principal = Principal(
        subject=row["subject"],
        username=row["username"],
        name=row["name"],
        roles=frozenset(row["roles"]),
        unit_code=row["unit_code"],
    )
    return WebSession(principal, row["id_token"], row["expires_at"], row["last_seen_at"])


class SessionsUnitOfWork(Protocol):
    @property
    def web_sessions(self) -> WebSessions: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


# --- the provider's token endpoint -------------------------------------------------------------


class CodeExchange(Protocol):
    async def __call__(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]: ...


class TokenEndpoint:
    """Keycloak's token endpoint, reached server to server."""

    def __init__(self, url: str, client_id: str, *, timeout: float = 10.0) -> None:
        self._url = url
        self._client_id = client_id
        self._timeout = timeout

    async def __call__(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "client_id": self._client_id,
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self._url, data=form)
        except httpx.HTTPError as error:
            raise ProviderUnavailable("the identity provider cannot be reached") from error
        if response.status_code >= 500:
            raise ProviderUnavailable(f"the identity provider answered {response.status_code}")
        if response.status_code != 200:
            raise Unauthenticated("the identity provider refused the sign-in code; sign in again")
        tokens: dict[str, Any] = response.json()
        return tokens


# --- HTTP --------------------------------------------------------------------------------------


class SignInRequired(Exception):
    """A page needs a signed-in official: the browser goes to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageForbidden(Exception):
    """Signed in, but without the role or unit this page needs: a 403 page saying which."""


class SignInFailed(Exception):
    """The way back from the provider did not end in a session: a page saying why."""

    def __init__(self, message: str, status_code: int = status.HTTP_401_UNAUTHORIZED) -> None:
        super().__init__(message)
        self.status_code = status_code


class WebSignIn:
    def __init__(
        self,
        settings: OidcSettings,
        verifier: TokenVerifier,
        unit_of_work: Callable[[], SessionsUnitOfWork],
        clock: Callable[[], datetime],
        *,
        session_lifetime: timedelta,
        idle_timeout: timedelta,
        exchange: CodeExchange | None = None,
        signed_out_path: str = "/",
    ) -> None:
        base = f"{settings.oidc_issuer.rstrip('/')}/protocol/openid-connect"
        issuer = urlsplit(settings.oidc_issuer)
        self.provider_origin = f"{issuer.scheme}://{issuer.netloc}"
        self._authorize_url = f"{base}/auth"
        self._logout_url = f"{base}/logout"
        self._client_id = settings.oidc_portal_client_id
        self._exchange = exchange or TokenEndpoint(
            settings.oidc_token_endpoint or f"{base}/token", self._client_id
        )
        self._verifier = verifier
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._lifetime = session_lifetime
        self._idle = idle_timeout
        self._signed_out_path = signed_out_path

    def require(self, *roles: Role) -> Any:
        """A page dependency: the signed-in official, who must hold one of `roles`."""

        async def signed_in(request: Request) -> Principal:
            principal = await self.current(request)
            if principal is None:
                raise SignInRequired(safe_next(_path_of(request)))
            if roles and not principal.has(*roles):
                raise PageForbidden(
                    f"Trang này dành cho {', '.join(roles)}; tài khoản {principal.username}"
                    " không có vai trò đó."
                )
            return principal

        return Depends(signed_in)

    async def current(self, request: Request) -> Principal | None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        key, now = session_hash(session_id), self._clock()
        async with self._unit_of_work() as uow:
            session = await uow.web_sessions.find(key)
            if session is None or not session.alive(now, self._idle):
                return None
            if now - session.last_seen_at >= IDLE_TOUCH:
                await uow.web_sessions.touch(key, now)
                await uow.commit()
        request.state.principal = session.principal
        return session.principal

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get(SIGN_IN_PATH)
        async def sign_in(request: Request, next: str | None = Query(default=None)) -> Response:
            state, (verifier, challenge) = secrets.token_urlsafe(32), pkce_pair()
            now = self._clock()
            async with self._unit_of_work() as uow:
                await uow.web_sessions.purge(now, self._idle)
                pending = PendingSignIn(state, verifier, safe_next(next), now + SIGN_IN_TTL)
                await uow.web_sessions.begin(pending)
                await uow.commit()
            query = urlencode(
                {
                    "client_id": self._client_id,
                    "response_type": "code",
                    "scope": "openid",
                    "redirect_uri": _callback_url(request),
                    "state": state,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
            response = RedirectResponse(f"{self._authorize_url}?{query}", status.HTTP_303_SEE_OTHER)
            # Binds the callback to this browser: a code posted by someone else finds no cookie.
            _set_cookie(request, response, SIGN_IN_COOKIE, state, SIGN_IN_TTL)
            return response

        @router.get(CALLBACK_PATH)
        async def callback(
            request: Request,
            code: str | None = Query(default=None, max_length=4096),
            state: str | None = Query(default=None, max_length=256),
            error: str | None = Query(default=None, max_length=256),
        ) -> Response:
            if error:
                raise SignInFailed(f"Máy chủ định danh không đăng nhập cho bạn ({error}).")
            if not code or not state or request.cookies.get(SIGN_IN_COOKIE) != state:
                raise SignInFailed("Lượt đăng nhập này không bắt đầu từ trình duyệt này.")
            now = self._clock()
            async with self._unit_of_work() as uow:
                pending = await uow.web_sessions.take_pending(state, now)
                await uow.commit()
            if pending is None:
                raise SignInFailed("Lượt đăng nhập này đã hết hạn hoặc đã được dùng.")
            try:
                tokens = await self._exchange(code, pending.code_verifier, _callback_url(request))
                principal = await self._verifier.verify(str(tokens.get("access_token", "")))
            except Unauthenticated as refused:
                raise SignInFailed(f"Không đăng nhập được: {refused}.") from refused
            except ProviderUnavailable as down:
                raise SignInFailed(
                    "Máy chủ định danh đang không trả lời; hãy thử lại sau.",
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                ) from down
            session_id = secrets.token_urlsafe(32)
            session = WebSession(principal, tokens.get("id_token"), now + self._lifetime, now)
            async with self._unit_of_work() as uow:
                await uow.web_sessions.open(session_hash(session_id), session)
                await uow.commit()
            response = RedirectResponse(pending.next_path, status.HTTP_303_SEE_OTHER)
            _set_cookie(request, response, SESSION_COOKIE, session_id, self._lifetime)
            response.delete_cookie(SIGN_IN_COOKIE, path="/")
            return response

        @router.post(SIGN_OUT_PATH)
        async def sign_out(request: Request) -> Response:
            session_id = request.cookies.get(SESSION_COOKIE)
            ended = None
            if session_id:
                async with self._unit_of_work() as uow:
                    ended = await uow.web_sessions.close(session_hash(session_id))
                    await uow.commit()
            target = str(request.base_url).rstrip("/") + self._signed_out_path
            if ended is not None and ended.id_token:
                hint = {"id_token_hint": ended.id_token, "post_logout_redirect_uri": target}
                target = f"{self._logout_url}?{urlencode(hint)}"
            response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response

        return router

    def install(self, app: FastAPI, render_error: Callable[[int, str, str], Response]) -> None:
        """The sign-in routes, and what a page shows when sign-in is missing or not enough."""
        app.include_router(self.router())

        async def on_sign_in_required(_: Request, error: Exception) -> Response:
            assert isinstance(error, SignInRequired)
            target = f"{SIGN_IN_PATH}?{urlencode({'next': error.next_path})}"
            return RedirectResponse(target, status.HTTP_303_SEE_OTHER)

        async def on_forbidden(_: Request, error: Exception) -> Response:
            return render_error(status.HTTP_403_FORBIDDEN, "Không được phép", str(error))

        async def on_failed(_: Request, error: Exception) -> Response:
            assert isinstance(error, SignInFailed)
            return render_error(error.status_code, "Chưa đăng nhập được", str(error))

        app.add_exception_handler(SignInRequired, on_sign_in_required)
        app.add_exception_handler(PageForbidden, on_forbidden)
        app.add_exception_handler(SignInFailed, on_failed)


def _path_of(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _callback_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + CALLBACK_PATH


def _set_cookie(
    request: Request, response: Response, name: str, value: str, lifetime: timedelta
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
