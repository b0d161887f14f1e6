"""The deadline service's settings: what `ServiceSettings` has, and its own (environment
variables; a missing or malformed value stops the service at start)."""

from __future__ import annotations

from pydantic import Field

from shared.auth import OidcSettings
from shared.settings import ServiceSettings


class DeadlineSettings(ServiceSettings, OidcSettings):
    oidc_audience: str = "onestop-deadline"
    due_soon_lead_working_hours: float = Field(default=8.0, ge=0)
    lateness_scan_interval_seconds: float = Field(default=1.0, gt=0)
