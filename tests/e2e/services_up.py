"""The four services as processes on free ports, with the Stripe emulator and an SMTP sink, for the end-to-end tests
that walk or fuzz every route; and which role each route requires, read from the apps themselves."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import uvicorn
from aiosmtpd.controller import Controller
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared.auth import AnyUser, Merchant, Ops
from tests.kafka import new_topic_prefix
from tools.emulators import stripe as stripe_emulator
from tools.stack import SERVICES, Stack, free_ports

Role = Literal["merchant", "ops", "any", "public"]

# Known values for every secret the services are configured with, so tests can look for them in answers and logs.
STRIPE_SECRET_KEY = f"sk_test_{uuid.uuid4().hex}"
STRIPE_WEBHOOK_SECRET = f"whsec_{uuid.uuid4().hex}"
AFTERSHIP_WEBHOOK_SECRET = f"aftership-{uuid.uuid4().hex}"
CONFIGURED_SECRETS = (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, AFTERSHIP_WEBHOOK_SECRET)


class Inbox:
    """SMTP handler that keeps what it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@dataclass
class Services:
    stack: Stack
    stripe_url: str
    inbox: Inbox
    env: dict[str, str]
    log_dir: Path
    roles: dict[tuple[str, str, str], Role] = field(default_factory=dict)  # (service, METHOD, path) -> role

    def url(self, service: str) -> str:
        return self.stack.url(service)

    def logs(self) -> dict[str, str]:
        return {p.name: p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log"))}


@contextlib.contextmanager
def _stripe(webhook_url: str, port: int) -> Iterator[str]:
    """The Stripe emulator in a thread of its own, so that synchronous tests can use it."""
    app = stripe_emulator.create_app(webhook_url, STRIPE_WEBHOOK_SECRET)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Stripe emulator did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def services_up(base_env: dict[str, str], log_dir: Path, **extra_env: str) -> Iterator[Services]:
    """All four services, migrated already by the caller's `migrated` fixture, on their own topics."""
    *service_ports, stripe_port, smtp_port = free_ports(len(SERVICES) + 2)
    ports = dict(zip(SERVICES, service_ports, strict=True))
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        with _stripe(f"http://127.0.0.1:{ports['checkout']}/webhooks/stripe", stripe_port) as stripe_url:
            env = {
                **base_env,
                "TOPIC_PREFIX": new_topic_prefix("e2e"),
                "STRIPE_API_BASE": stripe_url,
                "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
                "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
                "AFTERSHIP_WEBHOOK_SECRET": AFTERSHIP_WEBHOOK_SECRET,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp_port),
                **extra_env,
            }
            stack = Stack(env, ports=ports, log_dir=log_dir)
            try:
                stack.start_all(timeout=90)
                yield Services(stack, stripe_url, inbox, env, log_dir, route_roles())
            finally:
                stack.stop()
    finally:
        smtp.stop()


# --- which role a route needs, from its dependencies ---------------------------------------------------------------


def _dependency(annotation) -> object:
    return get_args(annotation)[1].dependency


_ROLE_OF = {_dependency(Merchant): "merchant", _dependency(Ops): "ops", _dependency(AnyUser): "any"}


def _roles_in(dependant: Dependant) -> set[str]:
    found = {_ROLE_OF[dependant.call]} if dependant.call in _ROLE_OF else set()
    for sub in dependant.dependencies:
        found |= _roles_in(sub)
    return found


def _role(route: APIRoute) -> Role:
    found = _roles_in(route.dependant)
    if "merchant" in found and "ops" in found:
        raise AssertionError(f"{route.path} asks for both roles, which no token has")
    for role in ("merchant", "ops", "any"):
        if role in found:
            return role  # type: ignore[return-value]
    return "public"


def route_roles() -> dict[tuple[str, str, str], Role]:
    """(service, METHOD, path template) -> the role its dependencies require, for every route of every service."""
    roles: dict[tuple[str, str, str], Role] = {}
    for service in SERVICES:
        app = importlib.import_module(f"services.{service}.app").app()
        # The service's own routers (the app holds them only as lazily flattened includes) and the app's routes.
        for route in [*app.routes, *(r for router in app.state.definition.routers for r in router.routes)]:
            if isinstance(route, APIRoute):
                for method in route.methods:
                    roles[(service, method, route.path)] = _role(route)
    return roles
