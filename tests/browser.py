"""Debian's Chromium, headless, as the browser tests drive it (Playwright), and what the page
tests share: an in-process app served on a loopback port, and signing in through the running
Keycloak's login page."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, Playwright

from deploy.local.identity import DEMO_PASSWORD
from tests.waiting import eventually

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEYCLOAK_LOGIN = "**/realms/onestop/protocol/openid-connect/auth**"


async def chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)


@asynccontextmanager
async def served_over_http(app: FastAPI) -> AsyncIterator[str]:
    """An app already started in-process (a simulated system's), on a free loopback port: the
    browser needs a URL, and Keycloak sends it back to any loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await eventually(started, what="the app served over HTTP")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def keycloak_sign_in(page: Page, username: str) -> None:
    """On Keycloak's login page (where a page asked for without a session has sent the browser),
    sign in as a demo user."""
    await page.wait_for_url(KEYCLOAK_LOGIN)
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(DEMO_PASSWORD)
    await page.locator("#kc-login").click()


async def signed_in_page(
    browser: Browser, url: str, user: str, *, width: int = 1280, audit: bool = False
) -> Page:
    """A new browser context that opens `url`, signs in as `user` and is back on `url`. Only an
    audit's context lets axe's script past the page's CSP (tests/accessibility.py)."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=audit)
    page = await context.new_page()
    await page.goto(url)
    await keycloak_sign_in(page, user)
    await page.wait_for_url(url)
    return page
