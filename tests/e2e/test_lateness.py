"""The domain end to end, on the real Kafka broker and PostgreSQL server, in simulated time:
an inter-agency dossier through three units with one step late, and a supplement that pauses
the clock. The four services run in this process and share the simulated clock. Last, the
personal-data scan over everything these flows left in spans, logs, metrics and topics."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from deploy.local import kafka_access
from deploy.local.signing import SIGNING_DIR
from shared.calendar import HCMC, WorkingCalendar
from shared.catalog import load_catalog
from shared.clock import SimulatedClock
from shared.events import PUBLIC_TOPICS, RESTRICTED_READERS, dead_letter_topic
from shared.logs import TraceContextFilter, json_formatter
from shared.messaging.connection import KafkaConnection
from tests.causal import assert_before, causal_history, kinds
from tests.factories import APPLICANT, submission
from tests.kafka_reader import read_to_end
from tests.system import OPERATOR, System, eventually, simulated_system
from tests.unit.conftest import hcmc
from tests.users import OPERATOR_USER, counter_of, head_of, name_of, officer_of

DESK, CONG_THUONG, CONG_AN = "000.00.00.H29", "000.00.10.H29", "000.20.01.H29"
# Sở Công Thương, Công an, Sở Công Thương: a three-step inter-agency route.
INTER_AGENCY = "2.000647"
NONG_NGHIEP = "000.14.01.H29"
HEAD_CONG_THUONG, HEAD_CONG_AN = "giamdoc.sct@tphcm.gov.vn", "giamdoc.catp@tphcm.gov.vn"
HEAD_NONG_NGHIEP = "giamdoc.vpdkdd@tphcm.gov.vn"
LOGS = io.StringIO()  # every log line of the four services while the module runs, as JSON


@pytest.fixture(scope="module")
async def system(infrastructure: dict[str, str]) -> AsyncIterator[System]:
    start = hcmc(2026, 12, 1, 8, 0)  # a Tuesday morning
    async with simulated_system(infrastructure, start, "sim") as running:
        # After the lifespans configured logging: what the personal-data scan reads.
        capture = logging.StreamHandler(LOGS)
        capture.setFormatter(json_formatter("all"))
        capture.addFilter(TraceContextFilter())
        logging.getLogger().addHandler(capture)
        try:
            yield running
        finally:
            logging.getLogger().removeHandler(capture)


def clock_of(system: System) -> SimulatedClock:
    assert isinstance(system.clock, SimulatedClock)
    return system.clock


async def view(system: System, code: str) -> dict[str, Any]:
    async with system.client("intake", OPERATOR_USER) as client:
        return (await client.get(f"/v1/dossiers/{code}")).json()


async def act(
    system: System, code: str, action: str, user: str, body: dict[str, Any] | None = None
) -> Any:
    async with system.client("intake", user) as client:
        return await client.post(f"/v1/dossiers/{code}/{action}", json=body or {})


async def timeline_types(system: System, code: str) -> list[str]:
    async with system.client("intake", OPERATOR_USER) as client:
        events = (await client.get(f"/v1/dossiers/{code}/timeline")).json()["events"]
    return [e["event_type"].split(".")[-2] for e in events]


async def test_a_unit_that_ignores_due_soon_is_escalated_and_the_city_apologises_late(
    system: System,
) -> None:
    """Công an overran its step; at due-soon its draft apology waits, unsigned; at the due
    date its head and the operators are alerted and the city issues the letter, late."""
    clock = clock_of(system)
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code=INTER_AGENCY))
    assert response.status_code == 201, response.text
    code = response.json()["dossier_code"]
    routed = await eventually(lambda: _planned(system, code), what="routing and clocks")
    steps = routed["routing"]["steps"]
    assert [s["unit_code"] for s in steps] == [CONG_THUONG, CONG_AN, CONG_THUONG]
    due = _parse(routed["deadline"]["due_at"])

    # Step 1, Sở Công Thương: on time.
    clock.set(_parse(steps[0]["due_at"]) - timedelta(hours=1))
    to_police = {"to_unit_code": CONG_AN}
    handed = await act(system, code, "hand-offs", officer_of(CONG_THUONG), to_police)
    assert handed.status_code == 202, handed.text
    await eventually(lambda: _clock_at_step(system, code, 2), what="deadline at step 2")

    # Step 2, Công an: held past its step time -> an alert to its head.
    clock.set(_parse(steps[1]["due_at"]) + timedelta(minutes=30))
    await eventually(lambda: _mail_to(system, HEAD_CONG_AN, code), what="step alert to Công an")
    back = {"to_unit_code": CONG_THUONG}
    handed = await act(system, code, "hand-offs", officer_of(CONG_AN), back)
    assert handed.status_code == 202, handed.text
    await eventually(lambda: _clock_at_step(system, code, 3), what="deadline at step 3")

    # One working day before the due time: due soon, and a draft for Công an, the unit at
    # fault, although Sở Công Thương holds the dossier; Công an ignores it.
    clock.set(_parse(routed["deadline"]["due_soon_at"]) + timedelta(minutes=1))
    await eventually(lambda: _has(system, code, "due-soon"), what="due-soon")
    draft = await eventually(lambda: _draft(system, code, officer_of(CONG_AN)), what="draft")
    assert (draft["unit_code"], draft["state"]) == (CONG_AN, "open")
    async with system.client("notifier", head_of(CONG_THUONG)) as client:
        not_theirs = await client.post(f"/v1/apologies/{code}/draft/approval")
    assert not_theirs.status_code == 403 and CONG_AN in not_theirs.json()["message"]
    clock.set(due + timedelta(minutes=1))
    await eventually(lambda: _has(system, code, "apology-issued"), what="apology issued")
    await eventually(lambda: _mail_to(system, APPLICANT["email"], code), what="letter by e-mail")
    clock.advance(timedelta(hours=2))
    done = await act(system, code, "result", officer_of(CONG_THUONG))
    assert done.status_code == 202, done.text
    await eventually(lambda: _has(system, code, "completed"), what="completion")
    await eventually(
        lambda: _when(view(system, code), lambda v: v["status"]["code"] == 9), what="processed"
    )

    # Exactly one apology, received by the SMTP server with its PDF, and available as PDF.
    [letter] = system.mailbox.to(APPLICANT["email"], f"xin lỗi về việc giải quyết hồ sơ {code}")
    assert code in str(letter["Subject"])
    [attachment] = [part for part in letter.iter_attachments()]
    pdf = attachment.get_content()
    assert pdf.startswith(b"%PDF")
    async with system.client("notifier", head_of(CONG_AN)) as client:
        served = await client.get(f"/v1/apologies/{code}.pdf")
        closed = await client.post(f"/v1/apologies/{code}/draft/approval")
    assert served.status_code == 200 and served.content == pdf
    assert closed.status_code == 409, closed.text  # issued already: the new date is set once
    # Signed with the city's certificate of the local CA, on Công an's behalf.
    assert await _signer_of(pdf) == _certificate("city")
    # Alerts, all to the head of Công an, the unit at fault (held step, due soon, overdue and
    # the escalation), and to the operators; none to Sở Công Thương, which only holds it.
    await eventually(lambda: _mails_to(system, OPERATOR, code, 4), what="four alerts to operators")
    assert len(system.mailbox.to(HEAD_CONG_AN, code)) == 4
    assert len(system.mailbox.to(HEAD_CONG_THUONG, code)) == 0
    assert len(system.mailbox.to(OPERATOR, code)) == 4

    # The events, each once, on the topics downstream systems read, ...
    records = await read_to_end(
        system_kafka(system), [namespace_of(system) + t for t in PUBLIC_TOPICS]
    )
    history = causal_history([r for r in records if r.key == code])
    ours = Counter(kinds(history))
    assert ours["due-soon"] == ours["overdue"] == ours["step-overdue"] == 1, ours
    assert ours["apology-issued"] == 1 and ours["alert-raised"] == 4
    [issued] = [r for r in history if "apology-issued" in r.headers["ce_type"]]
    apology = json.loads(issued.value)
    assert (apology["timeliness"], apology["on_behalf_of_city"]) == ("late", True)
    assert apology["unit_code"] == CONG_AN
    assert ours["hand-off-recorded"] == ours["step-completed"] == 3 and ours["completed"] == 1

    # ... in causal order across the four topics, whatever the services' clocks said.
    assert kinds(history)[0] == "received"
    for first, then in (
        ("received", "routed"),
        ("received", "clock-started"),
        ("routed", "step-clocks-started"),
        ("clock-started", "apology-obligation-recorded"),
        ("hand-off-requested", "hand-off-recorded"),
        ("hand-off-recorded", "step-completed"),
        ("overdue", "apology-issued"),
        ("step-clocks-started", "step-overdue"),
        ("step-completed", "completed"),
        ("hand-off-recorded", "processed"),
    ):
        assert_before(history, first, then)

    # Timeline, lateness board and indicators reflect all of it.
    types = await timeline_types(system, code)
    for expected in (
        "received",
        "routed",
        "hand-off-requested",
        "hand-off-recorded",
        "step-overdue",
        "due-soon",
        "overdue",
        "apology-issued",
        "processed",
        "completed",
    ):
        assert expected in types, (expected, types)
    timeline = await eventually(
        lambda: _when(
            _timeline(system, code), lambda t: all(h["timeliness"] for h in t["holdings"])
        ),
        what="every step judged",
    )
    async with system.client("intake") as client:
        board = (await client.get("/v1/reports/lateness", params=_period(clock))).json()
        indicators = (await client.get("/v1/reports/indicators", params=_period(clock))).json()
    assert [h["timeliness"] for h in timeline["holdings"]] == ["on_time", "late", "late"]
    cong_an = next(u for u in board["units"] if u["unit_code"] == CONG_AN)
    assert cong_an["late"] >= 1
    cong_an_officer = await name_of(officer_of(CONG_AN))
    assert any(o["official"] == cong_an_officer for o in board["officials"])
    cong_thuong = next(u for u in indicators["units"] if u["unit_code"] == CONG_THUONG)
    assert cong_thuong["done_late"] >= 1
    assert indicators["total"]["late_without_apology"] == 0

    # Later events are traces of their own, linked back to the submission's trace.
    submission_trace = int(response.json()["trace_id"], 16)
    linked = [
        span.name
        for span in system.spans.get_finished_spans()
        if span.context.trace_id != submission_trace
        and any(link.context.trace_id == submission_trace for link in span.links)
    ]
    assert any(name.startswith("deadline detect overdue") for name in linked), linked
    assert any(name.startswith("deadline detect due-soon") for name in linked), linked
    assert any("hand-offs" in name for name in linked), linked


async def test_a_unit_that_signs_in_time_gets_an_on_time_apology_and_its_new_date_is_tracked(
    system: System,
) -> None:
    """At due-soon the unit's officer enters the reason and a new date within the limit, its
    head approves: the letter is issued before the due date, signed (PAdES) with the unit's
    certificate of the local CA, and sent to the citizen. The new date is then a deadline of
    its own: alerted when near, and when missed too, a broken promise."""
    clock = clock_of(system)
    clock.set(_next_morning(clock))
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code="1.004227"))
    assert response.status_code == 201, response.text
    code = response.json()["dossier_code"]
    routed = await eventually(lambda: _planned(system, code), what="routing and clocks")
    unit = routed["routing"]["steps"][0]["unit_code"]
    due = _parse(routed["deadline"]["due_at"])
    clock.set(_parse(routed["deadline"]["due_soon_at"]) + timedelta(minutes=1))
    draft = await eventually(lambda: _draft(system, code, officer_of(unit)), what="draft")
    assert (draft["unit_code"], draft["state"]) == (unit, "open")
    latest = _parse(draft["latest_new_due_at"])
    assert latest > due

    content = {"reason": "Cần xác minh thực địa thửa đất", "new_due_at": ""}
    async with system.client("notifier", officer_of(DESK)) as client:  # another unit
        content["new_due_at"] = (due + timedelta(days=1)).isoformat()
        other = await client.put(f"/v1/apologies/{code}/draft/content", json=content)
    assert other.status_code == 403 and unit in other.json()["message"]
    async with system.client("notifier", officer_of(unit)) as client:
        content["new_due_at"] = (latest + timedelta(hours=1)).isoformat()
        too_late = await client.put(f"/v1/apologies/{code}/draft/content", json=content)
        assert too_late.status_code == 422, too_late.text
        early = await client.post(f"/v1/apologies/{code}/draft/approval")
        assert early.status_code == 403 and "unit-head" in early.json()["message"]  # officer
        new_date = due + timedelta(days=1)
        content["new_due_at"] = new_date.isoformat()
        filled = await client.put(f"/v1/apologies/{code}/draft/content", json=content)
        assert filled.status_code == 200, filled.text
        assert filled.json()["state"] == "filled"
    clock.advance(timedelta(hours=1))
    async with system.client("notifier", head_of(unit)) as client:
        approved = await client.post(f"/v1/apologies/{code}/draft/approval")
        assert approved.status_code == 201, approved.text
        assert approved.json()["timeliness"] == "on_time"
        again = await client.post(f"/v1/apologies/{code}/draft/approval")
        assert again.status_code == 409
    assert _parse(approved.json()["new_due_at"]) == new_date

    await eventually(lambda: _mail_to(system, APPLICANT["email"], code), what="letter by e-mail")
    [letter] = system.mailbox.to(APPLICANT["email"], code)
    [attachment] = list(letter.iter_attachments())
    assert await _signer_of(attachment.get_content()) == _certificate(unit)
    # The new date is a deadline of its own, on the dossier's clock.
    promised = await eventually(
        lambda: _when(_clock(system, code), lambda c: c["promised_at"] is not None),
        what="the new date tracked",
    )
    assert _parse(promised["promised_at"]) == new_date
    assert promised["promise_unit_code"] == unit
    # The due date brings the overdue alert, but no escalation and no second letter.
    clock.set(due + timedelta(minutes=1))
    await eventually(lambda: _has(system, code, "overdue"), what="overdue")
    await eventually(lambda: _mails_to(system, OPERATOR, code, 2), what="due-soon, overdue alerts")
    # Near the new date: an alert; past it, still not done: a broken promise, alerted apart.
    clock.set(_parse(promised["promise_due_soon_at"]) + timedelta(minutes=1))
    await eventually(lambda: _alerted(system, code, "promised_date_due_soon"), what="new date near")
    clock.set(new_date + timedelta(minutes=1))
    history = await eventually(
        lambda: _alerted(system, code, "promise_broken"), what="promise broken alert"
    )
    ours = Counter(kinds(history))
    assert ours["apology-issued"] == ours["return-date-promised"] == 1, ours
    assert ours["promised-date-due-soon"] == ours["promise-broken"] == 1, ours
    assert ours["overdue"] == 1
    assert_before(history, "apology-issued", "return-date-promised")
    assert_before(history, "return-date-promised", "promise-broken")
    alerts = [
        json.loads(r.value)["kind"] for r in history if "alert-raised" in r.headers["ce_type"]
    ]
    expected = ["due_soon", "overdue", "promised_date_due_soon", "promise_broken"]
    assert [kind for kind in alerts if kind != "step_overdue"] == expected, alerts
    await eventually(
        lambda: _mails_to(system, OPERATOR, code, len(alerts)), what="every alert by e-mail"
    )
    assert len(system.mailbox.to(_head_email(system.apps["notifier"], unit), code)) == len(alerts)
    [issued] = [r for r in history if "apology-issued" in r.headers["ce_type"]]
    assert json.loads(issued.value)["timeliness"] == "on_time"


async def test_a_supplement_pauses_the_clock_and_a_second_request_is_refused(
    system: System,
) -> None:
    clock = clock_of(system)
    clock.set(_next_morning(clock))
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code="1.004227"))
    code = response.json()["dossier_code"]
    routed = await eventually(lambda: _planned(system, code), what="clock started")
    due_before = _parse(routed["deadline"]["due_at"])

    clock.advance(timedelta(hours=2))
    request = {
        "reason": "Thiếu bản sao hợp đồng chuyển nhượng có chứng thực",
        "missing_documents": ["Hợp đồng chuyển nhượng (bản sao chứng thực)"],
    }
    asked = await act(system, code, "supplement-requests", officer_of(NONG_NGHIEP), request)
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == 5
    await eventually(lambda: _has(system, code, "clock-paused"), what="clock paused")

    while_paused = await act(system, code, "supplement-requests", officer_of(NONG_NGHIEP), request)
    assert while_paused.status_code == 409
    assert "supplement_requested (status 5)" in while_paused.json()["message"]

    clock.advance(timedelta(days=7))  # a week: five working days (plus the weekend)
    resumed_at = clock()
    received = await act(system, code, "supplements", counter_of(DESK))
    assert received.status_code == 200, received.text
    resumed = await eventually(
        lambda: _when(view(system, code), lambda v: v["status"]["code"] == 4), what="resumed"
    )
    assert resumed
    await eventually(lambda: _has(system, code, "clock-resumed"), what="clock resumed")
    async with system.client("intake", OPERATOR_USER) as client:
        events = (await client.get(f"/v1/dossiers/{code}/timeline")).json()["events"]
    [resume] = [e for e in events if e["event_type"].endswith("clock-resumed.v2")]
    due_after = _parse(resume["details"]["due_at"])
    paused = resumed_at - _parse(asked.json()["occurred_at"])
    assert paused > timedelta(days=6)
    assert resume["details"]["paused_working_minutes"] > 0
    assert due_after > due_before
    # The due date moved by exactly the working time the clock was paused.
    moved = WorkingCalendar().working_time_between(due_before, due_after)
    assert moved == timedelta(minutes=resume["details"]["paused_working_minutes"])

    # A reader of the topics sees the pause after its request, the resumption after the
    # supplement, even where the event times say otherwise.
    records = await read_to_end(
        system_kafka(system), [namespace_of(system) + t for t in PUBLIC_TOPICS]
    )
    history = causal_history([r for r in records if r.key == code])
    assert_before(history, "clock-started", "clock-paused")
    assert_before(history, "supplement-requested", "clock-paused")
    assert_before(history, "supplement-received", "clock-resumed")

    # Guidance is given once, completely: a second request is refused ...
    again = await act(system, code, "supplement-requests", officer_of(NONG_NGHIEP), request)
    assert again.status_code == 409
    assert "already requested once" in again.json()["message"]
    # ... unless an override records why.
    overridden = await act(
        system,
        code,
        "supplement-requests",
        officer_of(NONG_NGHIEP),
        {**request, "override_reason": "Hồ sơ bổ sung có giấy tờ mới phát sinh cần kiểm tra"},
    )
    assert overridden.status_code == 200, overridden.text


async def test_a_missed_supplement_deadline_alerts_the_unit_which_refuses_and_mails_mau_03(
    system: System,
) -> None:
    clock = clock_of(system)
    clock.set(_next_morning(clock))
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code="1.004227"))
    code = response.json()["dossier_code"]
    await eventually(lambda: _planned(system, code), what="clock started")

    # The request: the citizen gets Mẫu 02 by e-mail, a PDF saying what is missing and by when.
    clock.advance(timedelta(hours=1))
    request = {
        "reason": "Thiếu bản sao hợp đồng chuyển nhượng có chứng thực",
        "missing_documents": ["Hợp đồng chuyển nhượng (bản sao chứng thực)"],
    }
    asked = await act(system, code, "supplement-requests", officer_of(NONG_NGHIEP), request)
    assert asked.status_code == 200, asked.text
    subject = f"Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ {code}"
    await eventually(lambda: _mail_to(system, APPLICANT["email"], subject), what="Mẫu 02 mailed")
    [mau_02] = system.mailbox.to(APPLICANT["email"], subject)
    [attachment] = list(mau_02.iter_attachments())
    assert attachment.get_filename() == f"yeu-cau-bo-sung-{code}.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    plain = mau_02.get_body(("plain",))
    assert plain is not None
    assert "Hợp đồng chuyển nhượng (bản sao chứng thực)" in plain.get_content()
    assert "Hạn bổ sung:" in plain.get_content()

    # The deadline service keeps the due time; the dossier's view shows it.
    paused = await eventually(
        lambda: _when(view(system, code), lambda v: v["deadline"]["supplement_due_at"]),
        what="supplement due time in the view",
    )
    supplement_due = _parse(paused["deadline"]["supplement_due_at"])
    assert supplement_due > clock()
    assert paused["deadline"]["supplement_missed_at"] is None
    async with system.client("deadline", OPERATOR_USER) as client:
        kept = (await client.get(f"/v1/clocks/{code}")).json()
    assert _parse(kept["supplement_due_at"]) == supplement_due

    # Nothing received by then: missed the moment it passes, the unit's head and operators
    # alerted (the default policy: alert only).
    clock.set(supplement_due + timedelta(minutes=1))
    await eventually(lambda: _has(system, code, "supplement-deadline-missed"), what="missed")
    missed = await view(system, code)
    assert missed["deadline"]["supplement_missed_at"] is not None
    [event] = [
        e
        for e in (await _timeline(system, code))["events"]
        if e["event_type"].endswith("supplement-deadline-missed.v1")
    ]
    assert event["details"]["refusal_proposed"] is False
    assert _parse(event["details"]["supplement_due_at"]) == supplement_due
    alert = f"hồ sơ {code} quá hạn bổ sung"
    await eventually(lambda: _mail_to(system, HEAD_NONG_NGHIEP, alert), what="alert to the head")
    await eventually(lambda: _mail_to(system, OPERATOR, alert), what="alert to operators")

    # The unit refuses: the citizen gets Mẫu 03 with the reason.
    refused = await act(
        system,
        code,
        "refusal",
        officer_of(NONG_NGHIEP),
        {"reason": "Quá thời hạn bổ sung hồ sơ mà không bổ sung"},
    )
    assert refused.status_code == 200, refused.text
    subject = f"Phiếu từ chối tiếp nhận, giải quyết hồ sơ {code}"
    await eventually(lambda: _mail_to(system, APPLICANT["email"], subject), what="Mẫu 03 mailed")
    [mau_03] = system.mailbox.to(APPLICANT["email"], subject)
    [attachment] = list(mau_03.iter_attachments())
    assert attachment.get_content().startswith(b"%PDF")
    plain = mau_03.get_body(("plain",))
    assert plain is not None and "Quá thời hạn bổ sung hồ sơ" in plain.get_content()


# --- helpers -------------------------------------------------------------------------------


def namespace_of(system: System) -> str:
    return str(system.apps["intake"].state.runtime.namespace)


def system_kafka(system: System) -> KafkaConnection:
    """The system's broker, as the admin principal."""
    runtime = system.apps["intake"].state.runtime
    return kafka_access.connection(bootstrap=runtime.settings.kafka_bootstrap_servers)


async def _when(awaitable: Any, predicate: Any) -> Any:
    value = await awaitable
    return value if predicate(value) else None


async def _planned(system: System, code: str) -> dict[str, Any] | None:
    """The view once routing's plan, the clock and every step's due time are in."""
    found = await view(system, code)
    routing, deadline = found["routing"], found["deadline"]
    if routing and deadline and all(step["due_at"] for step in routing["steps"]):
        return found
    return None


async def _timeline(system: System, code: str) -> dict[str, Any]:
    async with system.client("intake", OPERATOR_USER) as client:
        timeline: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}/timeline")).json()
        return timeline


async def _draft(system: System, code: str, user: str) -> dict[str, Any] | None:
    async with system.client("notifier", user) as client:
        response = await client.get(f"/v1/apologies/{code}/draft")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _signer_of(pdf: bytes) -> bytes:
    """The signing certificate of the PDF's one signature, once pyHanko's validator found it
    intact, valid and trusted against the local test CA (DER)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    [signature] = reader.embedded_signatures
    trust = ValidationContext(trust_roots=[load_cert_from_pemder(str(SIGNING_DIR / "ca.pem"))])
    status = await async_validate_pdf_signature(signature, trust)
    assert status.bottom_line, status.pretty_print_details()
    assert status.intact and status.valid and status.trusted
    der: bytes = status.signing_cert.dump()
    return der


def _certificate(signer: str) -> bytes:
    der: bytes = load_cert_from_pemder(str(SIGNING_DIR / "signers" / signer / "cert.pem")).dump()
    return der


async def _alerted(system: System, code: str, kind: str) -> list[Any] | None:
    """The dossier's history on the public topics, once it holds an alert of `kind`."""
    records = await read_to_end(
        system_kafka(system), [namespace_of(system) + t for t in PUBLIC_TOPICS]
    )
    history = causal_history([r for r in records if r.key == code])
    for record in history:
        if "alert-raised" in record.headers["ce_type"]:
            if json.loads(record.value)["kind"] == kind:
                return history
    return None


async def _clock(system: System, code: str) -> dict[str, Any]:
    async with system.client("deadline", OPERATOR_USER) as client:
        found: dict[str, Any] = (await client.get(f"/v1/clocks/{code}")).json()
    return found


def _head_email(notifier: Any, unit_code: str) -> str:
    unit = load_catalog(notifier.state.runtime.settings.catalog_path).unit(unit_code)
    assert unit is not None
    return unit.head_email


async def _has(system: System, code: str, kind: str) -> bool:
    return kind in await timeline_types(system, code)


async def _clock_at_step(system: System, code: str, step: int) -> bool:
    async with system.client("deadline", OPERATOR_USER) as client:
        clock = (await client.get(f"/v1/clocks/{code}")).json()
    return bool(clock["current_step"] == step)


async def _mail_to(system: System, address: str, code: str) -> bool:
    return bool(system.mailbox.to(address, code))


async def _mails_to(system: System, address: str, code: str, count: int) -> bool:
    return len(system.mailbox.to(address, code)) >= count


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _period(clock: SimulatedClock) -> dict[str, str]:
    return {
        "from": (clock() - timedelta(days=40)).isoformat(),
        "to": (clock() + timedelta(minutes=1)).isoformat(),
    }


def _next_morning(clock: SimulatedClock) -> datetime:
    local = clock().astimezone(HCMC) + timedelta(days=1)
    while local.weekday() >= 5:
        local += timedelta(days=1)
    return local.replace(hour=8, minute=0, second=0, microsecond=0)


async def test_a_dossier_finished_late_gets_its_apology_even_before_the_scan(
    system: System,
) -> None:
    """Whether the scheduler or the completion notices the lateness first, it is owed one."""
    clock = clock_of(system)
    clock.set(_next_morning(clock))
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post(
            "/v1/dossiers",
            json=submission(procedure_code="1.000894"),  # half a working day
        )
    code = response.json()["dossier_code"]
    routed = await eventually(lambda: _planned(system, code), what="routing and clocks")
    holder = routed["routing"]["steps"][0]["unit_code"]
    clock.set(_parse(routed["deadline"]["due_at"]) + timedelta(minutes=5))
    done = await act(system, code, "result", officer_of(holder))
    assert done.status_code == 202, done.text

    await eventually(lambda: _has(system, code, "apology-issued"), what="apology")
    await eventually(lambda: _has(system, code, "completed"), what="completion")
    async with system.client("intake") as client:
        indicators = (await client.get("/v1/reports/indicators", params=_period(clock))).json()
    assert indicators["total"]["late_without_apology"] == 0


# --- Personal data: only on the restricted topic ---------------------------------------------


def _needles() -> dict[str, set[str]]:
    """Each personal value of the applicant, as written and as JSON escapes it."""
    return {
        key: {value, json.dumps(value)[1:-1]}
        for key, value in APPLICANT.items()
        if value is not None
    }


def _hits(text: str) -> list[str]:
    return [key for key, forms in _needles().items() if any(form in text for form in forms)]


async def test_no_personal_data_in_spans_logs_metrics_or_public_topics(system: System) -> None:
    """Runs last: after the flows above (hand-offs, a late step, a supplement, apologies by
    e-mail), one more dossier with a supplement and an apology, then every span, log line,
    metric (each service's Prometheus text) and every record of every public topic is
    searched for the applicant's name, ID number, phone, e-mail and address."""
    clock = clock_of(system)
    clock.set(_next_morning(clock))
    async with system.client("intake", counter_of(DESK)) as client:
        response = await client.post("/v1/dossiers", json=submission(procedure_code="1.004227"))
    assert response.status_code == 201, response.text
    code = response.json()["dossier_code"]
    routed = await eventually(lambda: _planned(system, code), what="routing and clocks")
    holder = routed["routing"]["steps"][0]["unit_code"]
    asked = await act(
        system,
        code,
        "supplement-requests",
        officer_of(holder),
        {
            "reason": "Thiếu bản sao giấy tờ",
            "missing_documents": ["Bản sao CCCD"],
        },
    )
    assert asked.status_code == 200, asked.text
    clock.advance(timedelta(days=1))
    assert (await act(system, code, "supplements", counter_of(DESK))).status_code == 200
    await eventually(lambda: _has(system, code, "clock-resumed"), what="clock resumed")
    late = await view(system, code)
    clock.set(_parse(late["deadline"]["due_at"]) + timedelta(minutes=1))
    await eventually(lambda: _mail_to(system, APPLICANT["email"], code), what="letter by e-mail")

    namespace = namespace_of(system)
    readers_only = {g for readers in RESTRICTED_READERS.values() for g in readers}
    public = [namespace + t for t in PUBLIC_TOPICS] + [
        namespace + dead_letter_topic(group)
        for group in ("routing", "deadline", "intake-projection")
        if group not in readers_only  # a restricted topic's reader dead-letters its messages
    ]
    records = await read_to_end(system_kafka(system), public)
    restricted = await read_to_end(
        system_kafka(system), [namespace + t for t in RESTRICTED_READERS]
    )
    scanned = {
        "topics": "\n".join(
            f"{r.topic} {r.key} {r.headers} " + r.value.decode("utf-8", "replace") for r in records
        ),
        "spans": "\n".join(
            repr(
                (
                    span.name,
                    dict(span.attributes or {}),
                    [(e.name, dict(e.attributes or {})) for e in span.events],
                    [dict(link.attributes or {}) for link in span.links],
                    span.status.description,
                )
            )
            for span in system.spans.get_finished_spans()
        ),
        "logs": LOGS.getvalue(),
        "metrics": "\n".join(
            data.to_json() for reader in system.readers if (data := reader.get_metrics_data())
        ),
    }
    for service in system.apps:
        async with system.client(service) as client:
            exposition = await client.get("/metrics")
        assert exposition.status_code == 200
        scanned[f"{service} /metrics"] = exposition.text

    # Something to scan: every flow of the module is in it ...
    assert {code in scanned["topics"], code in scanned["logs"]} == {True}
    assert "apology-issued" in scanned["topics"] and "supplement-requested" in scanned["topics"]
    assert all(scanned.values()), [where for where, text in scanned.items() if not text]
    found = {where: _hits(text) for where, text in scanned.items()}
    assert {where: keys for where, keys in found.items() if keys} == {}
    # ... and the scan finds them where they are allowed: the restricted topic holds each.
    ours = [r.value.decode() for r in restricted if r.key == code]
    assert ours and set(_hits("\n".join(ours))) == set(_needles())
