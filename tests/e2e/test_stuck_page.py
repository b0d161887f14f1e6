"""The operators' "stuck now" page in Debian's Chromium, on the real Kafka broker, PostgreSQL
and Keycloak, in simulated time: the four services run in this process on a simulated clock,
intake's app is served over HTTP so that the browser signs in through Keycloak's login page.

A dossier held by Sở Công Thương past its step's time, with a consultation awaiting reply, is
listed under that unit with who holds it, how far past due and its trace link; filtering by
another unit hides it; a second dossier that becomes stuck while the page is open appears
without a reload; an officer of another unit sees their own unit only. No applicant's data
on the page; axe-core finds no serious violation. Screenshot: artifacts/stuck.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from deploy.local.stack import ROOT
from services.intake.office import JOURNEY_PATH, STUCK_PATH
from services.intake.stuck import STUCK_TABLE_PATH, wall_time
from shared.clock import SimulatedClock
from shared.telemetry import DossierAttribute
from tests.accessibility import assert_accessible
from tests.browser import chromium, served_over_http, signed_in_page
from tests.factories import APPLICANT, submission
from tests.system import System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of, name_of, officer_of

ARTIFACTS = ROOT / "artifacts"
DESK, CONG_THUONG, CONG_AN = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
BEN_THANH = "000.41.02.H29"  # Ủy ban nhân dân phường Bến Thành
NONG_NGHIEP = "000.14.01.H29"
INTER_AGENCY = "2.000647"  # Sở Công Thương, Công an, Sở Công Thương
EXTRACT = "1.004873"  # a civil-status extract: phường Bến Thành alone, four working hours
TRACE_UI = "http://127.0.0.1:9411/zipkin"


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    start = hcmc(2026, 12, 1, 8, 0)  # a Tuesday morning
    # Simulated time jumps by days: the officials' web sessions must outlive the jumps.
    intake = {
        "stuck_refresh_seconds": 0.5,
        "trace_ui_url": TRACE_UI,
        "web_session_hours": 24,
        "web_session_idle_minutes": 24 * 60,
    }
    settings = {"intake": intake}
    async with simulated_system(infrastructure, start, "stuck", settings) as running:
        yield running


@pytest.fixture(scope="module")
async def intake_url(system: System) -> AsyncIterator[str]:
    async with served_over_http(system.apps["intake"]) as url:
        yield url


def clock_of(system: System) -> SimulatedClock:
    assert isinstance(system.clock, SimulatedClock)
    return system.clock


async def submit(system: System, procedure: str) -> str:
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code=procedure))
    assert response.status_code == 201, response.text
    return str(response.json()["dossier_code"])


async def planned(system: System, code: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        async with system.client("intake", OPERATOR_USER) as client:
            found: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
        routing, deadline = found["routing"], found["deadline"]
        if routing and deadline and all(step["due_at"] for step in routing["steps"]):
            return found
        return None

    return await eventually(check, what=f"{code} routed, with its steps' due times")


def submission_trace_ids(system: System, code: str) -> set[str]:
    return {
        format(span.context.trace_id, "032x")
        for span in system.spans.get_finished_spans()
        if span.context is not None and (span.attributes or {}).get(DossierAttribute.CODE) == code
    }


async def test_the_operators_see_what_is_stuck_now_and_officials_their_own_unit(
    system: System, intake_url: str
) -> None:
    clock = clock_of(system)
    held = await submit(system, INTER_AGENCY)
    first_step = (await planned(system, held))["routing"]["steps"][0]
    assert first_step["unit_code"] == CONG_THUONG
    # Sở Công Thương consults Nông nghiệp, and keeps the dossier past its step's time.
    async with system.client("intake", officer_of(CONG_THUONG)) as client:
        asked = await client.post(
            f"/v1/dossiers/{held}/consultations",
            json={
                "question": "Khu đất của cửa hàng có đúng mục đích sử dụng không?",
                "documents": ["Bản vẽ mặt bằng cửa hàng"],
                "consulted_unit_codes": [NONG_NGHIEP],
            },
        )
    assert asked.status_code == 201, asked.text
    reply_due = datetime.fromisoformat(asked.json()["consultations"][0]["reply_due_at"])
    held_due = datetime.fromisoformat(first_step["due_at"])
    clock.set(held_due + timedelta(hours=2))
    # A second dossier, received now, is not stuck yet when the operator signs in: the clock
    # stops just before its due time (sessions last a day; the jumps after sign-in are short).
    later = await submit(system, EXTRACT)
    later_step = (await planned(system, later))["routing"]["steps"][0]
    assert later_step["unit_code"] == BEN_THANH
    later_due = datetime.fromisoformat(later_step["due_at"])
    clock.set(later_due - timedelta(minutes=5))

    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            page = await signed_in_page(browser, f"{intake_url}{STUCK_PATH}", OPERATOR_USER)
            overdue = wall_time(clock() - held_due)
            await check_listed(system, page, held, overdue, reply_overdue=reply_due < clock())
            assert await page.locator(f'tr[data-dossier="{later}"]').count() == 0
            await check_live_refresh(page, clock, later, later_due)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "stuck.png"), full_page=True)
            await check_filter(page, held, later)
            await check_own_unit_only(browser, intake_url, held, later)
        finally:
            await browser.close()


async def check_listed(
    system: System, page: Page, held: str, overdue_wall: str, *, reply_overdue: bool
) -> None:
    section = page.locator(f'section[data-unit="{CONG_THUONG}"]')
    assert "Sở Công Thương" in await section.get_by_role("heading").inner_text()
    row = section.locator(f'tr[data-dossier="{held}"]')
    link = row.get_by_role("link", name=held, exact=True)
    assert await link.get_attribute("href") == f"{JOURNEY_PATH}/{held}"
    holder = await row.locator("td.holder").inner_text()
    assert "Sở Công Thương" in holder
    assert await name_of(officer_of(CONG_THUONG)) in holder  # who asked for the opinion
    overdue = await row.locator("td.overdue").inner_text()
    assert "làm việc" in overdue and f"{overdue_wall} thực tế" in overdue, overdue
    consulting = await row.locator("td.consulting").inner_text()
    assert "Văn phòng Đăng ký đất đai" in consulting
    assert ("đã quá hạn" in consulting) is reply_overdue, consulting
    trace = await row.locator("a.trace").get_attribute("href")
    assert trace is not None and trace.startswith(f"{TRACE_UI}/traces/")
    assert trace.rsplit("/", 1)[1] in submission_trace_ids(system, held)
    counts = await page.locator("ul.counts").inner_text()
    assert "Sở Công Thương: 1" in counts
    fragment = await page.request.get(page.url.replace(STUCK_PATH, STUCK_TABLE_PATH))
    assert fragment.status == 200 and held in await fragment.text()
    for html in (await page.content(), await fragment.text()):
        for value in APPLICANT.values():
            assert value not in html


async def check_live_refresh(
    page: Page, clock: SimulatedClock, later: str, later_due: datetime
) -> None:
    """A dossier that becomes stuck while the page is open appears without a reload."""
    assert await page.get_by_role("button", name="Tạm dừng tự cập nhật").is_visible()
    before = await page.locator(".updated time").get_attribute("datetime")
    clock.set(later_due + timedelta(minutes=30))
    row = page.locator(f'section[data-unit="{BEN_THANH}"] tr[data-dossier="{later}"]')
    await row.wait_for()  # the script fetched the table again: no reload
    assert await page.locator(".updated time").get_attribute("datetime") != before
    # The pause control (WCAG 2.2.1) stops the refresh, and says so.
    pause = page.get_by_role("button", name="Tạm dừng tự cập nhật")
    await pause.click()
    assert await page.get_by_role("button", name="Tiếp tục tự cập nhật").is_visible()
    assert "Đã tạm dừng" in await page.locator("#trang-thai").inner_text()
    await page.get_by_role("button", name="Tiếp tục tự cập nhật").click()


async def check_filter(page: Page, held: str, later: str) -> None:
    await page.get_by_label("Đơn vị", exact=True).select_option(CONG_AN)
    await page.get_by_role("button", name="Lọc").click()
    await page.wait_for_url(f"**{STUCK_PATH}?don_vi={CONG_AN}**")
    assert await page.locator("tr[data-dossier]").count() == 0
    assert "Không có hồ sơ nào quá thời gian được giao" in await page.inner_text("main")
    await page.get_by_label("Đơn vị", exact=True).select_option(CONG_THUONG)
    await page.get_by_role("button", name="Lọc").click()
    await page.wait_for_url(f"**{STUCK_PATH}?don_vi={CONG_THUONG}**")
    assert await page.locator(f'tr[data-dossier="{held}"]').count() == 1
    assert await page.locator(f'tr[data-dossier="{later}"]').count() == 0
    # By field: Hộ tịch is the extract's, not the shop's.
    await page.get_by_label("Đơn vị", exact=True).select_option("")
    await page.get_by_label("Lĩnh vực", exact=True).select_option("Hộ tịch")
    await page.get_by_role("button", name="Lọc").click()
    await page.wait_for_url("**linh_vuc=**")
    assert await page.locator(f'tr[data-dossier="{later}"]').count() == 1
    assert await page.locator(f'tr[data-dossier="{held}"]').count() == 0


async def check_own_unit_only(browser: Browser, url: str, held: str, later: str) -> None:
    """An officer of Công an asks for Sở Công Thương's dossiers: the page shows Công an's."""
    page = await signed_in_page(
        browser, f"{url}{STUCK_PATH}?don_vi={CONG_THUONG}", officer_of(CONG_AN)
    )
    main = await page.inner_text("main")
    assert "Bạn chỉ xem được hồ sơ do đơn vị mình giữ" in main and "Công an" in main
    assert await page.locator('select[name="don_vi"]').count() == 0
    assert held not in await page.content() and later not in await page.content()
    fragment = await page.request.get(f"{url}{STUCK_TABLE_PATH}?don_vi={CONG_THUONG}")
    assert fragment.status == 200
    assert held not in await fragment.text()
    # The officer of the unit that holds it does see it; axe finds no serious violation.
    page = await signed_in_page(browser, f"{url}{STUCK_PATH}", officer_of(CONG_THUONG), audit=True)
    assert await page.locator(f'tr[data-dossier="{held}"]').count() == 1
    assert await page.locator(f'tr[data-dossier="{later}"]').count() == 0
    await assert_accessible(page, "stuck now")
