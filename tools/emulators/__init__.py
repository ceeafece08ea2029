"""Store emulators (Shopify, WooCommerce) speaking real HTTP, for tests, benchmarks and the demo.

Each emulator is an object holding the store's state, with a FastAPI `app` that serves the platform's documented
admin API plus a control API under `/_emulator` (create, update and cancel orders; deliver webhooks; inject
faults). Tests may also call the object's methods directly. `serve(app)` runs an app with uvicorn inside the
caller's event loop on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tools.stack import free_ports


@contextlib.asynccontextmanager
async def serve(app, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app in this event loop; yields its base URL and stops it on exit."""
    port = port or free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Fault:
    status: int | None  # an HTTP status to answer with, or None for a timeout (the emulator hangs)
    remaining: int
    path_contains: str = ""
    hang_seconds: float = 30.0


@dataclass
class Faults:
    """Failures injected into the admin API on demand, and a log of the requests it served."""

    pending: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def inject(self, status: int | None, count: int = 1, path_contains: str = "", hang_seconds: float = 30.0) -> None:
        self.pending.append(Fault(status, count, path_contains, hang_seconds))

    async def apply(self, request: Request) -> Response | None:
        for fault in self.pending:
            if fault.remaining > 0 and fault.path_contains in request.url.path:
                fault.remaining -= 1
                if fault.status is None:
                    await asyncio.sleep(fault.hang_seconds)
                    return JSONResponse({"errors": "timed out"}, status_code=504)
                return JSONResponse({"errors": "injected failure"}, status_code=fault.status)
        return None

    def count(self, method: str, path_contains: str, status: int | None = None) -> int:
        return sum(
            1 for m, p, s in self.requests if m == method and path_contains in p and (status is None or s == status)
        )
