"""Store webhooks into the sync service, run in process (uvicorn in the test's event loop) on the real PostgreSQL
and Kafka, fed by the Shopify and WooCommerce emulators over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event, insert, select, update

from services.sync import webhooks
from services.sync.adapters import inbox
from services.sync.adapters.inbox import Delivery, DeliveryInbox, StoreDirectory
from services.sync.adapters.tables import store_orders, stores, webhook_deliveries, webhook_failures
from services.sync.app import app as sync_app
from services.sync.domain import shopify
from services.sync.handlers import order_id_for
from shared import topics
from shared.events import parse_event
from tests.conftest import settings_for
from tests.kafka import new_topic_prefix, read_topic
from tools import demo
from tools.emulators import serve
from tools.emulators.shopify import ShopifyEmulator
from tools.emulators.woocommerce import WooCommerceEmulator

PREFIX = new_topic_prefix("syncwh")


@pytest.fixture(scope="module")
async def sync(migrated):
    settings = settings_for("sync", migrated, topic_prefix=PREFIX, sync_interval_seconds=3600)
    async with serve(sync_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        settings.sync_public_url = url  # known once it listens: where the stores deliver the webhooks we register
        yield http


def merchant_auth(merchant: str) -> dict[str, str]:
    return demo.auth("merchant", merchant)


async def connect(sync: httpx.AsyncClient, merchant: str, emulator, api_url: str | None = None) -> dict:
    if isinstance(emulator, ShopifyEmulator):
        body = {"platform": "shopify", "shop_domain": emulator.shop, "access_token": emulator.access_token}
    else:
        body = {
            "platform": "woocommerce",
            "shop_domain": emulator.site,
            "consumer_key": emulator.consumer_key,
            "consumer_secret": emulator.consumer_secret,
        }
    body |= {"name": f"Store of {merchant}", "webhook_secret": emulator.webhook_secret, "api_url": api_url}
    response = await sync.post("/v1/stores", json=body, headers=merchant_auth(merchant))
    assert response.status_code == 201, response.text
    return response.json()


def new_shop() -> ShopifyEmulator:
    return ShopifyEmulator(f"s{uuid.uuid4().hex[:10]}.myshopify.com", access_token=f"shpat_{uuid.uuid4().hex}")


async def events_for(migrated, order_ids: set[str], expected: int | None = None) -> list:
    """The store-orders events published for these orders: all there are after 3 s, or, with `expected`, as soon
    as that many are there (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        records = await read_topic(
            migrated["KAFKA_BOOTSTRAP_SERVERS"], PREFIX + topics.STORE_ORDERS, until=10**9, timeout=3
        )
        events = [parse_event(r.value) for r in records if r.key.decode() in order_ids]
        if expected is None or len(events) >= expected or time.monotonic() > deadline:
            return events


async def applied(sync: httpx.AsyncClient, merchant: str, store_id: str) -> dict[str, str]:
    """Wait until every accepted delivery of the store is applied; its outcomes by delivery key."""
    deadline = time.monotonic() + 10
    while True:
        page = await sync.get(f"/v1/stores/{store_id}/deliveries?limit=200", headers=merchant_auth(merchant))
        assert page.status_code == 200, page.text
        outcomes = {d["delivery_key"]: d["outcome"] for d in page.json()["items"]}
        if None not in outcomes.values() or time.monotonic() > deadline:
            return outcomes
        await asyncio.sleep(0.05)


async def test_shopify_signatures_are_checked_before_anything_is_stored(sync, engine_for):
    shop = new_shop()
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    store = await connect(sync, merchant, shop)
    order = shop.create_order()
    body = json.dumps(order).encode()
    forged = {**shop.signed_headers("orders/create", body), "X-Shopify-Hmac-Sha256": "AAAA" + "=" * 40}
    assert (await sync.post("/webhooks/shopify", content=body, headers=forged)).status_code == 401
    tampered = shop.signed_headers("orders/create", body)
    assert (await sync.post("/webhooks/shopify", content=body + b" ", headers=tampered)).status_code == 401
    unknown = {**shop.signed_headers("orders/create", body), "X-Shopify-Shop-Domain": "nobody.myshopify.com"}
    response = await sync.post("/webhooks/shopify", content=body, headers=unknown)
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    async with engine_for("sync").connect() as conn:
        held = (await conn.execute(select(store_orders).where(store_orders.c.store_id == store["id"]))).all()
    assert held == []
    signed = shop.signed_headers("orders/create", body)
    good = await sync.post("/webhooks/shopify", content=body, headers=signed)
    assert good.status_code == 200 and good.json()["outcome"] == "accepted", good.text
    assert await applied(sync, merchant, store["id"]) == {signed["X-Shopify-Webhook-Id"]: "synced"}


async def test_every_delivery_duplicated_gives_one_order_and_one_event(sync, migrated):
    shop = new_shop()
    await connect(sync, f"m-{uuid.uuid4().hex[:8]}", shop)
    for _ in range(5):
        shop.create_order()
    statuses = await shop.deliver(f"{sync.base_url}/webhooks/shopify", duplicates=4, shuffle=True, seed=3)
    assert statuses == [200] * 40  # 5 orders x (orders/create + orders/paid) x 4 copies
    external = {str(i) for i in shop.orders}
    order_ids = {
        (await sync.post("/webhooks/shopify", content=b, headers=shop.signed_headers("orders/paid", b))).json()[
            "order_id"
        ]
        for b in (json.dumps(o).encode() for o in shop.orders.values())
    }
    assert len(order_ids) == 5
    events = await events_for(migrated, order_ids)
    synced = Counter(e.order_id for e in events if e.event_type == "OrderSynced")
    assert synced == dict.fromkeys(order_ids, 1)
    assert {e.payload.order.external_order_id for e in events} == external


async def test_shuffled_deliveries_leave_the_newest_state(sync, engine_for):
    shop = new_shop()
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    store = await connect(sync, merchant, shop)
    order = shop.create_order()
    for city in ("Lisbon", "Porto", "Braga", "Faro"):
        shop.update_order(order["id"], shipping_address={**order["shipping_address"], "city": city})
    await shop.deliver(f"{sync.base_url}/webhooks/shopify", shuffle=True, seed=7)
    outcomes = await applied(sync, merchant, store["id"])
    assert len(outcomes) == 6 and any(o.startswith("stale") for o in outcomes.values()), outcomes
    async with engine_for("sync").connect() as conn:
        held = (
            await conn.execute(select(store_orders.c.payload).where(store_orders.c.store_id == store["id"]))
        ).scalar_one()
    assert held["shipping_address"]["city"] == "Faro"
    assert held["store_updated_at"].startswith(order["updated_at"][:19])


async def test_a_store_side_cancellation_is_published(sync, migrated):
    shop = new_shop()
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    store = await connect(sync, merchant, shop)
    order = shop.create_order()
    shop.cancel_order(order["id"])
    statuses = await shop.deliver(f"{sync.base_url}/webhooks/shopify")
    assert statuses == [200, 200, 200]
    await applied(sync, merchant, store["id"])
    body = json.dumps(order).encode()
    signed = shop.signed_headers("orders/cancelled", body)
    again = await sync.post("/webhooks/shopify", content=body, headers=signed)
    assert again.json()["outcome"] == "accepted"
    assert (await applied(sync, merchant, store["id"]))[signed["X-Shopify-Webhook-Id"]].startswith("stale")
    events = await events_for(migrated, {again.json()["order_id"]}, expected=2)
    assert [e.event_type for e in events] == ["OrderSynced", "StoreOrderCancelled"]


async def test_a_payload_without_what_we_need_is_refused_and_kept(sync):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    await connect(sync, merchant, shop)
    order = shop.create_order()
    del order["currency"]
    body = json.dumps(order).encode()
    response = await sync.post("/webhooks/shopify", content=body, headers=shop.signed_headers("orders/create", body))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "currency"
    malformed = b'{"id": 1,'
    bad = await sync.post(
        "/webhooks/shopify", content=malformed, headers=shop.signed_headers("orders/create", malformed)
    )
    assert bad.status_code == 400
    failures = (await sync.get("/v1/webhook-failures", headers=merchant_auth(merchant))).json()["items"]
    assert [(f["field"], f["topic"], f["payload"]) for f in failures] == [("currency", "orders/create", body.decode())]
    stranger = (await sync.get("/v1/webhook-failures", headers=merchant_auth("someone-else"))).json()["items"]
    assert all(f["id"] != failures[0]["id"] for f in stranger)


async def test_app_uninstalled_disconnects_the_store_and_the_merchant_can_remove_it(sync):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    store = await connect(sync, merchant, shop)
    body = json.dumps({"id": 1, "domain": shop.shop}).encode()
    response = await sync.post("/webhooks/shopify", content=body, headers=shop.signed_headers("app/uninstalled", body))
    assert response.json()["outcome"] == "store disconnected"
    after = (await sync.get(f"/v1/stores/{store['id']}", headers=merchant_auth(merchant))).json()
    assert after["status"] == "disconnected" and "uninstalled" in after["status_reason"]
    assert (await sync.delete(f"/v1/stores/{store['id']}", headers=merchant_auth("someone-else"))).status_code == 404
    assert (await sync.delete(f"/v1/stores/{store['id']}", headers=merchant_auth(merchant))).status_code == 204
    assert (await sync.get(f"/v1/stores/{store['id']}", headers=merchant_auth(merchant))).status_code == 404
    order = json.dumps(shop.create_order()).encode()
    refused = await sync.post("/webhooks/shopify", content=order, headers=shop.signed_headers("orders/create", order))
    assert refused.status_code == 401  # a removed store's webhooks are refused
    await connect(sync, merchant, shop)  # and the shop can be connected again


async def test_woocommerce_webhooks_signature_ping_dedupe_and_delete(sync, migrated):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    woo = WooCommerceEmulator(f"w{uuid.uuid4().hex[:8]}.example.com")
    store = await connect(sync, merchant, woo)
    url = f"{sync.base_url}/webhooks/woocommerce/{store['id']}"
    ping = await sync.post(url, content=b"webhook_id=5", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert ping.status_code == 200 and ping.json()["outcome"] == "ping"
    unknown = f"{sync.base_url}/webhooks/woocommerce/{uuid.uuid4()}"
    assert (await sync.post(unknown, content=b"webhook_id=5")).status_code == 401

    order = woo.create_order()
    body = json.dumps(order).encode()
    forged = {**woo.signed_headers("order.created", body), "X-WC-Webhook-Signature": "bm9wZQ=="}
    assert (await sync.post(url, content=body, headers=forged)).status_code == 401
    assert await woo.deliver(url, duplicates=3) == [200, 200, 200]
    first = await sync.post(url, content=body, headers=woo.signed_headers("order.created", body))
    assert first.json()["outcome"] == "duplicate"  # same order id and date_modified_gmt
    woo.delete_order(order["id"])
    assert await woo.deliver(url) == [200]
    events = await events_for(migrated, {order_id_for(store["id"], str(order["id"]))}, expected=2)
    kinds = [e.event_type for e in events]
    assert kinds == ["OrderSynced", "StoreOrderCancelled"], kinds
    synced = events[0].payload.order
    assert synced.platform == "woocommerce" and str(synced.total_price.amount) == "19.90"
    assert synced.store_name == f"Store of {merchant}"


async def test_connecting_registers_our_webhooks_in_the_store(sync, migrated):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    woo = WooCommerceEmulator(f"w{uuid.uuid4().hex[:8]}.example.com")
    async with serve(shop.app) as shop_url, serve(woo.app) as woo_url:
        store = await connect(sync, merchant, shop, api_url=shop_url)
        woo_store = await connect(sync, merchant, woo, api_url=woo_url)
        for connected in (store, woo_store):
            response = await sync.post(f"/v1/stores/{connected['id']}/webhooks", headers=merchant_auth(merchant))
            assert response.status_code == 200, response.text
        shop.create_order()
        woo.create_order()
        assert await shop.deliver() == [200, 200]  # to the addresses registered, not to a URL given here
        assert await woo.deliver() == [200]
    assert sorted(w["topic"] for w in shop.webhooks) == sorted(
        ["orders/create", "orders/paid", "orders/updated", "orders/cancelled", "app/uninstalled"]
    )
    assert {w["address"] for w in shop.webhooks} == {f"{sync.base_url}/webhooks/shopify"}
    assert {w["delivery_url"] for w in woo.webhooks} == {f"{sync.base_url}/webhooks/woocommerce/{woo_store['id']}"}
    events = await events_for(
        migrated,
        {
            order_id_for(store["id"], str(next(iter(shop.orders)))),
            order_id_for(woo_store["id"], str(next(iter(woo.orders)))),
        },
        expected=2,
    )
    assert sorted(e.payload.order.platform for e in events) == ["shopify", "woocommerce"]


async def test_a_cancellation_that_overtakes_its_order_keeps_the_order_out(sync, migrated):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    store = await connect(sync, merchant, shop)
    order = dict(shop.create_order())  # the version orders/create carried
    shop.cancel_order(order["id"])
    shop.outgoing.reverse()  # the store's cancellation arrives first
    assert await shop.deliver(f"{sync.base_url}/webhooks/shopify") == [200, 200, 200]
    outcomes = sorted((await applied(sync, merchant, store["id"])).values())
    assert outcomes[0].startswith("skipped: cancelled in the store") and all(
        o.startswith("stale") for o in outcomes[1:]
    ), outcomes
    assert await events_for(migrated, {order_id_for(store["id"], str(order["id"]))}) == []


async def test_accepted_deliveries_survive_a_crash_before_they_are_applied_and_one_that_cannot_be_applied_is_set_aside(
    sync, engine_for, migrated
):
    """The applier of a process that died after answering 200: the deliveries wait in the inbox, and the next
    pass (any instance) applies them; a delivery that fails to apply is marked failed and does not block."""
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    store = await connect(sync, merchant, shop)
    engine = engine_for("sync")
    orders = [shop.create_order() for _ in range(3)]
    rows = [
        {
            "store_id": store["id"],
            "delivery_key": f"crashed-{o['id']}",
            "topic": "orders/create",
            "external_order_id": str(o["id"]),
            "payload": {"order": {"store_id": store["id"], "broken": True}, "correlation_id": "c"}
            if i == 1
            else {"order": {**_normalised(store["id"], o)}, "correlation_id": "c"},
        }
        for i, o in enumerate(orders)
    ]
    async with engine.begin() as conn:  # what a crashed instance left: accepted, not applied
        await conn.execute(insert(webhook_deliveries), rows)
    outcomes = await applied(sync, merchant, store["id"])  # the running instance's applier takes them over
    assert outcomes[f"crashed-{orders[0]['id']}"] == "synced"
    assert outcomes[f"crashed-{orders[2]['id']}"] == "synced"
    assert (
        outcomes[f"crashed-{orders[1]['id']}"].startswith("failed: ")
        and "validation error" in outcomes[f"crashed-{orders[1]['id']}"]
    )
    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                select(webhook_deliveries.c.payload).where(
                    webhook_deliveries.c.delivery_key == f"crashed-{orders[1]['id']}"
                )
            )
        ).scalar_one()
    assert kept["order"]["broken"] is True  # kept for ops to look at
    events = await events_for(migrated, {order_id_for(store["id"], str(o["id"])) for o in orders}, expected=2)
    assert len(events) == 2


async def test_a_group_that_fails_to_apply_is_kept_and_the_applier_applies_it(sync, engine_for, migrated):
    """Applying a group in the transaction that keeps it failed: the group is kept unapplied, with its payloads,
    still answered as accepted, and the applier loop applies it, events carrying the requests' correlation id."""
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    store = await connect(sync, merchant, shop)
    orders = [shop.create_order() for _ in range(2)]

    async def failing(conn, deliveries):
        raise RuntimeError("applying failed")

    left: list[int] = []
    inbox = DeliveryInbox(engine_for("sync"), failing, webhooks._waiting_payload, on_waiting=lambda: left.append(1))
    deliveries = [
        Delivery(
            store["id"], f"kept-{o['id']}", "orders/create", str(o["id"]), shopify.normalise(store["id"], o), "c-9"
        )
        for o in orders
    ]
    assert await asyncio.gather(*(inbox.accept(d) for d in deliveries)) == [True, True]
    assert left == [1]
    assert await inbox.accept(deliveries[0]) is False  # kept once
    outcomes = await applied(sync, merchant, store["id"])
    assert [outcomes[d.delivery_key] for d in deliveries] == ["synced", "synced"]
    events = await events_for(migrated, {order_id_for(store["id"], str(o["id"])) for o in orders}, expected=2)
    assert sorted(e.correlation_id for e in events) == ["c-9", "c-9"]


async def test_webhook_records_older_than_the_retention_are_pruned_but_not_a_waiting_delivery(sync, engine_for):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    store = await connect(sync, merchant, new_shop())
    engine = engine_for("sync")
    long_ago, lately = datetime.now(UTC) - timedelta(days=31), datetime.now(UTC) - timedelta(days=29)

    def delivery(key: str, received_at: datetime, applied: bool) -> dict:
        return {
            "store_id": store["id"],
            "delivery_key": key,
            "topic": "orders/create",
            "received_at": received_at,
            "applied_at": received_at if applied else None,
            "outcome": "synced" if applied else None,
            "payload": None if applied else {"order": {}},
        }

    failure = {"store_id": store["id"], "merchant_id": merchant, "topic": "orders/create", "field": "id", "error": "x"}
    async with engine.begin() as conn:
        await conn.execute(
            insert(webhook_deliveries),
            [
                delivery("old", long_ago, True),
                delivery("old-waiting", long_ago, False),
                delivery("recent", lately, True),
            ],
        )
        await conn.execute(
            insert(webhook_failures),
            [
                {**failure, "id": f"{merchant}-old", "payload": "{}", "received_at": long_ago},
                {**failure, "id": f"{merchant}-recent", "payload": "{}", "received_at": lately},
            ],
        )
    assert await webhooks.prune_webhook_records(engine, timedelta(days=30)) >= 2  # and what other tests left
    async with engine.connect() as conn:
        kept = set(
            await conn.scalars(
                select(webhook_deliveries.c.delivery_key).where(webhook_deliveries.c.store_id == store["id"])
            )
        )
        failures = set(
            await conn.scalars(select(webhook_failures.c.id).where(webhook_failures.c.merchant_id == merchant))
        )
    assert kept >= {"old-waiting", "recent"} and "old" not in kept
    assert failures == {f"{merchant}-recent"}


def _normalised(store_id: str, order: dict) -> dict:
    return shopify.normalise(store_id, order).model_dump(mode="json")


async def test_webhooks_share_one_store_read_and_an_expired_entry_is_read_again_behind_them(
    sync, engine_for, monkeypatch
):
    """Each request reading the store on its own took a connection apiece, past the pool, for the same row; and
    webhooks waiting for the read of an expired entry piled up behind it."""
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    shop = new_shop()
    store = await connect(sync, merchant, shop)
    engine = engine_for("sync")
    reads: list[str] = []
    listen = lambda *args: reads.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine.sync_engine, "before_cursor_execute", listen)
    try:
        directory = StoreDirectory(engine)
        found = await asyncio.gather(*(directory.find("shopify", shop.shop) for _ in range(50)))
        assert {row.id for row in found} == {store["id"]} and len(reads) == 1
        await directory.find("shopify", shop.shop)  # cached
        assert len(reads) == 1
        await directory.find("shopify", shop.shop, fresh=True)  # a signature mismatch reads again
        assert len(reads) == 2

        monkeypatch.setattr(inbox, "STORE_CACHE_SECONDS", 0.0)  # expired: the row held answers, one read refreshes
        assert (await directory.find("shopify", shop.shop)).id == store["id"]
        assert directory._reading  # answered without waiting for the read
        monkeypatch.setattr(inbox, "STORE_CACHE_SECONDS", 10.0)
        held = await asyncio.gather(*(directory.find("shopify", shop.shop) for _ in range(20)))
        assert {row.id for row in held} == {store["id"]}
        async with asyncio.timeout(5):
            while len(reads) < 3 or directory._reading:
                await asyncio.sleep(0.01)
        assert len(reads) == 3

        async with engine.begin() as conn:  # the shop is no longer this store's: the refresh forgets it
            await conn.execute(update(stores).where(stores.c.id == store["id"]).values(shop_domain=f"gone-{shop.shop}"))
        monkeypatch.setattr(inbox, "STORE_CACHE_SECONDS", 0.0)
        assert (await directory.find("shopify", shop.shop)).id == store["id"]  # held, while it is read again
        async with asyncio.timeout(5):
            while directory._reading:
                await asyncio.sleep(0.01)
        assert await directory.find("shopify", shop.shop) is None
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listen)
