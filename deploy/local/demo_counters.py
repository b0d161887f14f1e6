"""`make demo`: counters across the city post a realistic batch of dossiers to the running
system, then the demo shows what became of them (routing, clocks, apology obligations)."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.local.identity import counter_of, officer_of, password_token
from shared.catalog import load_catalog
from shared.settings import DEFAULT_CATALOG

console = Console()
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Thanh", "Hữu", "Đức", "Thu"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Khoa", "Lan", "Phúc", "Tâm", "Vy"]
STREETS = ["Lê Lợi", "Nguyễn Huệ", "Hai Bà Trưng", "Điện Biên Phủ", "Cách Mạng Tháng Tám"]
WARDS = ["Sài Gòn", "Bến Thành", "Tân Định", "Xuân Hòa", "Bàn Cờ"]
DOCUMENTS = {
    "Đất đai": ["Đơn đăng ký biến động (Mẫu 11/ĐK)", "Hợp đồng chuyển nhượng", "Giấy chứng nhận"],
    "Xây dựng": ["Đơn đề nghị cấp giấy phép xây dựng", "Bản vẽ thiết kế", "Giấy tờ về đất"],
    "Hộ tịch": ["Tờ khai", "Giấy tờ tùy thân"],
    "Lý lịch tư pháp": ["Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp", "Bản chụp CCCD"],
}
RECEIVING_UNITS = ["000.00.00.H29", "000.41.01.H29", "000.41.02.H29"]


async def signed_in(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await password_token(user)}"}


def random_dossier(rng: random.Random, procedure: Any) -> dict[str, Any]:
    name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
    kinds = DOCUMENTS.get(procedure.field, ["Tờ khai", "Giấy tờ tùy thân"])
    return {
        "procedure_code": procedure.code,
        "channel": rng.choices(["counter", "online", "post"], weights=[6, 3, 1])[0],
        "applicant": {
            "full_name": name,
            "id_number": f"079{rng.randrange(10**9):09d}",
            "phone": f"09{rng.randrange(10**8):08d}",
            "email": None,
            "address": (
                f"{rng.randint(1, 300)} {rng.choice(STREETS)}, phường {rng.choice(WARDS)}, TP.HCM"
            ),
        },
        "documents": [
            {"kind": kind, "form": rng.choice(["original", "certified_copy", "copy"]), "count": 1}
            for kind in kinds
        ],
        "sets": 1,
    }


async def post_all(base_url: str, count: int, concurrency: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    procedures = load_catalog(DEFAULT_CATALOG).procedures
    # Each dossier is received at one of the desks, by that desk's counter officer.
    desks = {unit: await signed_in(counter_of(unit)) for unit in RECEIVING_UNITS}
    bodies = [
        (random_dossier(rng, rng.choice(procedures)), desks[rng.choice(RECEIVING_UNITS)])
        for _ in range(count)
    ]
    receipts: list[dict[str, Any]] = []
    failures: Counter[str] = Counter()
    queue: asyncio.Queue[tuple[dict[str, Any], dict[str, str]]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("posting dossiers at the counters", total=count)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def counter() -> None:
                while not queue.empty():
                    body, desk = queue.get_nowait()
                    response = await client.post("/v1/dossiers", json=body, headers=desk)
                    if response.status_code == 201:
                        receipts.append(response.json())
                    else:
                        failures[f"{response.status_code} {response.json().get('error')}"] += 1
                    progress.advance(task)

            await asyncio.gather(*(counter() for _ in range(concurrency)))
    if failures:
        console.print(f"[red]refused: {dict(failures)}")
    return receipts


async def follow(
    base_url: str, receipts: list[dict[str, Any]], timeout: float
) -> list[dict[str, Any]]:
    """Poll each dossier until routing, deadline and notifier have all acted on it."""
    views: dict[str, dict[str, Any]] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("waiting for routing, deadline, notifier", total=len(receipts))
        operator = await signed_in("operator")
        async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=operator) as client:
            pending = [r["dossier_code"] for r in receipts]
            while pending and time.monotonic() < deadline:
                still = []
                for code in pending:
                    view = (await client.get(f"/v1/dossiers/{code}")).json()
                    if view["routing"] and view["deadline"] and view["notifier"]:
                        views[code] = view
                        progress.advance(task)
                    else:
                        still.append(code)
                pending = still
                if pending:
                    await asyncio.sleep(0.5)
    if pending:
        console.print(
            f"[yellow]{len(pending)} dossiers not yet through all services after {timeout}s"
        )
    return list(views.values())


def report(views: list[dict[str, Any]]) -> None:
    table = Table(title="What became of the dossiers")
    for column in ("procedure", "dossiers", "competent unit → steps", "first appointment"):
        table.add_column(column)
    by_procedure: dict[str, list[dict[str, Any]]] = {}
    for view in views:
        by_procedure.setdefault(view["receipt"]["procedure"]["name"], []).append(view)
    for name, group in sorted(by_procedure.items(), key=lambda item: -len(item[1])):
        steps = " → ".join(s["unit_name"] for s in group[0]["routing"]["steps"])
        first_due = min(v["receipt"]["appointment_at"] for v in group)
        table.add_row(name[:60], str(len(group)), steps[:80], first_due[:16].replace("T", " "))
    console.print(table)
    statuses = Counter(v["status"]["name"] for v in views)
    channels = Counter(v["receipt"]["channel"] for v in views)
    console.print(f"status: {dict(statuses)}   channels: {dict(channels)}")
    console.print(f"apology obligations recorded: {sum(1 for v in views if v['notifier'])}")


async def act_as_units(base_url: str, views: list[dict[str, Any]], seed: int) -> Counter[str]:
    """Processing units act on what they hold: most hand the dossier on or finish it, a few
    ask for a supplement, and a few declare they will be late (an apology goes out)."""
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for view in views:
            code, steps = view["dossier_code"], view["routing"]["steps"]
            holder = steps[0]["unit_code"]
            roll = rng.random()
            body: dict[str, Any] = {}
            if roll < 0.08:
                path, body = "extension-requests", {"reason": "Cần xác minh thêm với cơ quan"}
            elif roll < 0.18:
                path, body = (
                    "supplement-requests",
                    {
                        "reason": "Hồ sơ thiếu giấy tờ theo quy định",
                        "missing_documents": ["Bản sao giấy tờ tùy thân có chứng thực"],
                    },
                )
            elif len(steps) > 1:
                path, body = "hand-offs", {"to_unit_code": steps[1]["unit_code"]}
            else:
                path = "result"
            # An officer of the unit holding the dossier acts; the unit is their token's.
            officer = await signed_in(officer_of(holder))
            response = await client.post(f"/v1/dossiers/{code}/{path}", json=body, headers=officer)
            accepted = response.status_code in (200, 202)  # hand-offs: routing decides
            done[path if accepted else f"{path} refused"] += 1
    return done


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    try:
        async with httpx.AsyncClient() as client:
            (await client.get(f"{args.url}/readyz", timeout=3)).raise_for_status()
    except httpx.HTTPError as error:
        raise SystemExit(
            f"the system is not up at {args.url} ({error}); start it with `make run`"
        ) from error
    started = time.monotonic()
    receipts = await post_all(args.url, args.count, args.concurrency, args.seed)
    posted = time.monotonic() - started
    console.print(
        f"{len(receipts)} receipts issued in {posted:.1f}s ({len(receipts) / posted:.0f}/s)"
    )
    views = await follow(args.url, receipts, args.timeout)
    report(views)
    actions = await act_as_units(args.url, views, args.seed)
    console.print(f"units acted: {dict(actions)}")
    console.print(
        "see the traces at http://127.0.0.1:9411/zipkin/ and the metrics at"
        " http://127.0.0.1:8000/metrics … :8003/metrics"
    )


if __name__ == "__main__":
    asyncio.run(main())
