"""Realistic test data: what a counter in Ho Chi Minh City would post."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import Applicant, ApplicantDetailsRecorded, DossierReceived

# Known personal values: tests scan logs and telemetry for them.
APPLICANT = {
    "full_name": "Nguyễn Thị Minh Khai",
    "id_number": "079203004567",
    "phone": "0909123456",
    "email": "minhkhai.nguyen@example.vn",
    "address": "12 Lê Lợi, phường Sài Gòn, Thành phố Hồ Chí Minh",
}


def submission(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "procedure_code": "1.004227",
        "channel": "counter",
        "applicant": dict(APPLICANT),
        "documents": [
            {"kind": "Đơn đăng ký biến động đất đai (Mẫu 11/ĐK)", "form": "original", "count": 1},
            {"kind": "Hợp đồng chuyển nhượng đã công chứng", "form": "original", "count": 1},
            {"kind": "Giấy chứng nhận quyền sử dụng đất", "form": "original", "count": 1},
        ],
        "sets": 1,
    }
    body.update(overrides)
    return body


def received_event(
    code: str, *, received_at: datetime, appointment_at: datetime, **overrides: Any
) -> DossierReceived:
    """A DossierReceived as intake would publish it, for tests that feed consumers directly."""
    fields: dict[str, Any] = {
        "dossier_code": code,
        # An inter-agency route through three steps: Sở Công Thương, Công an, Sở Công Thương.
        "procedure_code": "2.000647",
        "procedure_name": "Cấp Giấy chứng nhận cửa hàng đủ điều kiện bán lẻ xăng dầu",
        "receiving_unit_code": "000.00.00.H29",
        "channel": "counter",
        "documents": [{"kind": "Tờ khai", "form": "original", "count": 1}],
        "sets": 1,
        "received_at": received_at,
        "appointment_at": appointment_at,
        "receiving_officer": "Trần Văn Bình",
    }
    fields.update(overrides)
    return DossierReceived.model_validate(fields)


def applicant_recorded(code: str, **overrides: Any) -> ApplicantDetailsRecorded:
    """The ApplicantDetailsRecorded that intake publishes with the receipt (restricted topic)."""
    return ApplicantDetailsRecorded(
        dossier_code=code, applicant=Applicant.model_validate({**APPLICANT, **overrides})
    )
