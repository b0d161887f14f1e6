"""Realistic test data: what a counter in Ho Chi Minh City would post."""

from __future__ import annotations

from typing import Any

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
        "receiving_unit_code": "000.00.00.H29",
        "channel": "counter",
        "applicant": dict(APPLICANT),
        "documents": [
            {"kind": "Đơn đăng ký biến động đất đai (Mẫu 11/ĐK)", "form": "original", "count": 1},
            {"kind": "Hợp đồng chuyển nhượng đã công chứng", "form": "original", "count": 1},
            {"kind": "Giấy chứng nhận quyền sử dụng đất", "form": "original", "count": 1},
        ],
        "sets": 1,
        "receiving_officer": "Trần Văn Bình",
    }
    body.update(overrides)
    return body
