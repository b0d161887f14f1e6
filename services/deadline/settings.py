"""The deadline service's settings: what `ServiceSettings` has, and its own (environment
variables; a missing or malformed value stops the service at start)."""

from __future__ import annotations

from pydantic import Field

from services.deadline.domain import SupplementMissedPolicy
from shared.auth import OidcSettings
from shared.settings import ServiceSettings


class DeadlineSettings(ServiceSettings, OidcSettings):
    oidc_audience: str = "onestop-deadline"
    due_soon_lead_working_hours: float = Field(default=8.0, ge=0)
    lateness_scan_interval_seconds: float = Field(default=1.0, gt=0)
    supplement_missed_policy: SupplementMissedPolicy = Field(
        default=SupplementMissedPolicy.ALERT,
        description="when a supplement deadline passes with nothing received: alert the holding"
        " unit's head and operators (alert), or also propose refusal (propose_refusal)",
    )
