"""The public pages through the services running as processes, in Debian's Chromium: the
lateness board shows the figures /v1/reports/indicators gives for the same period; the
citizen's look-up with the receipt's PIN shows the status and what to bring, with a wrong
PIN or an unknown code the same "not found"; the PIN never appears in a URL; the read is in
the personal-data access log; no page holds the applicant's data. From the result, the
citizen rates the service once (a wrong PIN: "not found"; a second rating: refused); the
rating shows on the board, its comment nowhere public. axe-core finds no serious or critical
accessibility violation on any public page.

Screenshots: artifacts/board.png, artifacts/lookup.png and artifacts/rating.png."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

from deploy.local import kafka_access
from deploy.local.stack import ROOT, Stack
from services.intake.pages import LOOKUP_PURPOSE, NOT_FOUND_MESSAGE, STATUS_LABELS
from services.intake.ratings import (
    ALREADY_RATED_MESSAGE,
    RATING_PATH,
    RATING_PURPOSE,
    THANKS_MESSAGE,
)
from shared.events import DossierStatus, ServiceRated, Topic
from tests.accessibility import assert_accessible, violations
from tests.board import BOARD_FIGURES
from tests.browser import chromium
from tests.conftest import TEST_NAMESPACE
from tests.factories import APPLICANT, submission
from tests.kafka_reader import read_until
from tests.users import OPERATOR_USER, bearer, counter_of, officer_of
from tests.waiting import eventually

DESK = "000.00.00.H29"
WITH_SUPPLEMENT, ONE_STEP = "1.004227", "1.000894"  # ONE_STEP: HOLDER alone, half a day
HOLDER = "000.41.01.H29"
ARTIFACTS = ROOT / "artifacts"
MISSING = "Bản sao chứng thực Giấy chứng nhận quyền sử dụng đất"
INDICATOR_FIGURES = ("received_counter", "returned", "apologies_issued", "apologies_missing")
CANARY = (
    "<!DOCTYPE html><html><head><title>x</title></head><body><main><h1>x</h1>"
    '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><p style="color:#bbb">faint</p>'
    "</main></body></html>"
)
# The citizen may type anything in the comment, their phone number too: it stays in intake.
COMMENT = f"Cán bộ hướng dẫn tận tình. Cần gì xin gọi {APPLICANT['phone']}."


async def call(stack: Stack, method: str, path: str, user: str | None = None, **kw: Any) -> Any:
    headers = {**kw.pop("headers", {}), **(await bearer(user) if user else {})}
    async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=30) as client:
        return await client.request(method, path, headers=headers, **kw)


async def submit(stack: Stack, procedure: str) -> dict[str, Any]:
    posted = await call(
        stack, "POST", "/v1/dossiers", counter_of(DESK), json=submission(procedure_code=procedure)
    )
    assert posted.status_code == 201, posted.text
    receipt: dict[str, Any] = posted.json()
    return receipt


async def dossier(stack: Stack, code: str) -> dict[str, Any]:
    found = await call(stack, "GET", f"/v1/dossiers/{code}", OPERATOR_USER)
    assert found.status_code == 200, found.text
    view: dict[str, Any] = found.json()
    return view


async def in_status(stack: Stack, code: str, status: DossierStatus) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await dossier(stack, code)
        return view if view["status"]["code"] == status else None

    found: dict[str, Any] = await eventually(check, what=f"{code} in status {status.name}")
    return found


async def test_the_board_and_the_citizen_look_up(stack: Stack, kafka_bootstrap: str) -> None:
    paused = await submit(stack, WITH_SUPPLEMENT)
    done = await submit(stack, ONE_STEP)
    processing = await submit(stack, ONE_STEP)

    holder = (await in_status(stack, paused["dossier_code"], DossierStatus.PROCESSING))["routing"]
    asked = await call(
        stack,
        "POST",
        f"/v1/dossiers/{paused['dossier_code']}/supplement-requests",
        officer_of(holder["current_unit_code"]),
        json={"reason": "Thiếu bản sao chứng thực", "missing_documents": [MISSING]},
    )
    assert asked.status_code == 200, asked.text
    await in_status(stack, done["dossier_code"], DossierStatus.PROCESSING)
    ready = f"/v1/dossiers/{done['dossier_code']}/result"
    result = await call(stack, "POST", ready, officer_of(HOLDER))
    assert result.status_code == 202, result.text
    finished = await in_status(stack, done["dossier_code"], DossierStatus.PROCESSED)
    await eventually(
        lambda: _completed(stack, done["dossier_code"]), what="the completion recorded"
    )
    await in_status(stack, processing["dossier_code"], DossierStatus.PROCESSING)
    await in_status(stack, paused["dossier_code"], DossierStatus.SUPPLEMENT_REQUESTED)
    assert finished["routing"]["competent_unit_code"] == HOLDER

    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            lookup_html = await check_look_up(stack, page, paused)
            rating_html = await check_rating(stack, page, paused)
            board_html = await check_board(stack, page, rated_by=paused)
            # axe's script needs the pages' CSP bypassed: in this test's context only.
            audit = await browser.new_page(bypass_csp=True, viewport={"width": 390, "height": 844})
            await check_accessibility(stack, audit, processing)
        finally:
            await browser.close()

    for value in APPLICANT.values():
        assert value not in board_html
        assert value not in lookup_html
        assert value not in rating_html  # the comment holds the phone: shown nowhere

    log = await call(
        stack,
        "GET",
        "/v1/personal-data-access",
        OPERATOR_USER,
        params={"dossier_code": paused["dossier_code"]},
    )
    assert log.status_code == 200, log.text
    entries = log.json()
    reads = [e for e in entries if e["purpose"] == LOOKUP_PURPOSE]
    # The right PIN's reads only (the look-up, then again once rated): a wrong PIN reads nothing.
    assert len(reads) == 2 and {e["subject"] for e in reads} == {"citizen"}, entries
    # The rating checks the PIN again: the invalid form, the rating, the refused second one.
    rating_checks = [e for e in entries if e["purpose"] == RATING_PURPOSE]
    assert len(rating_checks) == 3 and {e["subject"] for e in rating_checks} == {"citizen"}

    # The rating is an event of the dossier's timeline: its score and units, not the comment.
    timeline = await call(
        stack, "GET", f"/v1/dossiers/{paused['dossier_code']}/timeline", OPERATOR_USER
    )
    assert timeline.status_code == 200, timeline.text
    events = timeline.json()["events"]
    rated = [e for e in events if e["event_type"] == ServiceRated.TYPE]
    assert len(rated) == 1, events
    assert rated[0]["details"]["score"] == 4 and rated[0]["details"]["commented"] is True
    assert rated[0]["details"]["unit_codes"][:2] == [DESK, holder["current_unit_code"]]
    assert COMMENT not in timeline.text and APPLICANT["phone"] not in timeline.text

    # Published on intake's public topic, as a downstream system reads it: without the comment.
    code = paused["dossier_code"]
    records = await read_until(
        kafka_access.connection("downstream", kafka_bootstrap),
        [TEST_NAMESPACE + Topic.INTAKE],
        lambda seen: any(r.key == code and r.headers["ce_type"] == ServiceRated.TYPE for r in seen),
        namespace=TEST_NAMESPACE,
    )
    [published] = [
        r for r in records if r.key == code and r.headers["ce_type"] == ServiceRated.TYPE
    ]
    event = ServiceRated.model_validate_json(published.value)
    assert (event.score, event.unit_codes) == (4, tuple(rated[0]["details"]["unit_codes"]))
    assert APPLICANT["phone"].encode() not in published.value


async def _completed(stack: Stack, code: str) -> bool:
    view = await dossier(stack, code)
    return bool(view["deadline"] and view["deadline"]["completed_at"])


async def check_rating(stack: Stack, page: Page, receipt: dict[str, Any]) -> str:
    """On the look-up's result page: rate 4 with a comment. Before that, the same form with a
    wrong PIN is "not found", and without a score names the missing field; after it, the form
    is gone and a second rating is refused."""
    code, pin = receipt["dossier_code"], receipt["lookup_pin"]
    form = {"ma_ho_so": code, "ma_pin": pin, "diem": "5", "y_kien": ""}

    wrong = await call(stack, "POST", RATING_PATH, data={**form, "ma_pin": pin + "0"})
    unknown = await call(
        stack, "POST", RATING_PATH, data={**form, "ma_ho_so": f"{DESK}-991231-9999"}
    )
    assert wrong.status_code == unknown.status_code == 404
    assert NOT_FOUND_MESSAGE in wrong.text and NOT_FOUND_MESSAGE in unknown.text
    assert "Hồ sơ " + code not in wrong.text  # nothing of the dossier

    no_score = await call(stack, "POST", RATING_PATH, data={**form, "diem": ""})
    assert no_score.status_code == 422 and "Mức độ hài lòng: hãy chọn" in no_score.text

    # As a citizen would, on the result page the look-up left open.
    await page.get_by_label("4 — Hài lòng").check()
    await page.get_by_label("Ý kiến góp ý (không bắt buộc)").fill(COMMENT)
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name="Gửi đánh giá").click()
    answer = await navigation.value
    assert answer is not None and answer.status == 200
    assert pin not in page.url and "ma_pin" not in page.url
    assert await page.get_by_role("status").inner_text() == THANKS_MESSAGE
    assert await page.locator(".rating .rated").get_attribute("data-score") == "4"
    assert await page.locator('input[name="diem"]').count() == 0  # the form is gone
    html = await page.content()
    assert pin not in html and COMMENT not in html
    await page.screenshot(path=str(ARTIFACTS / "rating.png"), full_page=True)

    again = await call(stack, "POST", RATING_PATH, data={**form, "diem": "1"})
    assert again.status_code == 409 and ALREADY_RATED_MESSAGE in again.text
    assert 'name="diem"' not in again.text and 'data-score="4"' in again.text

    # Looked up again, the dossier shows its rating, and no form.
    await look_up(stack, page, code, pin)
    assert await page.locator(".rating .rated").get_attribute("data-score") == "4"
    assert await page.locator('input[name="diem"]').count() == 0
    return html


async def check_accessibility(stack: Stack, page: Page, receipt: dict[str, Any]) -> None:
    """axe on every public page and state: the board, the look-up form, not found, a result
    with the rating form, the form's field errors, the rating given, and the error page."""
    # The check can fail: on a page without a language, an image without text alternative and
    # grey on white, axe finds them.
    await page.set_content(CANARY)
    found = {v["id"]: v["impact"] for v in await violations(page)}
    assert {"html-has-lang", "image-alt", "color-contrast"} <= set(found), found
    assert found["image-alt"] == "critical" and found["color-contrast"] == "serious"

    base = stack.url("intake")
    await page.goto(f"{base}/bang-tien-do")
    await assert_accessible(page, "the board")
    await page.goto(f"{base}/bang-tien-do?thang=2026-13")
    await assert_accessible(page, "the error page")
    await look_up(stack, page, f"{DESK}-991231-9999", "000000")
    await assert_accessible(page, "the look-up, not found")
    await page.goto(f"{base}/tra-cuu")
    await assert_accessible(page, "the look-up form")
    await look_up(stack, page, receipt["dossier_code"], receipt["lookup_pin"])
    await assert_accessible(page, "the look-up's result with the rating form")
    # Sent without a score (the browser's own check switched off): the errors name the field.
    await page.locator("form.rating").evaluate("form => { form.noValidate = true; }")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Gửi đánh giá").click()
    assert "Mức độ hài lòng: hãy chọn" in await page.get_by_role("alert").inner_text()
    await assert_accessible(page, "the rating form's errors")
    await page.get_by_label("5 — Rất hài lòng").check()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Gửi đánh giá").click()
    await assert_accessible(page, "the rating given")


async def check_board(stack: Stack, page: Page, *, rated_by: dict[str, Any]) -> str:
    answer = await page.goto(f"{stack.url('intake')}/bang-tien-do")
    assert answer is not None and answer.status == 200
    start = await page.locator("time[data-from]").get_attribute("datetime")
    end = await page.locator("time[data-to]").get_attribute("datetime")
    api = await call(stack, "GET", "/v1/reports/indicators", params={"from": start, "to": end})
    assert api.status_code == 200, api.text
    expected = api.json()
    units = {unit["unit_code"]: unit for unit in expected["units"]}
    assert HOLDER in units and units[HOLDER]["done_early"] + units[HOLDER]["done_on_time"] >= 1

    for code, figures in [*units.items(), ("", expected["total"])]:
        row = page.locator(f'#bang-tien-do tr[data-unit="{code}"]')
        if code:
            assert await row.locator("th").inner_text() == figures["unit_name"]
        for name in BOARD_FIGURES:
            cell = row.locator(f'td[data-figure="{name}"]')
            assert await cell.inner_text() == str(figures[name]), (code, name)
        in_progress = int(await row.locator('td[data-figure="due_soon"]').inner_text()) + int(
            await row.locator('td[data-figure="not_yet_due"]').inner_text()
        )
        assert in_progress == figures["in_progress_within_due"], code
        indicator_row = page.locator(f'#chi-so-766 tr[data-unit="{code}"]')
        for name in INDICATOR_FIGURES:
            cell = indicator_row.locator(f'td[data-figure="{name}"]')
            assert await cell.inner_text() == str(figures[name]), (code, name)
        satisfaction = page.locator(f'#hai-long-theo-don-vi tr[data-unit="{code}"]')
        if figures["ratings"]:
            ratings = satisfaction.locator('td[data-figure="ratings"]')
            assert await ratings.inner_text() == str(figures["ratings"]), code
        else:
            assert await satisfaction.count() == 0, code
    # The paused dossier's rating counts for the desk that received it and its holder.
    rated = await dossier(stack, rated_by["dossier_code"])
    for code in (DESK, rated["routing"]["competent_unit_code"]):
        assert units[code]["ratings"] >= 1 and units[code]["ratings_satisfied"] >= 1, code
    assert await page.locator("figure.chart svg rect").count() >= 1
    assert "script-src" not in answer.headers["content-security-policy"]  # none: default-src

    wrong = await call(stack, "GET", "/bang-tien-do", params={"thang": "2026-13"})
    assert wrong.status_code == 422 and "ví dụ 2026-11" in wrong.text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)
    return await page.content()


async def check_look_up(stack: Stack, page: Page, receipt: dict[str, Any]) -> str:
    code, pin = receipt["dossier_code"], receipt["lookup_pin"]

    await look_up(stack, page, code, pin + "0")  # a wrong PIN
    assert await page.get_by_role("alert").inner_text() == NOT_FOUND_MESSAGE
    await look_up(stack, page, f"{DESK}-991231-9999", pin)  # an unknown code
    assert await page.get_by_role("alert").inner_text() == NOT_FOUND_MESSAGE

    headers = await look_up(stack, page, code.lower(), pin)
    assert pin not in page.url and "ma_pin" not in page.url
    status = page.locator(".result .status")
    label = STATUS_LABELS[DossierStatus.SUPPLEMENT_REQUESTED]
    assert await status.inner_text() == label
    assert MISSING in await page.locator(".awaited").inner_text()
    assert await page.get_by_role("alert").count() == 0
    html = await page.content()
    # The PIN is never shown; it goes back only in the rating form's hidden field, for a POST.
    assert pin not in await page.locator("body").inner_text()
    assert html.count(pin) == 1
    hidden = page.locator(f'form[method="post"][action="{RATING_PATH}"] input[name="ma_pin"]')
    assert await hidden.get_attribute("type") == "hidden"
    assert headers["cache-control"] == "no-store"
    await page.screenshot(path=str(ARTIFACTS / "lookup.png"), full_page=True)

    # Another site's form cannot post a look-up (the browser says it is cross-site).
    cross = await call(
        stack,
        "POST",
        "/tra-cuu",
        data={"ma_ho_so": code, "ma_pin": pin},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    return html


async def look_up(stack: Stack, page: Page, code: str, pin: str) -> dict[str, str]:
    """As a citizen would: type into the labelled fields, submit with the keyboard. The
    answer's headers."""
    await page.goto(f"{stack.url('intake')}/tra-cuu")
    await page.get_by_label("Mã hồ sơ").fill(code)
    await page.get_by_label("Mã PIN").fill(pin)
    async with page.expect_navigation() as navigation:
        await page.get_by_label("Mã PIN").press("Enter")
    answer = await navigation.value
    assert answer is not None
    return await answer.all_headers()
