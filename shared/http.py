"""HTTP conventions shared by the four services: problem+json errors, correlation ids, body-size limit,
health and readiness, list envelopes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import unavailable
from shared.errors import IllegalTransition, ProblemError
from shared.logging import bind_correlation_id, correlation_id, get_logger

log = get_logger(__name__)

PROBLEM = "application/problem+json"
CORRELATION_HEADER = "x-correlation-id"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict] | None = None


PROBLEM_RESPONSES: dict[int | str, dict] = {
    code: {"model": Problem, "content": {PROBLEM: {}}} for code in (400, 401, 403, 404, 409, 413, 422)
}

Limit = Annotated[int, Query(ge=1, le=250, description="page size")]
Cursor = Annotated[str | None, Query(description="opaque cursor from the previous page's next_cursor")]


def problem(status: int, title: str, detail: str | None = None, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, errors=exc.errors, **exc.extra)

    @app.exception_handler(IllegalTransition)
    async def _illegal(_: Request, exc: IllegalTransition) -> JSONResponse:
        return problem(409, "Conflict", str(exc), current_status=exc.current)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        fields = ", ".join(e["field"] or "body" for e in errors)
        status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
        return problem(status, "Invalid request", f"invalid fields: {fields}", errors=errors)

    @app.exception_handler(DBAPIError)
    async def _nul_in_text(_: Request, exc: DBAPIError) -> JSONResponse:
        """PostgreSQL refuses NUL characters in text and jsonb; only a client's input carries them."""
        if getattr(exc.orig, "sqlstate", None) not in ("22021", "22P05"):
            raise exc
        return problem(422, "Invalid request", "text must not contain NUL (\\u0000) characters")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if unavailable(exc):  # the database restarts: the client retries shortly (Idempotency-Key makes it safe)
            log.warning("http.unavailable", path=request.url.path, error=repr(exc))
            response = problem(503, "Service unavailable", "the database cannot be reached; retry shortly")
            response.headers["Retry-After"] = "1"
            return response
        log.exception("http.unhandled", path=request.url.path)
        return problem(
            500,
            "Internal server error",
            "the error was logged with this correlation id",
            correlation_id=correlation_id(),
        )


class RequestContextMiddleware:
    """Binds the correlation id (taken from X-Correlation-ID or new), returns it, and refuses bodies over the
    size limit before they are read into memory."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        cid = bind_correlation_id(headers.get(CORRELATION_HEADER.encode(), b"").decode()[:128] or None)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await problem(413, "Content too large", f"the body limit is {self.max_body_bytes} bytes")(
                scope, receive, send
            )
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((CORRELATION_HEADER.encode(), cid.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await problem(413, "Content too large", f"the body limit is {self.max_body_bytes} bytes")(
                scope, receive, send
            )


class _BodyTooLarge(Exception):
    pass


class DirectRoute(APIRoute):
    """A documented route for requests that come thousands a second (store webhooks), which a ServiceApp serves
    ahead of its middleware stack and router: each layer of those wraps the request and every message of the answer
    again, and together they cost more than the work of such a request. Its endpoint takes the request and its path
    parameters (strings), reads its headers and body itself, and returns a Response that goes out as it is."""


class ServiceApp(FastAPI):
    """The services' app: a FastAPI app that serves its DirectRoutes ahead of its middleware stack and router, with
    the same conventions (correlation id, body limit, problem+json errors from the app's exception handlers)."""

    def __init__(self, *, max_body_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_body_bytes = max_body_bytes
        self.add_middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)
        self._direct: list[tuple[set[str], re.Pattern, ASGIApp]] = []

    def include_router(self, router: APIRouter, **kwargs: Any) -> None:
        super().include_router(router, **kwargs)
        direct = [route for route in router.routes if isinstance(route, DirectRoute)]
        if direct and kwargs.get("prefix"):
            raise ValueError("DirectRoutes are matched by their own paths: include their router without a prefix")
        self._direct += [(route.methods, route.path_regex, self._direct_app(route.endpoint)) for route in direct]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for methods, path, app in self._direct:
                if scope["method"] in methods and (match := path.match(scope["path"])):
                    scope["app"], scope["path_params"] = self, match.groupdict()
                    await app(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    def _direct_app(self, endpoint: Callable[..., Awaitable[Response]]) -> ASGIApp:
        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            try:
                response = await endpoint(request=request, **scope["path_params"])
            except _BodyTooLarge:
                raise  # answered by RequestContextMiddleware
            except Exception as exc:
                response = await self._error_response(request, exc)
            await response(scope, receive, send)

        return RequestContextMiddleware(serve, self.max_body_bytes)

    async def _error_response(self, request: Request, exc: Exception) -> Response:
        """The answer the app's exception handlers give, as they would through the middleware stack: the handler of
        the nearest class, and the one for any Exception when there is none or it gives up."""
        handler = next(h for cls in type(exc).__mro__ if (h := self.exception_handlers.get(cls)) is not None)
        try:
            return await handler(request, exc)
        except Exception as again:
            return await self.exception_handlers[Exception](request, again)


def install_health(app: FastAPI, ready_check: Callable[[], Awaitable[dict[str, bool]]]) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Database and Kafka are reachable")
    async def readyz() -> JSONResponse:
        checks = await ready_check()
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


async def _engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


Engine = Annotated[AsyncEngine, Depends(_engine)]
