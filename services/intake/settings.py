"""The intake service's settings: what `ServiceSettings` has, and its own (environment
variables; a missing or malformed value stops the service at start)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.auth import OidcSettings
from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings, OidcSettings):
    oidc_audience: str = "onestop-intake"
    lookup_pin_key: SecretStr = Field(
        min_length=32,
        description="derives the lookup PIN printed on each receipt; changing it voids the"
        " PINs already printed",
    )
    web_session_hours: float = Field(
        default=8, gt=0, le=24, description="an official's web session ends this long after sign-in"
    )
    web_session_idle_minutes: float = Field(
        default=60, gt=0, le=24 * 60, description="and this long after its last request"
    )
    max_request_bytes: int = Field(default=256 * 1024, gt=0)
    workload_refresh_seconds: float = Field(default=15.0, gt=0)
    supplement_deadline_working_days: float = Field(
        default=10, gt=0, description="time the citizen has to supplement (unverified default)"
    )
    rating_satisfied_from: int = Field(
        default=4,
        ge=1,
        le=5,
        description="the lowest citizen's rating (1-5) counted as satisfied on the board and in"
        " the indicators (configurable default, not a figure from QĐ 766)",
    )
    consultation_reply_working_days: float = Field(
        default=5,
        gt=0,
        le=60,
        description="time a consulted unit has to reply, in its working days (configurable"
        " default, not a figure from the law)",
    )
    trace_ui_url: str = Field(
        default="http://127.0.0.1:9411/zipkin",
        description="the trace UI (Zipkin) the officials' pages link to: a trace is at"
        " {trace_ui_url}/traces/{trace_id}",
    )
    stuck_refresh_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description='how often the "stuck now" page refreshes its table in the browser',
    )
