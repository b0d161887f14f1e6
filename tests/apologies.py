"""The unit at fault completes its draft apology and its head signs it, over HTTP."""

from __future__ import annotations

from datetime import datetime

import httpx

from deploy.local.identity import head_of, officer_of
from tests.users import bearer
from tests.waiting import eventually


async def sign_apology(client: httpx.AsyncClient, code: str, unit_code: str, reason: str) -> None:
    """`client` is the notifier's; the draft is waited for (due-soon or the unit's extension
    request opens it); the new date is the latest the draft allows."""
    officer = await bearer(officer_of(unit_code))

    async def opened() -> httpx.Response | None:
        draft = await client.get(f"/v1/apologies/{code}/draft", headers=officer)
        return None if draft.status_code == 404 else draft

    draft = await eventually(opened, what=f"the draft apology of {code}")
    assert draft.status_code == 200, draft.text
    new_due_at = datetime.fromisoformat(draft.json()["latest_new_due_at"])
    filled = await client.put(
        f"/v1/apologies/{code}/draft/content",
        json={"reason": reason, "new_due_at": new_due_at.isoformat()},
        headers=officer,
    )
    assert filled.status_code == 200, filled.text
    approved = await client.post(
        f"/v1/apologies/{code}/draft/approval", headers=await bearer(head_of(unit_code))
    )
    assert approved.status_code == 201, approved.text
