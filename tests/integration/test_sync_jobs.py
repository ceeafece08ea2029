"""Sync jobs (Sync Orders and the reconciliation) and the tracking write-back, with the sync service in process on
the real PostgreSQL and Kafka, against the store emulators over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import insert, update

from services.sync.adapters.tables import stores, sync_jobs
from services.sync.app import app as sync_app
from services.sync.handlers import order_id_for
from services.sync.polling import start_job
from shared import topics
from shared.events import OrderShipped, OrderShippedPayload, parse_event
from tests.conftest import settings_for
from tests.kafka import new_topic_prefix, produce, read_topic
from tools import demo
from tools.emulators import serve
from tools.emulators.shopify import ShopifyEmulator
from tools.emulators.woocommerce import WooCommerceEmulator

PREFIX = new_topic_prefix("syncjob")


@pytest.fixture(scope="module")
async def sync(migrated):
    settings = settings_for(
        "sync",
        migrated,
        topic_prefix=PREFIX,
        sync_interval_seconds=3600,
        store_timeout_seconds=1,
        store_backoff_seconds=0.05,
        writeback_interval_seconds=0.1,
        writeback_backoff_seconds=0.1,
        writeback_max_attempts=4,
    )
    async with serve(sync_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


class Merchant:
    def __init__(self, sync: httpx.AsyncClient):
        self.sync, self.id = sync, f"m-{uuid.uuid4().hex[:8]}"
        self.headers = demo.auth("merchant", self.id)

    async def call(self, method: str, path: str, **kw) -> httpx.Response:
        return await self.sync.request(method, path, headers=self.headers, **kw)

    async def applied(self, store_id: str) -> None:
        """Wait until the store's accepted webhooks are applied (the orders they bring are held)."""
        async with asyncio.timeout(10):
            while True:
                deliveries = (await self.call("GET", f"/v1/stores/{store_id}/deliveries")).json()["items"]
                if deliveries and all(d["outcome"] for d in deliveries):
                    return
                await asyncio.sleep(0.05)

    async def connect(self, emulator, api_url: str) -> dict:
        if isinstance(emulator, ShopifyEmulator):
            body = {"platform": "shopify", "shop_domain": emulator.shop, "access_token": emulator.access_token}
        else:
            body = {
                "platform": "woocommerce",
                "shop_domain": emulator.site,
                "consumer_key": emulator.consumer_key,
                "consumer_secret": emulator.consumer_secret,
            }
        body |= {"name": "Store", "webhook_secret": emulator.webhook_secret, "api_url": api_url}
        response = await self.call("POST", "/v1/stores", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def sync_orders(self, store_id: str, timeout: float = 30) -> tuple[dict, list[dict]]:
        """Start a job and follow it to the end: (the finished job, every state seen on the way)."""
        started = await self.call("POST", f"/v1/stores/{store_id}/sync")
        assert started.status_code == 202, started.text
        seen = [started.json()]
        async with asyncio.timeout(timeout):
            while seen[-1]["status"] == "running":
                await asyncio.sleep(0.05)
                seen.append((await self.call("GET", f"/v1/sync-jobs/{seen[0]['id']}")).json())
        return seen[-1], seen


def new_shop(**kw) -> ShopifyEmulator:
    return ShopifyEmulator(f"s{uuid.uuid4().hex[:10]}.myshopify.com", access_token=f"shpat_{uuid.uuid4().hex}", **kw)


async def synced_events(migrated, order_ids: set[str]) -> Counter:
    records = await read_topic(
        migrated["KAFKA_BOOTSTRAP_SERVERS"], PREFIX + topics.STORE_ORDERS, until=10**6, timeout=4
    )
    return Counter(
        r.key.decode()
        for r in records
        if r.key.decode() in order_ids and parse_event(r.value).event_type == "OrderSynced"
    )


async def test_a_missed_webhook_is_found_by_the_sync_and_nothing_is_doubled(sync, migrated):
    merchant, shop = Merchant(sync), new_shop()
    async with serve(shop.app) as shop_url:
        store = await merchant.connect(shop, shop_url)
        for _ in range(3):
            shop.create_order()
        # orders/create + orders/paid per order: positions 2 and 3 are the second order's, lost on the way.
        statuses = await shop.deliver(f"{sync.base_url}/webhooks/shopify", drop={2, 3})
        assert statuses == [200] * 4
        await merchant.applied(store["id"])
        job, _ = await merchant.sync_orders(store["id"])
    assert job["status"] == "succeeded", job
    assert (job["pages"], job["new"], job["unchanged"], job["skipped"]) == (1, 1, 2, 0)
    order_ids = {order_id_for(store["id"], str(i)) for i in shop.orders}
    assert await synced_events(migrated, order_ids) == dict.fromkeys(order_ids, 1)


async def test_many_pages_under_a_strict_rate_limit(sync):
    merchant = Merchant(sync)
    shop = new_shop(bucket_size=2, drain_per_second=1)
    for _ in range(1_100):
        shop.create_order(queue_webhooks=False)
    async with serve(shop.app) as shop_url:
        store = await merchant.connect(shop, shop_url)
        shop.bucket.fill()  # the job starts with the allowance spent: its first call is refused
        job, seen = await merchant.sync_orders(store["id"], timeout=60)
    assert job["status"] == "succeeded", job
    assert (job["pages"], job["new"]) == (5, 1_100)
    assert shop.faults.count("GET", "/orders.json", 200) == 5
    assert shop.faults.count("GET", "/orders.json", 429) > 0  # the limit was hit, and honoured
    pages_seen = [s["pages"] for s in seen]
    assert pages_seen == sorted(pages_seen)
    history = (await merchant.call("GET", f"/v1/stores/{store['id']}/sync-jobs")).json()["items"]
    assert [h["id"] for h in history] == [job["id"]]


async def test_woocommerce_pages_and_settings_decide_what_syncs(sync):
    merchant = Merchant(sync)
    woo = WooCommerceEmulator(f"w{uuid.uuid4().hex[:8]}.example.com")
    for i in range(250):
        woo.create_order(status="pending" if i % 50 == 0 else "processing")
    async with serve(woo.app) as woo_url:
        store = await merchant.connect(woo, woo_url)
        defaults = (await merchant.call("GET", f"/v1/stores/{store['id']}/settings")).json()
        assert defaults["auto_sync"] is True and defaults["include_unpaid"] is False
        job, _ = await merchant.sync_orders(store["id"])
    assert job["status"] == "succeeded", job
    assert (job["pages"], job["new"], job["skipped"]) == (3, 245, 5)
    assert job["skipped_reasons"] == {"financial status is pending": 5}
    bad = await merchant.call("PUT", f"/v1/stores/{store['id']}/settings", json={"tracking_url_template": "http://x"})
    assert bad.status_code == 422


async def test_store_errors_are_retried_and_reported_and_revoked_credentials_disconnect(sync):
    merchant, shop = Merchant(sync), new_shop()
    shop.create_order(queue_webhooks=False)
    shop.faults.inject(503, count=2, path_contains="/orders.json")
    async with serve(shop.app) as shop_url:
        store = await merchant.connect(shop, shop_url)
        job, _ = await merchant.sync_orders(store["id"])
        assert job["status"] == "succeeded" and job["new"] == 1, job
        assert [e.split(";")[0] for e in job["errors"]] == ["GET /admin/api/2025-07/orders.json: HTTP 503"] * 2

        shop.revoke_token()
        job, _ = await merchant.sync_orders(store["id"])
    assert job["status"] == "failed" and "refused our credentials (401)" in job["errors"][-1]
    after = (await merchant.call("GET", f"/v1/stores/{store['id']}")).json()
    assert after["status"] == "disconnected" and "401" in after["status_reason"]
    assert (await merchant.call("POST", f"/v1/stores/{store['id']}/sync")).status_code == 409
    reconnected = await merchant.call("PATCH", f"/v1/stores/{store['id']}", json={"access_token": shop.access_token})
    assert reconnected.json()["status"] == "connected"


async def test_one_job_per_store_at_a_time(sync):
    merchant, shop = Merchant(sync), new_shop()
    shop.create_order(queue_webhooks=False)
    # The store does not answer the first call: the job times out (1 s), retries, and runs meanwhile.
    shop.faults.inject(None, count=1, path_contains="/orders.json", hang_seconds=3)
    async with serve(shop.app) as shop_url:
        store = await merchant.connect(shop, shop_url)
        first, second = await asyncio.gather(
            merchant.call("POST", f"/v1/stores/{store['id']}/sync"),
            merchant.call("POST", f"/v1/stores/{store['id']}/sync"),
        )
        assert first.json()["id"] == second.json()["id"]
        job, _ = await merchant.sync_orders(store["id"])  # the same running job, followed to its end
    assert job["id"] == first.json()["id"] and job["status"] == "succeeded"
    assert job["errors"] == ["GET /admin/api/2025-07/orders.json: timed out; retry 1 of 4"]


# --- tracking write-back ---------------------------------------------------------------------------------------


async def ship(migrated, store_id: str, external_id: str, merchant: str, **kw) -> str:
    shipment = kw.pop("shipment_id", f"shp-{uuid.uuid4().hex[:8]}")
    event = OrderShipped(
        merchant_id=merchant,
        order_id=order_id_for(store_id, external_id),
        payload=OrderShippedPayload(
            shipment_id=shipment,
            fulfillment_id=f"ful-{uuid.uuid4().hex[:8]}",
            carrier=kw.pop("carrier", "yunexpress"),
            tracking_number=kw.pop("tracking_number", f"YT{uuid.uuid4().hex[:12].upper()}"),
            tracking_url="https://example.com/t",
            shipped_at=datetime.now(UTC),
            store_id=store_id,
            external_order_id=external_id,
            **kw,
        ),
    )
    message = (event.key(), event.model_dump_json().encode())
    await produce(migrated["KAFKA_BOOTSTRAP_SERVERS"], PREFIX + topics.FULFILLMENT, message, message)  # twice
    return shipment


async def eventually(check, timeout: float = 20):
    """Wait until `check()` (a function or a coroutine function) gives something true, and return it."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.1)


async def test_write_back_is_retried_after_store_errors_and_done_exactly_once(sync, migrated):
    merchant, shop = Merchant(sync), new_shop()
    order = shop.create_order()
    shop.faults.inject(503, count=2, path_contains="/fulfillments.json")
    async with serve(shop.app) as shop_url:
        store = await merchant.connect(shop, shop_url)
        await shop.deliver(f"{sync.base_url}/webhooks/shopify")
        await merchant.applied(store["id"])
        number = f"YT{uuid.uuid4().hex[:10].upper()}"
        await ship(migrated, store["id"], str(order["id"]), merchant.id, tracking_number=number)
        await eventually(lambda: order["fulfillment_status"] == "fulfilled")
        # A reshipment moves the tracking of the same fulfillment.
        await ship(migrated, store["id"], str(order["id"]), merchant.id, tracking_number="RS123", reshipment_id="r1")
        await eventually(lambda: next(iter(shop.fulfillments.values()))["tracking_number"] == "RS123")
        await asyncio.sleep(0.5)  # time for a second push, if there were one
    (fulfillment,) = shop.fulfillments.values()
    assert shop.faults.count("POST", "/fulfillments.json", 201) == 1
    assert shop.faults.count("POST", "/fulfillments.json", 503) == 2
    assert fulfillment["tracking_company"] == "YunExpress" and fulfillment["tracking_url"] is None
    assert fulfillment["notify_customer"] is False and fulfillment["updates"] == 1


async def test_write_back_failures_are_listed_and_can_be_retried(sync, migrated):
    merchant, shop = Merchant(sync), new_shop()
    order = shop.create_order()
    async with serve(shop.app) as shop_url:
        store = await merchant.connect(shop, shop_url)
        await shop.deliver(f"{sync.base_url}/webhooks/shopify")
        await merchant.applied(store["id"])
        settings = {"notify_customer": True, "tracking_url_template": "https://track.example.com/{n}"}
        assert (await merchant.call("PUT", f"/v1/stores/{store['id']}/settings", json=settings)).status_code == 200
        shop.faults.inject(422, count=1, path_contains="/fulfillments.json")  # the store refuses: no blind retry
        await ship(migrated, store["id"], str(order["id"]), merchant.id, carrier="Acme Parcel", tracking_number="AC1")

        async def failed():
            items = (await merchant.call("GET", "/v1/tracking-sync/failures")).json()["items"]
            return items and items[0]["status"] == "failed" and items[0]

        push = await eventually(failed)
        assert push["attempts"] == 1 and push["attempt_log"][0]["status_code"] == 422
        retried = await merchant.call("POST", f"/v1/tracking-sync/failures/{push['id']}/retry")
        assert retried.status_code == 202
        await eventually(lambda: shop.fulfillments)
        stranger = Merchant(sync)
        assert (await stranger.call("POST", f"/v1/tracking-sync/failures/{push['id']}/retry")).status_code == 404
    (fulfillment,) = shop.fulfillments.values()
    assert fulfillment["tracking_company"] == "Acme Parcel"
    assert fulfillment["tracking_url"] == "https://track.example.com/AC1"
    assert fulfillment["notify_customer"] is True
    again = await merchant.call("POST", f"/v1/tracking-sync/failures/{push['id']}/retry")
    assert again.status_code == 409


@pytest.mark.parametrize("extension", [True, False])
async def test_woocommerce_write_back(sync, migrated, extension):
    merchant = Merchant(sync)
    woo = WooCommerceEmulator(f"w{uuid.uuid4().hex[:8]}.example.com", shipment_tracking=extension)
    order = woo.create_order()
    async with serve(woo.app) as woo_url:
        store = await merchant.connect(woo, woo_url)
        await woo.deliver(f"{sync.base_url}/webhooks/woocommerce/{store['id']}")
        await merchant.applied(store["id"])
        await ship(migrated, store["id"], str(order["id"]), merchant.id, tracking_number="WOO1")
        if extension:
            await eventually(lambda: woo.trackings.get(order["id"]))
            assert [t["tracking_number"] for t in woo.trackings[order["id"]]] == ["WOO1"]
        else:
            await eventually(lambda: woo.orders[order["id"]]["status"] == "completed")
            (note,) = woo.notes[order["id"]]
            assert "WOO1" in note["note"] and "https://t.17track.net/en#nums=WOO1" in note["note"]


async def test_the_periodic_reconciliation_finds_missed_orders_without_the_button(migrated):
    """Every store with auto-sync on is reconciled once per interval: orders whose webhooks never came appear."""
    settings = settings_for(
        "sync",
        migrated,
        topic_prefix=PREFIX,
        sync_interval_seconds=1,
        # the other tests' stores (their emulators gone) are reconciled too: let them fail fast
        store_timeout_seconds=1,
        store_max_retries=0,
        store_backoff_seconds=0.05,
    )
    shop = new_shop()
    async with (
        serve(shop.app) as shop_url,
        serve(sync_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        merchant = Merchant(http)
        store = await merchant.connect(shop, shop_url)
        for _ in range(2):
            shop.create_order(queue_webhooks=False)  # no webhook will ever tell us

        async def scheduled_job() -> dict | None:
            jobs = (await merchant.call("GET", f"/v1/stores/{store['id']}/sync-jobs")).json()["items"]
            return next((j for j in jobs if j["trigger"] == "schedule" and j["status"] != "running"), None)

        async with asyncio.timeout(20):
            while (job := await scheduled_job()) is None:
                await asyncio.sleep(0.1)
    assert job["status"] == "succeeded" and job["new"] == 2, job
    order_ids = {order_id_for(store["id"], str(i)) for i in shop.orders}
    assert await synced_events(migrated, order_ids) == dict.fromkeys(order_ids, 1)


async def test_starting_jobs_keeps_working_once_postgres_plans_the_statement_generically(engine_for, migrated):
    """The one-running-job guard is an ON CONFLICT on a partial index; PostgreSQL must infer that index on every
    execution, including after the 5th, when a prepared statement may switch to a generic plan."""
    engine = engine_for("sync")
    settings = settings_for("sync", migrated)
    store_id = f"st-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        store = (
            await conn.execute(
                insert(stores)
                .values(
                    id=store_id,
                    merchant_id="m-plan",
                    platform="shopify",
                    shop_domain=f"{store_id}.myshopify.com",
                    api_url="https://example.invalid",
                    name="s",
                    credentials="x",
                    webhook_secret="x",
                )
                .returning(stores)
            )
        ).one()
    async with engine.connect() as conn:  # one connection: one prepared statement, executed again and again
        for _ in range(8):
            job, created = await start_job(conn, store, "manual", settings)
            again, created_again = await start_job(conn, store, "manual", settings)
            assert created and not created_again and again.id == job.id
            await conn.execute(update(sync_jobs).where(sync_jobs.c.id == job.id).values(status="succeeded"))
        await conn.rollback()
