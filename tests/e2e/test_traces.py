"""An operator follows one dossier across the four services in the trace UI (Zipkin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

from deploy.local.stack import ROOT, ZIPKIN_URL, Stack
from tests.browser import chromium
from tests.factories import submission
from tests.users import bearer, counter_of
from tests.waiting import eventually

ARTIFACTS = ROOT / "artifacts"
SERVICES = {"intake", "routing", "deadline", "notifier"}


async def find_trace(code: str, trace_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Poll Zipkin's search by dossier code until the dossier's trace has spans from all four
    services (Zipkin may also hold traces of an earlier run that reused the code)."""
    query: dict[str, str | int] = {
        "annotationQuery": f"onestop.dossier.code={code}",
        "lookback": 3_600_000,
        "limit": 5,
    }
    traces: list[list[dict[str, Any]]] = []
    async with httpx.AsyncClient(base_url=ZIPKIN_URL, timeout=10) as client:

        async def trace_of_all_four() -> list[dict[str, Any]] | None:
            traces[:] = (await client.get("/api/v2/traces", params=query)).json()
            for spans in traces:
                if spans[0]["traceId"] != trace_id:
                    continue
                if {s["localEndpoint"]["serviceName"] for s in spans} >= SERVICES:
                    return spans
            return None

        def services_seen() -> str:
            seen = [{s["localEndpoint"]["serviceName"] for s in t} for t in traces]
            return f"a trace of {code} spanning all four services (seen: {seen})"

        found: list[dict[str, Any]] = await eventually(
            trace_of_all_four, timeout=timeout, interval=0.5, what=services_seen
        )
        return found


async def test_a_dossiers_trace_is_found_by_its_code_and_shown_in_the_ui(stack: Stack) -> None:
    desk = await bearer(counter_of("000.00.00.H29"))
    async with httpx.AsyncClient(base_url=stack.url("intake"), headers=desk) as client:
        receipt = (await client.post("/v1/dossiers", json=submission())).json()
        view = (await client.get(f"/v1/dossiers/{receipt['dossier_code']}")).json()
    code, trace_id = receipt["dossier_code"], receipt["trace_id"]
    assert view["receipt"]["trace_id"] == trace_id

    spans = await find_trace(code, trace_id)

    assert {s["traceId"] for s in spans} == {trace_id}
    kinds = {(s["localEndpoint"]["serviceName"], s.get("kind")) for s in spans}
    assert ("intake", "SERVER") in kinds
    assert {("routing", "CONSUMER"), ("deadline", "CONSUMER"), ("notifier", "CONSUMER")} <= kinds

    screenshot = await screenshot_trace(trace_id, ARTIFACTS / f"trace-{code}.png")
    assert screenshot.stat().st_size > 10_000


async def screenshot_trace(trace_id: str, path: Path) -> Path:
    """Debian's Chromium, headless, on the trace page; the page must show all four services."""
    path.parent.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await chromium(playwright)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            await page.goto(f"{ZIPKIN_URL}/zipkin/traces/{trace_id}")
            for service in sorted(SERVICES):
                await page.get_by_text(service, exact=False).first.wait_for(timeout=30_000)
            await page.screenshot(path=str(path), full_page=True)
        finally:
            await browser.close()
    return path
