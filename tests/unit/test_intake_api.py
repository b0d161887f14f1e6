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
from shared.calendar import UnitCalendars, WorkingCalendar
from shared.catalog import Catalog
from shared.events import ApplicantDetailsRecorded, DossierReceived, Topic
from shared.messaging.unit_of_work import PendingEvent
from tests.factories import submission
from tests.fakes.intake import InMemoryDossierRepository, InMemoryIntakeUnitOfWork
from tests.unit.conftest import hcmc

MONDAY_MORNING = hcmc(2026, 11, 23, 9, 30)


class Counter:
    """An intake app on in-memory storage, with a fixed clock."""

    def __init__(self, catalog: Catalog, calendar: WorkingCalendar, now: datetime) -> None:
        self.repository = InMemoryDossierRepository()
        self.published: list[PendingEvent] = []

        def unit_of_work() -> InMemoryIntakeUnitOfWork:
            uow = InMemoryIntakeUnitOfWork(self.repository)
            uow.published = self.published
            return uow

        app = FastAPI()
        install_api(
            app,
            Intake(
                catalog=catalog,
                calendars=UnitCalendars(catalog),
                unit_of_work=unit_of_work,
                clock=lambda: now,
            ),
            max_request_bytes=16 * 1024,
        )
        self.client = TestClient(app)


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
    other_unit = counter.client.post(
        "/v1/dossiers", json=submission(receiving_unit_code="000.41.01.H29")
    ).json()["dossier_code"]
    assert codes == [f"000.00.00.H29-261123-000{i}" for i in (1, 2, 3)]
    assert other_unit == "000.41.01.H29-261123-0001"


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


def test_get_returns_the_state(counter: Counter) -> None:
    code = counter.client.post("/v1/dossiers", json=submission()).json()["dossier_code"]
    view = counter.client.get(f"/v1/dossiers/{code}").json()
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
        (submission(receiving_unit_code="000.99.99.H29"), "receiving_unit_code"),
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
    body = submission(receiving_officer="x" * 20_000)
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
    body = submission(procedure_code="1.012941", receiving_unit_code="000.41.04.H29")
    receipt = counter.client.post("/v1/dossiers", json=body).json()
    # 40 working hours from Monday 13:10, skipping Tuesday 24/11 (a holiday): Tue 1/12.
    assert receipt["appointment_at"] == "2026-12-01T13:10:00+07:00"
