"""Run a service's app under uvicorn: one worker per process (scale with processes)."""

from __future__ import annotations

import uvicorn

from shared.settings import ServiceSettings


def serve(factory: str, settings: ServiceSettings) -> None:
    uvicorn.run(
        factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=1,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
