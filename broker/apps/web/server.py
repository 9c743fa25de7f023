"""Serve the web app on 127.0.0.1 inside a running event loop (``ketenbus up``, ``ketenbus web``,
the tests). Loopback only: put a TLS-terminating reverse proxy in front to reach it from
elsewhere. Uvicorn's access log is off: the search form posts its BSN in the body, never in a
URL, but request lines are still none of the log's business."""

from __future__ import annotations

import asyncio

import uvicorn
from fastapi import FastAPI

from broker.kafka import port_is_free

HOST = "127.0.0.1"


class WebPortInUse(RuntimeError):
    """The web app's port is taken."""


class WebServer:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.url: str | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, port: int) -> str:
        """Listen on 127.0.0.1:``port`` (0: a free port); returns the base URL."""
        if port and not port_is_free(port):
            raise WebPortInUse(
                f"port {port} on {HOST} is in use: choose another with --web-port (0: any free)"
            )
        config = uvicorn.Config(self.app, host=HOST, port=port, log_level="warning",
                                access_log=False, lifespan="off",
                                timeout_graceful_shutdown=3)  # live streams do not end alone
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(), name="ketenbus-web")
        for _ in range(200):
            if server.started or self._task.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            await self.stop()
            raise RuntimeError(f"the web app did not start on {HOST}:{port}")
        bound = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{HOST}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
            self._server = None
            self._task = None
