"""Run a service's app under uvicorn: one worker per process (scale with processes)."""

from __future__ import annotations

import socket

import uvicorn

from shared.settings import ServiceSettings


def serve(factory: str, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=1,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    if not settings.http_reuse_port:
        uvicorn.Server(config).run()
        return
    # Several processes on one port, each with its own listening socket: the kernel spreads
    # new connections over them, and one that dies takes only its own connections with it.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((settings.http_host, settings.http_port))
    uvicorn.Server(config).run(sockets=[listener])
