"""An official signs in on intake's /docs page, as a browser would: Swagger UI sends them to
the running Keycloak (authorization code with PKCE, on the public `onestop-portal` client),
and the token it brings back opens a dossier of their unit. Debian's Chromium, headless."""

from __future__ import annotations

import httpx
from playwright.async_api import Locator, Page, async_playwright

from deploy.local.stack import ROOT, Stack
from tests.browser import chromium
from tests.factories import submission
from tests.users import bearer, counter_of

DESK = "000.00.00.H29"
ARTIFACTS = ROOT / "artifacts"


async def test_an_official_signs_in_on_the_docs_page_and_reads_a_dossier(stack: Stack) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url("intake"), headers=await bearer(counter_of(DESK))
    ) as client:
        posted = await client.post("/v1/dossiers", json=submission())
    assert posted.status_code == 201, posted.text
    code = posted.json()["dossier_code"]

    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"{stack.url('intake')}/docs")
            await sign_in(page, counter_of(DESK), "onestop-demo")
            status = await read_dossier(page, code)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await dossier_operation(page).screenshot(path=str(ARTIFACTS / "docs-signed-in.png"))
        finally:
            await browser.close()
    assert status == "200"


async def sign_in(page: Page, username: str, password: str) -> None:
    """Authorize → the `keycloak` scheme's Authorize → Keycloak's login page in a popup."""
    await page.get_by_role("button", name="Authorize").first.click()
    scheme = page.locator(".auth-container").filter(has_text="keycloak")
    async with page.expect_popup() as popup_opened:
        await scheme.locator("button.authorize").click()
    login = await popup_opened.value
    await login.locator("#username").fill(username)
    await login.locator("#password").fill(password)
    async with login.expect_event("close", timeout=30_000):
        await login.locator("#kc-login").click()
    await scheme.get_by_text("Authorized", exact=True).wait_for(timeout=30_000)
    await scheme.locator("button.btn-done").click()


async def read_dossier(page: Page, code: str) -> str:
    """Try it out: GET /v1/dossiers/{code}, with the token Swagger UI now holds."""
    operation = dossier_operation(page)
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.locator("input[placeholder=code]").fill(code)
    await operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    await status.wait_for(timeout=30_000)
    return (await status.inner_text()).strip()[:3]


def dossier_operation(page: Page) -> Locator:
    return page.locator(".opblock-get").filter(has_text="/v1/dossiers/{code}").first
