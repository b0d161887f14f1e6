"""A dossier's journey, as an official reads it in Debian's Chromium, signed in through the
running Keycloak: the services on the real Kafka broker and PostgreSQL server in simulated time
(so that units hold the dossier for working hours, not seconds), intake's app served over
HTTP. Sở Công Thương asks for a supplement (the clock pauses until the desk receives it),
consults Văn phòng Đăng ký đất đai (which replies) and hands the dossier to Công an. An
officer of Công an opens the journey: a bar per unit, the pause and the consultation marked
on Sở Công Thương's bar, the control slip's hand-overs, the letters and the link to the
submission's trace. An officer of an unrelated unit gets 403. No applicant data on the page,
and opening it is not logged as a personal-data access.

Screenshots: artifacts/journey.png (a phone) and artifacts/journey-desktop.png; axe-core finds
no serious or critical violation on the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from playwright.async_api import async_playwright

from deploy.local.stack import ROOT
from services.intake.office import JOURNEY_PATH
from shared.clock import SimulatedClock
from tests.accessibility import assert_accessible
from tests.browser import chromium, keycloak_sign_in, served_over_http, signed_in_page
from tests.factories import APPLICANT, submission
from tests.system import System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of, officer_of

DESK, CONG_THUONG, CONG_AN = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
NONG_NGHIEP, UNRELATED = "000.14.01.H29", "000.41.01.H29"
INTER_AGENCY = "2.000647"  # Sở Công Thương, then Công an, then Sở Công Thương again
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    async with simulated_system(infrastructure, hcmc(2026, 12, 1, 8, 0), "journey") as running:
        yield running


@pytest.fixture(scope="module")
async def intake_url(system: System) -> AsyncIterator[str]:
    async with served_over_http(system.apps["intake"]) as url:
        yield url


async def act(system: System, user: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with system.client("intake", user) as client:
        return await client.post(path, json=body) if body is not None else await client.post(path)


async def view(system: System, code: str) -> dict[str, Any]:
    async with system.client("intake", OPERATOR_USER) as client:
        found = await client.get(f"/v1/dossiers/{code}")
    assert found.status_code == 200, found.text
    result: dict[str, Any] = found.json()
    return result


async def until(system: System, code: str, check: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await view(system, code)
        return found if check(found) else None

    result: dict[str, Any] = await eventually(probe, what=what)
    return result


def set_clock(system: System, moment: datetime) -> None:
    clock = system.clock
    assert isinstance(clock, SimulatedClock)
    clock.set(moment)


async def journey_of_a_dossier(system: System) -> dict[str, Any]:
    """Received, paused for a supplement, consulted, handed to Công an; returns the receipt."""
    posted = await act(
        system, counter_of(DESK), "/v1/dossiers", submission(procedure_code=INTER_AGENCY)
    )
    assert posted.status_code == 201, posted.text
    receipt: dict[str, Any] = posted.json()
    code = receipt["dossier_code"]
    base = f"/v1/dossiers/{code}"
    await until(
        system,
        code,
        lambda v: v["deadline"] and v["routing"] and v["status"]["code"] == 4,
        "routed and clocked",
    )

    set_clock(system, hcmc(2026, 12, 1, 10, 0))
    asked = await act(
        system,
        officer_of(CONG_THUONG),
        f"{base}/supplement-requests",
        {"reason": "Thiếu bản vẽ", "missing_documents": ["Bản vẽ mặt bằng cửa hàng"]},
    )
    assert asked.status_code == 200, asked.text
    await until(system, code, lambda v: v["deadline"]["paused_since"], "the clock paused")

    set_clock(system, hcmc(2026, 12, 2, 9, 0))
    supplied = await act(system, counter_of(DESK), f"{base}/supplements")
    assert supplied.status_code == 200, supplied.text
    await until(
        system,
        code,
        lambda v: v["deadline"]["paused_since"] is None and v["status"]["code"] == 4,
        "the clock resumed",
    )

    set_clock(system, hcmc(2026, 12, 2, 10, 0))
    consulted = await act(
        system,
        officer_of(CONG_THUONG),
        f"{base}/consultations",
        {
            "question": "Vị trí cửa hàng có phù hợp quy hoạch không?",
            "documents": ["Bản vẽ mặt bằng cửa hàng"],
            "consulted_unit_codes": [NONG_NGHIEP],
        },
    )
    assert consulted.status_code == 201, consulted.text
    consultation_id = consulted.json()["consultations"][0]["consultation_id"]
    set_clock(system, hcmc(2026, 12, 2, 14, 0))
    replied = await act(
        system,
        officer_of(NONG_NGHIEP),
        f"{base}/consultations/{consultation_id}/reply",
        {"opinion": "Phù hợp quy hoạch."},
    )
    assert replied.status_code == 200, replied.text

    set_clock(system, hcmc(2026, 12, 2, 15, 0))
    handed = await act(
        system, officer_of(CONG_THUONG), f"{base}/hand-offs", {"to_unit_code": CONG_AN}
    )
    assert handed.status_code == 202, handed.text
    await until(
        system,
        code,
        lambda v: (
            v["routing"]["current_unit_code"] == CONG_AN and v["routing"]["steps"][0]["timeliness"]
        ),
        "handed to Công an, step 1 judged",
    )
    set_clock(system, hcmc(2026, 12, 3, 11, 0))  # Công an has held it for a while
    return receipt


async def test_an_involved_officer_reads_the_journey_and_an_unrelated_one_is_refused(
    system: System, intake_url: str
) -> None:
    receipt = await journey_of_a_dossier(system)
    code = receipt["dossier_code"]
    url = f"{intake_url}{JOURNEY_PATH}/{code}"
    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            page = await signed_in_page(browser, url, officer_of(CONG_AN), width=390)
            html = await page.content()
            assert code in await page.get_by_role("heading", level=1).inner_text()

            # A bar per unit that held it: Sở Công Thương (done), Công an (holding now).
            units = page.locator("section.unit")
            assert await units.count() == 2
            first, second = units.nth(0), units.nth(1)
            assert "Sở Công Thương" in await first.get_by_role("heading").inner_text()
            assert "Công an" in await second.get_by_role("heading").inner_text()
            bar = first.get_by_role("img")
            title = await bar.get_attribute("aria-label") or ""
            assert title.startswith("Bước 1, Sở Công Thương") and "tạm dừng" in title
            assert await first.locator("rect.mark.pause").count() == 1
            assert await first.locator("rect.mark.consultation").count() == 1
            marks = await first.locator("ul.marks").inner_text()
            assert "chờ công dân bổ sung hồ sơ" in marks and "Lấy ý kiến" in marks
            assert await second.locator("rect.mark").count() == 0
            assert "nay" in await second.locator(".bar-label").inner_text()
            figures = page.locator("#thoi-gian-giu tbody tr")
            assert await figures.count() == 2

            # The control slip: to Sở Công Thương from the desk, then to Công an.
            rows = page.locator("#phieu-06 tbody tr")
            assert await rows.count() == 2
            handed = await rows.nth(1).inner_text()
            assert "Sở Công Thương" in handed and "Công an" in handed
            assert "03/12/2026" not in handed and "02/12/2026 15:00" in handed
            verdict = await rows.nth(1).locator("td").nth(2).inner_text()
            assert verdict in ("Trước hạn", "Đúng hạn")

            letters = await page.locator("#van-ban-ho-so").inner_text()
            assert "Mẫu 02" in letters and "Văn bản trả lời ý kiến" in letters

            link = page.get_by_role("link", name="Xem dấu vết tiếp nhận trong Zipkin")
            assert receipt["trace_id"]
            href = await link.get_attribute("href")
            assert href == f"http://127.0.0.1:9411/zipkin/traces/{receipt['trace_id']}"

            for value in APPLICANT.values():
                assert str(value) not in html
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "journey.png"), full_page=True)
            desktop = await signed_in_page(browser, url, officer_of(CONG_AN), audit=True)
            await desktop.screenshot(path=str(ARTIFACTS / "journey-desktop.png"), full_page=True)
            await assert_accessible(desktop, "the journey")

            # An officer of a unit that neither received, processed nor was consulted on it.
            other = await browser.new_context()
            refused_page = await other.new_page()
            await refused_page.goto(url)
            await keycloak_sign_in(refused_page, officer_of(UNRELATED))
            await refused_page.wait_for_url(url)
            answer = await refused_page.request.get(url)
            assert answer.status == 403
            alert = await refused_page.get_by_role("alert").inner_text()
            assert code in alert and "đơn vị của bạn" in alert

            unknown = await refused_page.request.get(f"{intake_url}{JOURNEY_PATH}/{code[:-4]}9999")
            assert unknown.status == 404
        finally:
            await browser.close()

    # The page shows no personal data: opening it is no personal-data access (the operator's
    # API reads above are, which shows the log is written for this dossier).
    async with system.client("intake", OPERATOR_USER) as client:
        log = await client.get("/v1/personal-data-access", params={"dossier_code": code})
    assert log.status_code == 200, log.text
    purposes = {entry["purpose"] for entry in log.json()}
    assert "GET /v1/dossiers/{code}" in purposes
    assert not any(JOURNEY_PATH in purpose for purpose in purposes), purposes
