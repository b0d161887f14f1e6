"""The counters' API, with intake's real handlers on in-memory storage."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.intake.handlers import Intake
from services.intake.main import install_api
from services.intake.settings import IntakeSettings
from shared.auth import Authenticator, Role
from shared.calendar import UnitCalendars, WorkingCalendar
from shared.catalog import Catalog
from shared.events import ApplicantDetailsRecorded, DossierReceived, Topic
from shared.messaging.unit_of_work import PendingEvent
from tests.factories import APPLICANT, submission
from tests.fakes.identity import ISSUER, LocalIssuer
from tests.fakes.intake import (
    InMemoryAccessLog,
    InMemoryDailySequences,
    InMemoryDossierRepository,
    InMemoryIntakeUnitOfWork,
)
from tests.unit.conftest import hcmc

MONDAY_MORNING = hcmc(2026, 11, 23, 9, 30)
DESK, THU_DUC, TU_PHAP = "000.00.00.H29", "000.41.04.H29", "000.00.05.H29"
PIN_KEY = b"k" * 32


class Counter:
    """An intake app on in-memory storage, with a fixed clock and an issuer of tokens; its
    client posts as a counter officer of the city's centre unless told otherwise."""

    def __init__(self, catalog: Catalog, calendar: WorkingCalendar, now: datetime) -> None:
        self.repository = InMemoryDossierRepository()
        self.sequences = InMemoryDailySequences()
        self.access_log = InMemoryAccessLog()
        self.published: list[PendingEvent] = []
        self.issuer = LocalIssuer()

        def unit_of_work() -> InMemoryIntakeUnitOfWork:
            uow = InMemoryIntakeUnitOfWork(self.repository, self.access_log)
            uow.published = self.published
            return uow

        settings = IntakeSettings.model_construct(
            oidc_issuer=ISSUER, oidc_audience="onestop-intake", oidc_portal_client_id="portal"
        )
        app = FastAPI()
        install_api(
            app,
            Intake(
                catalog=catalog,
                calendars=UnitCalendars(catalog),
                unit_of_work=unit_of_work,
                clock=lambda: now,
                lookup_pin_key=PIN_KEY,
                sequences=self.sequences,
            ),
            Authenticator(self.issuer.verifier(), settings),
            max_request_bytes=16 * 1024,
        )
        self.anonymous = TestClient(app)
        self.client = self.signed_in(Role.COUNTER_OFFICER, unit_code=DESK, name="Trần Văn Bình")

    def signed_in(self, *roles: Role, unit_code: str | None = None, **claims: object) -> TestClient:
        client = TestClient(self.anonymous.app)
        client.headers.update(self.issuer.headers(*roles, unit_code=unit_code, **claims))
        return client


@pytest.fixture
def counter(catalog: Catalog, calendar: WorkingCalendar) -> Iterator[Counter]:
    yield Counter(catalog, calendar, MONDAY_MORNING)


def test_a_valid_dossier_gets_a_receipt_with_code_and_appointment(counter: Counter) -> None:
    response = counter.client.post("/v1/dossiers", json=submission())

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["dossier_code"] == "000.00.00.H29-261123-0001"
    assert receipt["procedure"]["code"] == "1.004227"
    assert receipt["receiving_unit"]["name"].startswith("Trung tâm Phục vụ hành chính công")
    # 10 working days from Monday 23/11 09:30, skipping Tuesday 24/11 (Vietnam Culture Day)
    assert receipt["appointment_at"] == "2026-12-08T09:30:00+07:00"
    assert response.headers["location"].endswith("/v1/dossiers/000.00.00.H29-261123-0001")
    # The receipt on the public topic without the applicant, who goes to the restricted one.
    received, applicant = (p.event for p in counter.published)
    assert isinstance(received, DossierReceived) and received.TOPIC is Topic.INTAKE
    assert isinstance(applicant, ApplicantDetailsRecorded)
    assert applicant.TOPIC is Topic.INTAKE_PERSONAL_DATA and applicant.TOPIC.restricted
    assert applicant.applicant.id_number == submission()["applicant"]["id_number"]
    assert submission()["applicant"]["id_number"] not in received.model_dump_json()


def test_codes_follow_a_daily_sequence_per_unit(counter: Counter) -> None:
    codes = [
        counter.client.post("/v1/dossiers", json=submission()).json()["dossier_code"]
        for _ in range(3)
    ]
    other_desk = counter.signed_in(Role.COUNTER_OFFICER, unit_code="000.41.01.H29")
    other_unit = other_desk.post("/v1/dossiers", json=submission()).json()["dossier_code"]
    assert codes == [f"000.00.00.H29-261123-000{i}" for i in (1, 2, 3)]
    assert other_unit == "000.41.01.H29-261123-0001"


def test_a_unit_past_its_9999th_code_of_the_day_gets_a_409_until_midnight(
    counter: Counter,
) -> None:
    counter.sequences.used(DESK, MONDAY_MORNING.date(), 9998)

    last = counter.client.post("/v1/dossiers", json=submission())
    refused = counter.client.post("/v1/dossiers", json=submission())

    assert last.json()["dossier_code"] == f"{DESK}-261123-9999"
    assert refused.status_code == 409
    assert refused.json()["error"] == "daily_sequence_exhausted"
    assert counter.sequences.highest[DESK] == (MONDAY_MORNING.date(), 10000)
    other_desk = counter.signed_in(Role.COUNTER_OFFICER, unit_code="000.41.01.H29")
    assert other_desk.post("/v1/dossiers", json=submission()).status_code == 201


def test_a_repeated_idempotency_key_returns_the_first_receipt(counter: Counter) -> None:
    first = counter.client.post(
        "/v1/dossiers", json=submission(), headers={"Idempotency-Key": "k1"}
    )
    again = counter.client.post(
        "/v1/dossiers", json=submission(), headers={"Idempotency-Key": "k1"}
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert len(counter.published) == 2  # the receipt and the applicant, once


def test_an_idempotency_key_is_bound_to_its_body(counter: Counter) -> None:
    headers = {"Idempotency-Key": "k1"}
    first = counter.client.post("/v1/dossiers", json=submission(), headers=headers)
    other = {**APPLICANT, "full_name": "Lê Thị Hồng Gấm", "id_number": "079203000001"}
    again = counter.client.post("/v1/dossiers", json=submission(applicant=other), headers=headers)

    assert (first.status_code, again.status_code) == (201, 422), again.text
    assert again.json()["error"] == "idempotency_key_reused"
    assert "another body" in again.json()["message"]
    assert APPLICANT["full_name"] not in again.text  # the first applicant stays private
    assert len(received(counter)) == 1


def test_idempotency_keys_belong_to_the_caller(counter: Counter) -> None:
    colleague = counter.signed_in(Role.COUNTER_OFFICER, unit_code=DESK)
    first = counter.client.post("/v1/dossiers", json=submission(), headers={"Idempotency-Key": "k"})
    theirs = colleague.post("/v1/dossiers", json=submission(), headers={"Idempotency-Key": "k"})
    assert (first.status_code, theirs.status_code) == (201, 201)
    assert first.json()["dossier_code"] != theirs.json()["dossier_code"]


def test_the_receiving_unit_and_officer_are_the_tokens(counter: Counter) -> None:
    desk = counter.signed_in(Role.COUNTER_OFFICER, unit_code=THU_DUC, name="Võ Thị Sáu")
    receipt = desk.post("/v1/dossiers", json=submission()).json()
    assert receipt["receiving_unit"]["code"] == THU_DUC
    assert receipt["receiving_officer"] == "Võ Thị Sáu"
    [event] = received(counter)
    assert event.actor is not None and event.actor.unit_code == THU_DUC
    # The body cannot name another unit.
    forged = desk.post("/v1/dossiers", json=submission(receiving_unit_code=DESK))
    assert forged.status_code == 422 and "receiving_unit_code" in forged.text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer not.a.token"}, "malformed"),
    ],
)
def test_no_token_or_a_bad_one_is_a_401_and_stores_nothing(
    counter: Counter, headers: dict[str, str], reason: str
) -> None:
    response = counter.anonymous.post("/v1/dossiers", json=submission(), headers=headers)
    assert response.status_code == 401, response.text
    assert reason in response.json()["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert counter.repository.receipts == {} and counter.published == []


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"lifetime": -120}, "expired"),
        ({"audience": "onestop-notifier"}, "not meant for onestop-intake"),
        ({"iss": "http://elsewhere/realms/x"}, "not issued by"),
    ],
)
def test_a_token_for_another_audience_issuer_or_time_is_refused(
    counter: Counter, claims: dict[str, object], reason: str
) -> None:
    token = counter.issuer.token(Role.COUNTER_OFFICER, unit_code=DESK, **claims)  # type: ignore[arg-type]
    response = counter.anonymous.post(
        "/v1/dossiers", json=submission(), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401 and reason in response.json()["message"]
    assert counter.published == []


def test_a_token_signed_by_another_key_is_refused(counter: Counter) -> None:
    forger = LocalIssuer()
    headers = forger.headers(Role.COUNTER_OFFICER, unit_code=DESK)
    response = counter.anonymous.post("/v1/dossiers", json=submission(), headers=headers)
    assert response.status_code == 401, response.text
    assert counter.published == []


def test_only_a_counter_officer_receives_dossiers(counter: Counter) -> None:
    for roles in ((Role.UNIT_OFFICER,), (Role.OPERATOR,), (Role.UNIT_HEAD, Role.UNIT_OFFICER)):
        response = counter.signed_in(*roles, unit_code=TU_PHAP).post(
            "/v1/dossiers", json=submission()
        )
        assert response.status_code == 403, response.text
        assert "counter-officer" in response.json()["message"]
    assert counter.repository.receipts == {} and counter.published == []


def test_the_citizen_reads_their_dossier_with_the_receipts_pin(counter: Counter) -> None:
    receipt = counter.client.post("/v1/dossiers", json=submission()).json()
    code, pin = receipt["dossier_code"], receipt["lookup_pin"]
    assert len(pin) == 10

    mine = counter.anonymous.get(f"/v1/dossiers/{code}", headers={"X-Lookup-PIN": pin.lower()})
    assert mine.status_code == 200 and mine.json()["receipt"]["applicant"] == APPLICANT
    assert mine.json()["receipt"]["lookup_pin"] is None  # printed once, never shown again

    # The next code, or a wrong PIN, or none: nothing, and the same answer for each.
    after = code[:-4] + f"{int(code[-4:]) + 1:04d}"
    counter.client.post("/v1/dossiers", json=submission())
    for path, headers in (
        (f"/v1/dossiers/{after}", {"X-Lookup-PIN": pin}),
        (f"/v1/dossiers/{code}", {"X-Lookup-PIN": "AAAAAAAAAA"}),
    ):
        response = counter.anonymous.get(path, headers=headers)
        assert response.status_code == 404 and "and this PIN" in response.json()["message"]
        assert APPLICANT["id_number"] not in response.text
    assert counter.anonymous.get(f"/v1/dossiers/{after}").status_code == 401


def test_officials_read_only_dossiers_of_their_unit_and_each_read_is_logged(
    counter: Counter,
) -> None:
    code = counter.client.post("/v1/dossiers", json=submission()).json()["dossier_code"]
    elsewhere = counter.signed_in(Role.UNIT_OFFICER, unit_code=TU_PHAP)
    refused = elsewhere.get(f"/v1/dossiers/{code}")
    assert refused.status_code == 403 and TU_PHAP in refused.json()["message"]

    operator = counter.signed_in(Role.OPERATOR, subject="operator-1", preferred_username="op")
    assert operator.get(f"/v1/dossiers/{code}").status_code == 200
    assert counter.client.get(f"/v1/dossiers/{code}").status_code == 200
    by_operator, by_desk = counter.access_log.accesses
    assert by_operator.subject == "operator-1" and by_operator.unit_code is None
    assert by_desk.unit_code == DESK
    assert {a.purpose for a in counter.access_log.accesses} == {"GET /v1/dossiers/{code}"}
    assert all(a.dossier_code == code for a in counter.access_log.accesses)


def test_get_returns_the_state(counter: Counter) -> None:
    code = counter.client.post("/v1/dossiers", json=submission()).json()["dossier_code"]
    view = counter.client.get(f"/v1/dossiers/{code}").json()
    assert view["receipt"]["receiving_unit"]["code"] == DESK
    assert view["status"] == {"code": 2, "name": "accepted"}
    assert view["routing"] is None


def test_an_unknown_dossier_is_404(counter: Counter) -> None:
    response = counter.client.get("/v1/dossiers/000.00.00.H29-261123-0999")
    assert response.status_code == 404
    assert "000.00.00.H29-261123-0999" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (submission(procedure_code="9.999999"), "procedure_code"),
        (submission(channel="fax"), "channel"),
        (submission(documents=[]), "documents"),
        (
            submission(documents=[{"kind": "Tờ khai", "form": "original", "count": 0}]),
            "documents.0.count",
        ),
        ({k: v for k, v in submission().items() if k != "applicant"}, "applicant"),
        (submission(applicant={**submission()["applicant"], "phone": "12"}), "applicant.phone"),
        (submission(unexpected="x"), "unexpected"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    counter: Counter, body: dict[str, object], field: str
) -> None:
    response = counter.client.post("/v1/dossiers", json=body)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in [f["field"] for f in problem["fields"]]
    assert field in problem["message"]
    assert counter.repository.receipts == {}
    assert counter.published == []


def test_malformed_json_is_a_400(counter: Counter) -> None:
    response = counter.client.post(
        "/v1/dossiers",
        content=b'{"procedure_code": "1.004227",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert counter.repository.receipts == {}


def test_an_oversized_body_is_a_413(counter: Counter) -> None:
    body = submission(documents=[{"kind": "x" * 290, "form": "copy", "count": 1}] * 80)
    response = counter.client.post(
        "/v1/dossiers",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert re.search(r"exceeds \d+ bytes", response.json()["message"])
    assert counter.repository.receipts == {}


def test_personal_data_is_not_in_error_messages(counter: Counter) -> None:
    applicant = {**submission()["applicant"], "email": "not-an-email 0909123456"}
    response = counter.client.post("/v1/dossiers", json=submission(applicant=applicant))
    assert response.status_code == 422
    assert "0909123456" not in response.text


def test_the_appointment_counts_in_the_competent_units_own_office_hours(
    catalog: Catalog, calendar: WorkingCalendar
) -> None:
    """Phường Thủ Đức works 07:30–11:30 and 13:00–17:00: received at 13:10 on a Monday, its
    dossier starts counting at once (another unit would start at 13:30)."""
    counter = Counter(catalog, calendar, hcmc(2026, 11, 23, 13, 10))
    desk = counter.signed_in(Role.COUNTER_OFFICER, unit_code=THU_DUC)
    receipt = desk.post("/v1/dossiers", json=submission(procedure_code="1.012941")).json()
    # 40 working hours from Monday 13:10, skipping Tuesday 24/11 (a holiday): Tue 1/12.
    assert receipt["appointment_at"] == "2026-12-01T13:10:00+07:00"


def received(counter: Counter) -> list[DossierReceived]:
    return [p.event for p in counter.published if isinstance(p.event, DossierReceived)]


def test_the_example_on_docs_is_received(counter: Counter) -> None:
    """What "Try it out" on /docs posts (the first example of the request body in the
    OpenAPI document) is a valid dossier: the counter gets its receipt."""
    document = counter.anonymous.get("/openapi.json").json()
    body = document["paths"]["/v1/dossiers"]["post"]["requestBody"]["content"]["application/json"]
    example = next(iter(body["examples"].values()))["value"]

    response = counter.client.post("/v1/dossiers", json=example)

    assert response.status_code == 201, response.text
    assert response.json()["procedure"]["code"] == example["procedure_code"]
