"""The whole stack for the story test: the four services as separate processes, wired to a Shopify and a
WooCommerce emulator, the Stripe emulator (served in the test's event loop) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TypeVar

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller

from shared.migrations import upgrade
from shared.settings import ServiceSettings
from tests.conftest import SERVICES as MIGRATED
from tests.conftest import settings_for
from tools import demo
from tools.emulators import serve
from tools.emulators import stripe as stripe_emulator
from tools.emulators.shopify import ShopifyEmulator
from tools.emulators.woocommerce import WooCommerceEmulator
from tools.stack import SERVICES, Stack, free_ports

STRIPE_KEY = "sk_test_story"
STRIPE_WEBHOOK_SECRET = "whsec_story"
T = TypeVar("T")


class Inbox:
    """aiosmtpd handler keeping every message the SMTP server accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, recipient: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == recipient]


async def eventually(check: Callable[[], Awaitable[T]], what: str, timeout: float = 15) -> T:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {result!r}")
        await asyncio.sleep(0.1)


@dataclass
class Story:
    stack: Stack
    shop: ShopifyEmulator
    shop_url: str
    woo: WooCommerceEmulator
    woo_url: str
    stripe: stripe_emulator.State
    inbox: Inbox
    merchant: str = field(default_factory=lambda: f"m-{uuid.uuid4().hex[:8]}")
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=15))

    async def call(self, method: str, service: str, path: str, role: str = "merchant", **kw) -> httpx.Response:
        headers = {**demo.auth(role, self.merchant), **kw.pop("headers", {})}
        return await self.http.request(method, f"{self.stack.url(service)}{path}", headers=headers, **kw)

    async def ok(self, method: str, service: str, path: str, status: int = 200, **kw) -> dict:
        response = await self.call(method, service, path, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def order(self, order_id: str) -> dict:
        return await self.ok("GET", "orders", f"/v1/orders/{order_id}")

    async def status_of(self, order_id: str, status: str) -> dict | None:
        response = await self.call("GET", "orders", f"/v1/orders/{order_id}")
        return response.json() if response.status_code == 200 and response.json()["status"] == status else None

    async def in_status(self, order_id: str, status: str, timeout: float = 15) -> dict:
        """The order's detail once it is in `status`."""
        return await eventually(lambda: self.status_of(order_id, status), f"order {order_id} in {status}", timeout)

    async def fulfillments(self, step: str = "purchasing") -> list[dict]:
        """The merchant's fulfillment jobs at one step (ops' queue is every merchant's)."""
        found, cursor = [], None
        while True:
            params = {"step": step, "limit": 250, **({"cursor": cursor} if cursor else {})}
            page = await self.ok("GET", "tracking", "/v1/fulfillments", role="ops", params=params)
            found += [j for j in page["items"] if j["merchant_id"] == self.merchant]
            if not (cursor := page["next_cursor"]):
                return found


@contextlib.asynccontextmanager
async def own_database(infra: ServiceSettings, env: dict[str, str]) -> AsyncIterator[str]:
    """A database of the story's own, migrated: the background loops of its services (tracking write-back, email
    sender, scheduled syncs) then see only the story's rows, not those other tests of the session left behind."""
    name = f"story_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.asyncpg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{infra.database_url.rsplit('/', 1)[0]}/{name}"
        for service in MIGRATED:
            await asyncio.to_thread(upgrade, f"services.{service}", settings_for(service, {**env, "DATABASE_URL": url}))
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
async def story(infra, service_env, tmp_path_factory) -> AsyncIterator[Story]:
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    stripe_port, smtp_port = free_ports(2)
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    tag = uuid.uuid4().hex[:8]
    shop = ShopifyEmulator(
        f"aurora-{tag}.myshopify.com", access_token=f"shpat_{tag}", webhook_secret=f"shopify-secret-{tag}"
    )
    woo = WooCommerceEmulator(
        f"woo-{tag}.example.com", consumer_key=f"ck_{tag}", consumer_secret=f"cs_{tag}", webhook_secret=f"woo-{tag}"
    )
    stripe_app = stripe_emulator.create_app(
        f"http://127.0.0.1:{ports['checkout']}/webhooks/stripe", STRIPE_WEBHOOK_SECRET
    )
    env = {
        **service_env,
        # Topics of its own: no other stack of this session consumes this story's events.
        "TOPIC_PREFIX": f"{service_env['TOPIC_PREFIX']}story{tag}.",
        "SYNC_PUBLIC_URL": f"http://127.0.0.1:{ports['sync']}",
        "SYNC_INTERVAL_SECONDS": "3600",  # only the merchant's Sync Orders finds dropped webhooks here
        "STORE_BACKOFF_SECONDS": "0.05",
        "WRITEBACK_INTERVAL_SECONDS": "0.1",
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "EMAIL_POLL_SECONDS": "0.1",
        "AFTERSHIP_WEBHOOK_SECRET": f"aftership-{tag}",
    }
    try:
        async with (
            own_database(infra, env) as database_url,
            serve(shop.app) as shop_url,
            serve(woo.app) as woo_url,
            serve(stripe_app, stripe_port),
        ):
            env["DATABASE_URL"] = database_url
            stack = Stack(env, ports=ports, log_dir=tmp_path_factory.mktemp("story-logs"))
            story = Story(stack, shop, shop_url, woo, woo_url, stripe_app.state.stripe, inbox)
            try:
                # start_all polls with blocking sleeps: off the loop, which serves the emulators meanwhile
                await asyncio.to_thread(stack.start_all, 60)
                yield story
            finally:
                await story.http.aclose()
                await asyncio.to_thread(stack.stop)
    finally:
        smtp.stop()
