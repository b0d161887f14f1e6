"""The officials' pages sign in with the running Keycloak, in Debian's Chromium: a page asked
for sends the browser to Keycloak's login, and back to that page once signed in; the header
names who is signed in; signing out ends the session here and at Keycloak, so the next visit
asks for the password again. Screenshot: artifacts/office.png."""

from __future__ import annotations

from playwright.async_api import async_playwright

from deploy.local.stack import ROOT, Stack
from services.intake.office import JOURNEY_PATH
from services.intake.pages import BOARD_PATH, OFFICE_PATH
from services.intake.web_signin import SESSION_COOKIE
from tests.browser import KEYCLOAK_LOGIN, chromium, keycloak_sign_in
from tests.users import OPERATOR_USER, name_of

ARTIFACTS = ROOT / "artifacts"


async def test_an_operator_signs_in_on_the_office_pages_and_out_again(stack: Stack) -> None:
    intake = stack.url("intake")
    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844})
            page = await context.new_page()

            await page.goto(f"{intake}{OFFICE_PATH}")
            await keycloak_sign_in(page, OPERATOR_USER)
            await page.wait_for_url(f"{intake}{OFFICE_PATH}")
            header = page.locator("header.site")
            assert await name_of(OPERATOR_USER) in await header.inner_text()
            cookie = next(c for c in await context.cookies() if c["name"] == SESSION_COOKIE)
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "office.png"), full_page=True)

            # A code that cannot exist: the form says so, on the same page.
            await page.get_by_label("Mã hồ sơ").fill("not-a-code")
            await page.get_by_role("button", name="Xem hành trình").click()
            await page.wait_for_url(f"{intake}{JOURNEY_PATH}?ma=not-a-code")
            assert "không phải là mã hồ sơ" in await page.get_by_role("alert").inner_text()

            await page.get_by_role("button", name="Đăng xuất").click()
            await page.wait_for_url(f"{intake}{BOARD_PATH}")
            assert await page.get_by_role("button", name="Đăng xuất").count() == 0
            assert SESSION_COOKIE not in {c["name"] for c in await context.cookies()}

            # Keycloak's session ended too: the password is asked for again.
            await page.goto(f"{intake}{OFFICE_PATH}")
            await page.wait_for_url(KEYCLOAK_LOGIN)
            assert await page.locator("#password").count() == 1
        finally:
            await browser.close()
