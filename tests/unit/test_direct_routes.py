"""DirectRoutes skip the app's middleware stack and router, and keep its conventions: correlation id, body limit,
problem+json answers from the app's exception handlers."""

import httpx
from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import DBAPIError

from shared.errors import Unauthorized
from shared.http import DirectRoute, ServiceApp, install_error_handlers

router = APIRouter(route_class=DirectRoute)


@router.post("/hooks/{kind}")
async def hook(request: Request, kind: str) -> Response:
    body = await request.body()
    if kind == "unsigned":
        raise Unauthorized("the webhook signature does not match")
    if kind == "broken":
        raise RuntimeError("a bug")
    if kind == "database":
        raise DBAPIError("INSERT", {}, Exception("deadlock"))
    return Response(kind.encode() + b":" + body, media_type="text/plain")


def service_app() -> tuple[ServiceApp, list[str]]:
    app = ServiceApp(max_body_bytes=64)
    install_error_handlers(app)
    through_stack: list[str] = []

    @app.middleware("http")
    async def note(request: Request, call_next):
        through_stack.append(request.url.path)
        return await call_next(request)

    @app.get("/other")
    async def other() -> dict:
        return {"ok": True}

    app.include_router(router)
    return app, through_stack


async def test_direct_routes_skip_the_stack_and_keep_the_conventions():
    app, through_stack = service_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        ok = await http.post("/hooks/shopify", content=b"{}", headers={"X-Correlation-ID": "c-1"})
        assert (ok.status_code, ok.text, ok.headers["x-correlation-id"]) == (200, "shopify:{}", "c-1")

        refused = await http.post("/hooks/unsigned", content=b"{}")
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == "the webhook signature does not match"
        assert refused.headers["x-correlation-id"]  # a new one

        broken = await http.post("/hooks/broken", content=b"{}")
        assert broken.status_code == 500 and broken.json()["correlation_id"] == broken.headers["x-correlation-id"]
        database = await http.post("/hooks/database", content=b"{}")  # its handler gives up: the catch-all answers
        assert database.status_code == 500 and database.json()["title"] == "Internal server error"

        too_large = await http.post("/hooks/shopify", content=b"x" * 65)
        assert too_large.status_code == 413

        async def chunks():
            for _ in range(3):
                yield b"x" * 30

        streamed = await http.post("/hooks/shopify", content=chunks())
        assert streamed.status_code == 413

        assert (await http.get("/hooks/shopify")).status_code == 405  # another method: the router answers
        assert (await http.get("/other")).json() == {"ok": True}
    assert through_stack == ["/hooks/shopify", "/other"]
