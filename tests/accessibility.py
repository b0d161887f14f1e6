"""The accessibility check of the public pages: axe-core (Deque's engine, the npm package
pinned in deploy/tools/axe/package-lock.json, installed by `make install` into .cache/axe) run in
the page, in the same Chromium as the browser tests.

The pages' Content-Security-Policy forbids every script, axe's too: only the test's browser
context bypasses it (`bypass_csp=True`); the pages serve the same policy as ever."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from deploy.local.stack import ROOT

AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")  # what fails the check; minor and moderate are reported


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as it stands (WCAG 2.x A and AA, and best practices)."""
    if not AXE.is_file():
        raise AssertionError(f"axe-core is not installed at {AXE}: run `make install`")
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    found: list[dict[str, Any]] = result["violations"]
    return found


def describe(found: list[dict[str, Any]]) -> str:
    """One line per violation: its id, impact, help and the elements it was found on."""
    return "\n".join(
        f"{v['id']} [{v['impact']}] {v['help']}: "
        + "; ".join(" ".join(map(str, node["target"])) for node in v["nodes"])
        for v in found
    )


async def assert_accessible(page: Page, what: str) -> None:
    """No serious or critical violation on the page; every violation is printed."""
    found = await violations(page)
    if found:
        print(f"axe on {what}:\n{describe(found)}")
    blocking = [v for v in found if v["impact"] in BLOCKING]
    assert not blocking, f"axe found serious or critical violations on {what}:\n" + describe(
        blocking
    )
