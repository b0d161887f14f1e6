"""Debian's Chromium, headless, as the browser tests drive it (Playwright)."""

from __future__ import annotations

from playwright.async_api import Browser, Playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
