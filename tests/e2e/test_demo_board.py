"""The public lateness board after the month demo's traffic, in Debian's Chromium.

It runs `make demo`'s simulation (deploy/local/demo_month.simulated_month: the four services
in this process on a simulated clock, the real Kafka broker, PostgreSQL and Keycloak), made
smaller to fit the suite: OPTIONS below, 8 working days from Monday 2 November 2026 with 6
dossiers a day and the clock moving an hour a step (`make demo`: 22 days, 12 a day, half-hour
steps; the demo's own traffic model otherwise: late units, extensions, supplements, financial
obligations, consultations, send-backs, withdrawals), on a database of its own (the suite's
name + "_demo") and a throwaway namespace of the suite's (its ACLs granted). With the clock at
the month's end, intake's app is served over HTTP and the browser opens
`/bang-tien-do?thang=2026-11`, as a citizen would. Every unit that answered for
a dossier has its row, with the figures the demo printed (its QĐ 766 indicators) and those
`/v1/reports/indicators` gives for the page's period; the late rate is done late over done;
the officials with late steps are the demo's lateness board's; the satisfaction section is
there; the chart has a bar per unit; no applicant's data is in the HTML; axe-core finds no
serious violation.

Screenshots: artifacts/board-month.png (phone, full page) and artifacts/board-month-desktop.png
(docs/images/board.png is a copy of the latter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from deploy.local.demo.options import parse_options
from deploy.local.demo_month import Simulated, simulated_month
from deploy.local.identity import password_token
from deploy.local.stack import ROOT
from tests.accessibility import assert_accessible
from tests.board import BOARD_FIGURES
from tests.browser import chromium, served_over_http
from tests.conftest import TEST_DATABASE, throwaway_namespace
from tests.users import OPERATOR_USER

ARTIFACTS = ROOT / "artifacts"
MONTH = "2026-11"  # the demo's month: 8 working days from Monday 2 November stay inside it
OPTIONS = parse_options(
    ["--days", "8", "--per-day", "6", "--step-minutes", "60", "--max-seconds", "300"]
)
DATABASE = f"{TEST_DATABASE}_demo"  # beside the suite's: parallel checkouts name their own
INDICATOR_FIGURES = (
    "received_online",
    "received_counter",
    "received_post",
    "returned",
    "withdrawn",
    "apologies_issued",
    "apologies_on_time",
    "apologies_late",
    "apologies_missing",
    "consultations_replied_late",
)


@pytest.fixture(scope="module")
async def month(infrastructure: dict[str, str]) -> AsyncIterator[Simulated]:
    namespace = await throwaway_namespace("demo")
    async with simulated_month(OPTIONS, DATABASE, namespace, console_logs=False) as simulated:
        # The page's period ends where the demo's figures were read: one minute past the end.
        simulated.clock.set(simulated.end + timedelta(minutes=1))
        yield simulated


@pytest.fixture(scope="module")
async def intake_url(month: Simulated) -> AsyncIterator[str]:
    """Intake's app (started by the simulation) on a loopback port, for the browser."""
    async with served_over_http(month.apps["intake"]) as url:
        yield url


def late_rate(figures: dict[str, Any]) -> str:
    """As a reader checks it: done late over done, in Vietnamese notation (a decimal comma)."""
    done = figures["done_early"] + figures["done_on_time"] + figures["done_late"]
    if not done:
        return "—"
    return f"{round(figures['done_late'] / done, 3) * 100:.1f}".replace(".", ",") + "%"


async def test_the_board_shows_the_month_demos_figures(month: Simulated, intake_url: str) -> None:
    assert month.check.ok, month.check.problems  # the demo's own check of its month
    dossiers = month.month.dossiers
    with_traffic = {d.procedure.agency for d in dossiers}
    assert len(dossiers) == OPTIONS.days * OPTIONS.per_day and len(with_traffic) >= 5
    expected = month.indicators
    units = {unit["unit_code"]: unit for unit in expected["units"]}
    assert with_traffic <= set(units)
    # The month is one the board must tell apart: late dossiers, late steps, apologies.
    assert expected["total"]["done_late"] + expected["total"]["in_progress_past_due"] >= 1
    assert month.board["officials"] and expected["total"]["apologies_issued"] >= 1

    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            html = await open_board(phone, intake_url)
            await check_figures(phone, intake_url, expected)
            await check_officials(phone, month.board["officials"])
            await check_satisfaction(phone, expected)
            await check_chart(phone, units)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await phone.screenshot(path=str(ARTIFACTS / "board-month.png"), full_page=True)
            # axe's script needs the page's CSP bypassed: in this context only.
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, bypass_csp=True
            )
            desktop = await context.new_page()
            await open_board(desktop, intake_url)
            await desktop.screenshot(
                path=str(ARTIFACTS / "board-month-desktop.png"), full_page=True
            )
            await assert_accessible(desktop, "the month demo's board")
        finally:
            await browser.close()

    values = [str(v) for d in dossiers for v in d.applicant.values() if v]
    assert len(values) >= 3 * len(dossiers)  # names, ID numbers, phones, addresses
    found = [value for value in values if value in html]
    assert not found, found


async def open_board(page: Page, base: str) -> str:
    answer = await page.goto(f"{base}/bang-tien-do?thang={MONTH}")
    assert answer is not None and answer.status == 200
    assert "tháng 11/2026" in await page.get_by_role("heading", level=1).inner_text()
    return await page.content()


async def check_figures(page: Page, base: str, expected: dict[str, Any]) -> None:
    """Each unit's row, and the total, hold the demo's figures; so does the API for the
    page's own period (the month up to now: the clock stands at the demo's end)."""
    start = await page.locator("time[data-from]").get_attribute("datetime")
    end = await page.locator("time[data-to]").get_attribute("datetime")
    headers = {"Authorization": f"Bearer {await password_token(OPERATOR_USER)}"}
    async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as client:
        api = await client.get("/v1/reports/indicators", params={"from": start, "to": end})
    assert api.status_code == 200, api.text
    served = api.json()
    assert served["units"] == expected["units"] and served["total"] == expected["total"]

    # Each table read at once, as the reader sees it (the cells' rendered text).
    board = await table(page, "#bang-tien-do")
    indicator_rows = await table(page, "#chi-so-766")
    codes = [unit["unit_code"] for unit in expected["units"]]
    assert [row["unit"] for row in board] == [row["unit"] for row in indicator_rows]
    assert [row["unit"] for row in board] == [*codes, ""]  # the last: the total
    every = [*expected["units"], {**expected["total"], "unit_name": "Tổng cộng"}]
    for row, indicator_row, figures in zip(board, indicator_rows, every, strict=True):
        code, cells = row["unit"], row["cells"]
        assert row["name"] == indicator_row["name"] == figures["unit_name"], code
        for figure in BOARD_FIGURES:
            assert cells[figure] == str(figures[figure]), (code, figure)
        in_progress = int(cells["due_soon"]) + int(cells["not_yet_due"])
        assert in_progress == figures["in_progress_within_due"], code
        assert cells["late_rate"] == late_rate(figures), code
        for figure in INDICATOR_FIGURES:
            assert indicator_row["cells"][figure] == str(figures[figure]), (code, figure)
    # The late figures stand out (class "late"): those of the units with late dossiers.
    late_cells = page.locator('#bang-tien-do td[data-figure="done_late"].late')
    assert await late_cells.count() == sum(1 for figures in every if figures["done_late"])


async def table(page: Page, selector: str) -> list[dict[str, Any]]:
    """A table's body rows: the unit's code, the row's heading and the figures by name."""
    rows: list[dict[str, Any]] = await page.locator(f"{selector} tbody tr").evaluate_all(
        """rows => rows.map(row => ({
            unit: row.dataset.unit,
            name: row.querySelector("th").innerText,
            cells: Object.fromEntries([...row.querySelectorAll("td[data-figure]")].map(
                cell => [cell.dataset.figure, cell.innerText])),
        }))"""
    )
    return rows


async def check_officials(page: Page, officials: list[dict[str, Any]]) -> None:
    """The officials with late steps, as the demo's lateness board lists them, in its order."""
    rows = await page.locator("#can-bo-tre-han tbody tr").all()
    shown = [
        (
            await row.locator("th").inner_text(),
            await row.get_attribute("data-unit"),
            await row.locator("td").first.inner_text(),
            int(await row.locator('td[data-figure="steps"]').inner_text()),
            int(await row.locator('td[data-figure="late"]').inner_text()),
        )
        for row in rows
    ]
    listed = [
        (o["official"] or "(không rõ)", o["unit_code"], o["unit_name"], o["steps"], o["late"])
        for o in officials
    ]
    assert shown == listed
    assert all(late >= 1 for *_, late in shown)


async def check_satisfaction(page: Page, expected: dict[str, Any]) -> None:
    """The section is there; the demo's citizens rate nothing, and the page says so."""
    heading = page.get_by_role("heading", name="Mức độ hài lòng của người dân")
    assert await heading.count() == 1
    assert expected["total"]["ratings"] == 0
    assert await page.locator("#hai-long-theo-don-vi").count() == 0
    assert "Chưa có lượt đánh giá nào trong kỳ này." in await page.inner_text("main")


async def check_chart(page: Page, units: dict[str, dict[str, Any]]) -> None:
    """A bar per unit, named by the unit, in the table's order, its parts the table's figures."""
    bars = await page.locator("figure.chart ul.bars li").all()
    assert len(bars) == len(units)
    for bar, unit in zip(bars, units.values(), strict=True):
        label = await bar.locator("svg.bar").get_attribute("aria-label")
        assert label is not None and label.startswith(f"{unit['unit_name']}: "), label
        parts = await bar.locator("svg.bar rect title").all_text_contents()
        if unit["done_late"]:
            assert f"Xong quá hạn: {unit['done_late']}" in parts, (unit["unit_code"], parts)
        drawn = sum(int(part.rsplit(": ", 1)[1]) for part in parts)
        charted = (
            unit["done_early"]
            + unit["done_on_time"]
            + unit["done_late"]
            + unit["in_progress_past_due"]
            + unit["in_progress_within_due"]
            + unit["paused"]
        )
        assert drawn == charted, unit["unit_code"]
