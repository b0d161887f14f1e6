"""The routing service's settings: only what every service needs (environment variables; a
missing or malformed value stops the service at start)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    pass
