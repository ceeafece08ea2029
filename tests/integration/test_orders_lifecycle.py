"""The orders service in-process with its real lifespan (HTTP API, outbox relay, event consumer) on the real
PostgreSQL and Kafka: every event in arrives through the broker, every event out is read back from it."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.orders import settings as orders_settings
from shared import topics
from shared.auth import mint_token
from shared.events import (
    Address,
    IntegrationEvent,
    OrderPaid,
    OrderShipped,
    OrderShippedPayload,
    OrderSynced,
    OrderSyncedPayload,
    PayableOrderPayload,
    PaymentFailed,
    PaymentStarted,
    RefundCompleted,
    RefundCompletedPayload,
    RefundFailed,
    RefundFailedPayload,
    ShipmentStatusChanged,
    ShipmentStatusChangedPayload,
    ShippingChoice,
    StoreOrder,
    StoreOrderCancelled,
    StoreOrderCancelledPayload,
    StoreOrderLine,
    parse_event,
)
from shared.money import Money
from tests.conftest import settings_for
from tests.kafka import new_topic_prefix, produce, read_topic

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ADDRESS = Address(name="Ana Lima", address1="Rua A 1", city="Porto", zip="4000-001", country_code="PT")
SHIPPING = ShippingChoice(
    method_id="m1",
    name="YunExpress Global Direct",
    carrier="YunExpress",
    price=Money.of("3.50", "USD"),
    delivery_days_min=7,
    delivery_days_max=12,
)


class Service:
    def __init__(self, app, settings) -> None:
        self.app, self.settings = app, settings
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders")

    def headers(self, merchant: str, role: str = "merchant") -> dict[str, str]:
        secret = self.settings.auth_jwt_secret.get_secret_value()
        return {"Authorization": f"Bearer {mint_token(secret, sub=f'u-{merchant}', merchant_id=merchant, role=role)}"}

    async def call(self, method: str, path: str, merchant: str, role: str = "merchant", **kw) -> httpx.Response:
        return await self.http.request(
            method, path, headers={**self.headers(merchant, role), **kw.pop("headers", {})}, **kw
        )

    async def send(self, *events: IntegrationEvent) -> None:
        for event in events:
            await produce(
                self.settings.kafka_bootstrap_servers,
                self.settings.topic(event.topic),
                (event.key(), event.model_dump_json().encode()),
            )

    async def order(self, merchant: str, order_id: str) -> dict:
        return (await self.call("GET", f"/v1/orders/{order_id}", merchant)).json()

    async def until(self, merchant: str, order_id: str, check, what: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            detail = await self.order(merchant, order_id)
            if detail.get("id") and check(detail):
                return detail
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {detail}")
            await asyncio.sleep(0.1)

    async def published(self, order_id: str, *types: str, timeout: float = 20) -> list[IntegrationEvent]:
        """The events orders published about one order, once every type in `types` is among them."""
        deadline = time.monotonic() + timeout
        while True:
            events = []
            for topic in (topics.ORDERS, topics.AFTER_SALES):
                records = await read_topic(
                    self.settings.kafka_bootstrap_servers, self.settings.topic(topic), until=1, timeout=2
                )
                events += [parse_event(r.value) for r in records if r.key == order_id.encode()]
            if all(any(e.event_type == t for e in events) for t in types) or time.monotonic() > deadline:
                return events


@pytest.fixture(scope="module")
async def svc(migrated):
    prefix = new_topic_prefix("ord")
    env = {**migrated, "TOPIC_PREFIX": prefix}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        orders_settings.get_settings.cache_clear()
        from services.orders.app import app as make_app

        app = make_app()
        async with app.router.lifespan_context(app):
            yield Service(app, settings_for("orders", env))
    orders_settings.get_settings.cache_clear()


def line(n: int, qty: int = 1, sku: str | None = None) -> StoreOrderLine:
    return StoreOrderLine(
        external_line_id=f"l{n}",
        external_product_id=f"p{n}",
        external_variant_id=f"v{n}",
        sku=sku or f"STORE-{n}",
        title=f"Product {n}",
        quantity=qty,
        unit_price=Money.of("20", "USD"),
    )


def synced(merchant: str, store: str, order_id: str, lines, at: datetime = T0, **kw) -> OrderSynced:
    return OrderSynced(
        merchant_id=merchant,
        order_id=order_id,
        payload=OrderSyncedPayload(
            order=StoreOrder(
                store_id=store,
                store_name="Ana's Store",
                platform="shopify",
                external_order_id=order_id,
                order_name=kw.pop("name", f"#{order_id[:6]}"),
                currency="USD",
                total_price=Money.of("40", "USD"),
                financial_status="paid",
                customer_email=kw.pop("email", "ana@example.com"),
                shipping_address=kw.pop("address", ADDRESS),
                lines=lines,
                store_created_at=at,
                store_updated_at=at,
                customer_notified_by_store=True,
            )
        ),
        **kw,
    )


def payment(cls, merchant: str, order_id: str, **payload):
    base = {"payment_id": "pay-1", "method": "balance", "amount": Money.of("9.70", "USD")}
    return cls(merchant_id=merchant, order_id=order_id, payload={**base, **payload})


def shipped(merchant: str, order_id: str, tracking: str, reshipment_id: str | None = None) -> OrderShipped:
    return OrderShipped(
        merchant_id=merchant,
        order_id=order_id,
        payload=OrderShippedPayload(
            shipment_id=f"sh-{tracking}",
            fulfillment_id="f1",
            carrier="YunExpress",
            tracking_number=tracking,
            tracking_url=f"https://t.example/{tracking}",
            shipped_at=T0 + timedelta(days=2),
            reshipment_id=reshipment_id,
        ),
    )


async def catalog(svc: Service, merchant: str, store: str, ratio: int = 1) -> dict[str, str]:
    """Two catalog variants, product 1 connected, and a packaging rule for the store (box + card)."""
    ids = {}
    for name, cost, weight in (("mug", "4.20", 350), ("box", "0.80", 60), ("card", "0.25", 5)):
        r = await svc.call(
            "POST",
            "/v1/catalog/variants",
            merchant,
            role="ops",
            json={"sku": f"{name}-{uuid.uuid4().hex[:8]}", "title": name, "unit_cost": cost, "weight_grams": weight},
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    r = await svc.call(
        "POST",
        "/v1/product-connections",
        merchant,
        json={
            "store_id": store,
            "external_product_id": "p1",
            "external_variant_id": "v1",
            "catalog_variant_id": ids["mug"],
            "quantity_ratio": ratio,
        },
    )
    assert r.status_code == 201, r.text
    for kind, variant, rule in (("packaging", "box", {}), ("card", "card", {"external_product_id": "p1"})):
        pp = await svc.call(
            "POST",
            "/v1/private-products",
            merchant,
            json={"kind": kind, "name": f"branded {variant}", "catalog_variant_id": ids[variant]},
        )
        assert pp.status_code == 201, pp.text
        ids[f"pp-{variant}"] = pp.json()["id"]
        r = await svc.call(
            "POST",
            "/v1/packaging-rules",
            merchant,
            json={"store_id": store, "private_product_id": pp.json()["id"], **rule},
        )
        assert r.status_code == 201, r.text
    return ids


def ids() -> tuple[str, str, str]:
    return f"m-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())


# --- events in and out ---------------------------------------------------------------------------------------


async def test_a_synced_order_is_connected_packed_and_announced_ready_for_checkout(svc):
    merchant, store, order_id = ids()
    variants = await catalog(svc, merchant, store, ratio=2)
    await svc.send(synced(merchant, store, order_id, [line(1, qty=3)]))
    detail = await svc.until(merchant, order_id, lambda d: d["status"] == "to_order", "To Order")
    assert detail["connection_state"] == "all" and detail["lines"][0]["quantity_ratio"] == 2
    assert {p["name"]: p["quantity"] for p in detail["packaging"]} == {"branded box": 1, "branded card": 1}
    assert detail["costs"] == {
        "products": {"amount": "25.20", "currency": "USD"},  # 4.20 x 3 x ratio 2
        "packaging": {"amount": "1.05", "currency": "USD"},
    }

    events = await svc.published(order_id, "OrderReadyForCheckout")
    assert [e.event_type for e in events] == ["OrderReadyForCheckout"]  # the move into To Order's one event
    (ready,) = [e for e in events if e.event_type == "OrderReadyForCheckout"]
    p = ready.payload
    assert (p.store_name, p.customer_notified_by_store, p.store_total) == ("Ana's Store", True, Money.of("40", "USD"))
    assert [(x.catalog_variant_id, x.quantity, x.unit_weight_grams) for x in p.lines] == [(variants["mug"], 6, 350)]
    assert sorted((x.catalog_variant_id, x.quantity) for x in p.packaging) == sorted(
        [(variants["box"], 1), (variants["card"], 1)]
    )
    assert p.shipping_address == ADDRESS


async def test_updates_before_payment_are_applied_and_after_payment_flagged(svc):
    merchant, store, order_id = ids()
    await catalog(svc, merchant, store)
    await svc.send(synced(merchant, store, order_id, [line(1)]))
    await svc.until(merchant, order_id, lambda d: d["status"] == "to_order", "To Order")

    # The store adds an unconnected product and a new address: back to Quoting, the address taken.
    moved = ADDRESS.model_copy(update={"city": "Braga"})
    await svc.send(synced(merchant, store, order_id, [line(1), line(2)], T0 + timedelta(hours=1), address=moved))
    detail = await svc.until(merchant, order_id, lambda d: d["status"] == "quoting", "Quoting again")
    assert detail["shipping_address"]["city"] == "Braga" and "STORE-2" in detail["status_reason"]
    assert detail["connection_state"] == "partial"
    assert sorted(p["name"] for p in detail["packaging"]) == ["branded box", "branded card"]

    await svc.send(synced(merchant, store, order_id, [line(1)], T0 + timedelta(hours=2)))
    await svc.until(merchant, order_id, lambda d: d["status"] == "to_order", "To Order again")
    await svc.send(
        payment(PaymentStarted, merchant, order_id),
        payment(PaymentFailed, merchant, order_id, reason="insufficient balance"),
    )
    detail = await svc.until(
        merchant, order_id, lambda d: d["status_reason"] == "payment failed: insufficient balance", "the failure"
    )
    assert detail["status"] == "pending"
    paid = payment(
        OrderPaid,
        merchant,
        order_id,
        shipping=SHIPPING,
        order=PayableOrderPayload(store_id=store, order_name="#1", currency="USD", lines=[], shipping_address=ADDRESS),
    )
    await svc.send(paid)  # payments and store orders are different topics: no order between them, so wait
    await svc.until(merchant, order_id, lambda d: d["status"] == "processing", "Processing")
    await svc.send(synced(merchant, store, order_id, [line(1, qty=5)], T0 + timedelta(hours=3)))
    detail = await svc.until(merchant, order_id, lambda d: d["flags"], "the flag")
    assert detail["status"] == "processing" and detail["lines"][0]["quantity"] == 1
    assert detail["flags"] == ["store order changed after payment; not applied"]
    assert detail["shipping"]["carrier"] == "YunExpress"
    assert detail["paid_amount"] == {"amount": "9.70", "currency": "USD"}

    cancelled = StoreOrderCancelled(
        merchant_id=merchant,
        order_id=order_id,
        payload=StoreOrderCancelledPayload(store_id=store, external_order_id=order_id, cancelled_at=T0),
    )
    await svc.send(cancelled)
    detail = await svc.until(merchant, order_id, lambda d: len(d["flags"]) == 2, "the refund flag")
    assert detail["status"] == "processing" and "cancelled in the store after payment: refund due" in detail["flags"]

    await svc.send(shipped(merchant, order_id, "YT100"))
    status = ShipmentStatusChanged(
        merchant_id=merchant,
        order_id=order_id,
        payload=ShipmentStatusChangedPayload(
            shipment_id="sh-YT100", tracking_number="YT100", status="Delivered", checkpoint_at=T0 + timedelta(days=9)
        ),
    )
    await svc.send(status)
    detail = await svc.until(
        merchant, order_id, lambda d: any(t["kind"] == "carrier_status" for t in d["timeline"]), "carrier status"
    )
    assert detail["status"] == "shipped" and detail["shipment"]["tracking_number"] == "YT100"
    statuses = [t["detail"].split(":")[0] for t in detail["timeline"] if t["kind"] == "status"]
    assert statuses == [
        "quoting -> to_order",
        "to_order -> quoting",
        "quoting -> to_order",
        "to_order -> pending",
        "pending -> processing",
        "processing -> shipped",
    ]
    by_event = {t["kind"]: t["actor"] for t in detail["timeline"]}
    assert by_event["carrier_status"] == f"event:ShipmentStatusChanged:{status.event_id}"
    events = await svc.published(order_id, "OrderStatusChanged")
    announced = [e.payload.to_status for e in events if e.event_type == "OrderStatusChanged"]
    assert announced == ["quoting", "pending", "processing", "shipped"]  # into To Order: OrderReadyForCheckout


async def test_a_store_cancellation_before_payment_cancels(svc):
    merchant, store, order_id = ids()
    await svc.send(synced(merchant, store, order_id, [line(7)]))
    await svc.until(merchant, order_id, lambda d: d["status"] == "quoting", "Quoting")
    await svc.send(
        StoreOrderCancelled(
            merchant_id=merchant,
            order_id=order_id,
            payload=StoreOrderCancelledPayload(
                store_id=store, external_order_id=order_id, reason="customer", cancelled_at=T0
            ),
        )
    )
    detail = await svc.until(merchant, order_id, lambda d: d["status"] == "cancelled", "Cancelled")
    assert detail["status_reason"] == "cancelled in the store: customer"
    events = await svc.published(order_id, "OrderStatusChanged")
    assert [e.payload.to_status for e in events][-1] == "cancelled"


async def paid_and_shipped(svc: Service) -> tuple[str, str, str]:
    merchant, store, order_id = ids()
    await catalog(svc, merchant, store)
    await svc.send(synced(merchant, store, order_id, [line(1)]))
    await svc.until(merchant, order_id, lambda d: d["status"] == "to_order", "To Order")
    paid = payment(
        OrderPaid,
        merchant,
        order_id,
        shipping=SHIPPING,
        order=PayableOrderPayload(store_id=store, order_name="#1", currency="USD", lines=[], shipping_address=ADDRESS),
    )
    await svc.send(paid, shipped(merchant, order_id, "YT1"))
    await svc.until(merchant, order_id, lambda d: d["status"] == "shipped", "Shipped")
    return merchant, store, order_id


async def test_a_refund_through_request_approval_failure_and_completion(svc):
    merchant, _, order_id = await paid_and_shipped(svc)
    path = f"/v1/orders/{order_id}/refunds"
    too_much = await svc.call(
        "POST", path, merchant, json={"reason": "broken", "amount": {"amount": "9.71", "currency": "USD"}}
    )
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "amount", too_much.text
    body = {"reason": "broken", "external_line_ids": ["l1"], "amount": {"amount": "4.00", "currency": "USD"}}
    first = await svc.call("POST", path, merchant, json=body, headers={"Idempotency-Key": "refund-1"})
    again = await svc.call("POST", path, merchant, json=body, headers={"Idempotency-Key": "refund-1"})
    assert first.status_code == 201 and again.json() == first.json(), first.text
    refund = first.json()["id"]
    assert (await svc.order(merchant, order_id))["status"] == "refunds"
    second = await svc.call("POST", path, merchant, json=body)
    assert second.status_code == 409 and second.json()["current_status"] == "refunds"

    approve = f"{path}/{refund}/approve"
    assert (await svc.call("POST", approve, merchant)).status_code == 403  # ops only
    assert (await svc.call("POST", approve, "ops", role="ops")).json()["state"] == "approved"
    events = await svc.published(order_id, "RefundApproved")
    (approved,) = [e for e in events if e.event_type == "RefundApproved"]
    assert (approved.payload.refund_id, approved.payload.amount) == (refund, Money.of("4", "USD"))
    assert approved.payload.external_line_ids == ["l1"]

    await svc.send(
        RefundFailed(merchant_id=merchant, order_id=order_id, payload=RefundFailedPayload(refund_id=refund, reason="x"))
    )
    detail = await svc.until(
        merchant, order_id, lambda d: d["after_sales"][0]["failure_reason"] == "x", "the failed refund"
    )
    assert detail["status"] == "refunds" and detail["after_sales"][0]["state"] == "requested"
    assert (await svc.call("POST", approve, "ops", role="ops")).status_code == 200
    await svc.send(
        RefundCompleted(
            merchant_id=merchant,
            order_id=order_id,
            payload=RefundCompletedPayload(refund_id=refund, amount=Money.of("4", "USD"), method="balance"),
        )
    )
    detail = await svc.until(merchant, order_id, lambda d: d["status"] == "shipped", "back in Shipped")
    assert detail["refunded_amount"] == {"amount": "4.00", "currency": "USD"}
    assert detail["after_sales"][0]["state"] == "refunded"


async def test_a_reshipment_is_approved_with_its_lines_and_address_and_reshipped(svc):
    merchant, store, order_id = await paid_and_shipped(svc)
    path = f"/v1/orders/{order_id}/reshipments"
    unknown = await svc.call("POST", path, merchant, json={"reason": "lost", "external_line_ids": ["nope"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "external_line_ids"
    case = (await svc.call("POST", path, merchant, json={"reason": "lost", "external_line_ids": ["l1"]})).json()
    counts = (await svc.call("GET", "/v1/orders/counts", merchant)).json()
    assert (counts["resent"], counts["shipped"]) == (1, 0)

    listed = await svc.call("GET", "/v1/after-sales", "ops", role="ops", params={"kind": "reshipment"})
    assert case["id"] in [c["id"] for c in listed.json()["items"]]
    decided = await svc.call("POST", f"{path}/{case['id']}/approve", "ops", role="ops")
    assert decided.json()["state"] == "approved"
    events = await svc.published(order_id, "ReshipmentApproved")
    (approved,) = [e for e in events if e.event_type == "ReshipmentApproved"]
    assert approved.payload.reshipment_id == case["id"] and approved.payload.shipping == SHIPPING
    assert approved.payload.order.shipping_address == ADDRESS and len(approved.payload.order.lines) == 1
    assert approved.payload.order.store_id == store

    await svc.send(shipped(merchant, order_id, "YT2", reshipment_id=case["id"]))
    detail = await svc.until(merchant, order_id, lambda d: d["status"] == "shipped", "back in Shipped")
    assert detail["after_sales"][0]["state"] == "reshipped"
    assert detail["after_sales"][0]["shipment"]["tracking_number"] == "YT2"
    assert detail["shipment"]["tracking_number"] == "YT1"


# --- the merchant API ---------------------------------------------------------------------------------------


async def test_tab_counts_equal_the_lists_with_and_without_filters(svc):
    merchant, store, _ = ids()
    await catalog(svc, merchant, store)
    other_store = f"{store}-b"
    made = []
    for n in range(7):
        order_id = str(uuid.uuid4())
        connected = n % 2 == 0
        email = "zed@example.com" if n == 3 else f"c{n}@example.com"
        address = ADDRESS.model_copy(update={"country_code": "BR" if n < 2 else "PT"})
        await svc.send(
            synced(
                merchant,
                other_store if n == 6 else store,
                order_id,
                [line(1 if connected else 9)],
                T0 + timedelta(minutes=n),
                email=email,
                address=address,
            )
        )
        made.append(order_id)
    for order_id in made:
        await svc.until(merchant, order_id, lambda d: True, "the order")
    await svc.call("POST", f"/v1/orders/{made[2]}/cancel", merchant, json={})
    stranger, *_ = ids()
    await svc.send(synced(stranger, store, str(uuid.uuid4()), [line(1)]))

    async def check(params: dict) -> dict:
        counts = (await svc.call("GET", "/v1/orders/counts", merchant, params=params)).json()
        for tab, count in counts.items():
            seen, cursor = [], None
            while True:
                page = (
                    await svc.call(
                        "GET",
                        "/v1/orders",
                        merchant,
                        params={**params, "status": tab, "limit": 2, **({"cursor": cursor} if cursor else {})},
                    )
                ).json()
                seen += page["items"]
                if not (cursor := page["next_cursor"]):
                    break
            assert len(seen) == count, (tab, params)
            assert len({o["id"] for o in seen}) == count
        return counts

    counts = await check({})
    assert {k: v for k, v in counts.items() if v} == {"quoting": 4, "to_order": 2, "cancelled": 1}
    assert (await check({"country": "BR"}))["quoting"] == 1
    assert sum((await check({"q": "zed@"})).values()) == 1
    assert sum((await check({"store_id": other_store})).values()) == 1
    since = (T0 + timedelta(minutes=5)).isoformat()
    assert sum((await check({"created_from": since})).values()) == 7  # created_at is when we received it
    oldest = (await svc.call("GET", "/v1/orders", merchant, params={"status": "quoting", "sort": "oldest"})).json()
    newest = (await svc.call("GET", "/v1/orders", merchant, params={"status": "quoting"})).json()
    assert [o["id"] for o in oldest["items"]] == [o["id"] for o in reversed(newest["items"])]


async def test_actions_the_status_forbids_get_409_and_bad_input_422_naming_the_field(svc):
    merchant, _store, order_id = await paid_and_shipped(svc)
    cancel = await svc.call("POST", f"/v1/orders/{order_id}/cancel", merchant, json={})
    assert cancel.status_code == 409 and "order is shipped" in cancel.json()["detail"]
    good = {"name": "Ana", "address1": "Rua B 2", "city": "Faro", "country_code": "PT"}
    address = await svc.call("PUT", f"/v1/orders/{order_id}/address", merchant, json=good)
    assert address.status_code == 409 and address.json()["current_status"] == "shipped"
    bad = await svc.call("PUT", f"/v1/orders/{order_id}/address", merchant, json={**good, "country_code": "Portugal"})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["country_code"]
    assert (await svc.call("GET", f"/v1/orders/{order_id}", "someone-else")).status_code == 404
    assert (await svc.call("POST", f"/v1/orders/{order_id}/cancel", "someone-else", json={})).status_code == 404
    assert (await svc.call("GET", "/v1/orders/nope", merchant)).status_code == 404
    assert (await svc.http.get("/v1/orders/counts")).status_code == 401


async def test_the_address_edit_before_payment_announces_the_order_again(svc):
    merchant, store, order_id = ids()
    await catalog(svc, merchant, store)
    await svc.send(synced(merchant, store, order_id, [line(1)]))
    await svc.until(merchant, order_id, lambda d: d["status"] == "to_order", "To Order")
    new = {"name": "Ana", "address1": "Rua B 2", "city": "Faro", "country_code": "PT", "phone": "+351 912 345 678"}
    r = await svc.call("PUT", f"/v1/orders/{order_id}/address", merchant, json=new)
    assert r.status_code == 200 and r.json()["shipping_address"]["city"] == "Faro"
    events = await svc.published(order_id, "OrderReadyForCheckout")
    ready = [e for e in events if e.event_type == "OrderReadyForCheckout"]
    deadline = time.monotonic() + 10
    while len(ready) < 2 and time.monotonic() < deadline:
        ready = [e for e in await svc.published(order_id) if e.event_type == "OrderReadyForCheckout"]
    assert [e.payload.shipping_address.city for e in ready] == ["Porto", "Faro"]


async def test_a_quote_answered_connects_the_product_and_moves_quoting_orders(svc):
    merchant, store, order_id = ids()
    await svc.send(synced(merchant, store, order_id, [line(5)]))
    await svc.until(merchant, order_id, lambda d: d["status"] == "quoting", "Quoting")
    ask = {"store_id": store, "external_product_id": "p5", "external_variant_id": "v5", "title": "Product 5"}
    quote = (await svc.call("POST", "/v1/quotes", merchant, json=ask)).json()
    assert quote["status"] == "to_claim"
    assert (await svc.call("POST", "/v1/quotes", merchant, json=ask)).status_code == 409  # one open quote
    assert (await svc.call("GET", f"/v1/quotes/{quote['id']}", "someone-else")).status_code == 404
    claimed = await svc.call("POST", f"/v1/quotes/{quote['id']}/claim", "ops", role="ops")
    assert claimed.json()["status"] == "processing"
    variant = await svc.call(
        "POST",
        "/v1/catalog/variants",
        "ops",
        role="ops",
        json={"sku": f"Q-{uuid.uuid4().hex[:8]}", "title": "quoted", "unit_cost": "2.00", "weight_grams": 100},
    )
    answer = await svc.call(
        "POST",
        f"/v1/quotes/{quote['id']}/answer",
        "ops",
        role="ops",
        json={"catalog_variant_id": variant.json()["id"], "quantity_ratio": 3},
    )
    assert answer.json()["status"] == "finished" and answer.json()["connection_id"], answer.text
    detail = await svc.order(merchant, order_id)
    assert detail["status"] == "to_order" and detail["lines"][0]["quantity_ratio"] == 3
    again = await svc.call("POST", f"/v1/quotes/{quote['id']}/decline", "ops", role="ops", json={"reason": "x"})
    assert again.status_code == 409 and again.json()["current_status"] == "finished"

    # Disconnecting the product sends the order back to Quoting.
    connection = answer.json()["connection_id"]
    assert (await svc.call("DELETE", f"/v1/product-connections/{connection}", merchant)).status_code == 204
    assert (await svc.order(merchant, order_id))["status"] == "quoting"


async def test_a_declined_quote_shows_its_reason(svc):
    merchant, store, _ = ids()
    ask = {"store_id": store, "external_product_id": "p8", "title": "Product 8"}
    quote = (await svc.call("POST", "/v1/quotes", merchant, json=ask)).json()
    declined = await svc.call(
        "POST", f"/v1/quotes/{quote['id']}/decline", "ops", role="ops", json={"reason": "not sourceable"}
    )
    assert declined.json()["status"] == "declined"
    mine = (await svc.call("GET", "/v1/quotes", merchant)).json()["items"]
    assert [(q["status"], q["decline_reason"]) for q in mine] == [("declined", "not sourceable")]


async def test_auto_connect_by_sku_connects_a_synced_line_whose_sku_is_in_the_catalog(svc):
    merchant, store, order_id = ids()
    sku = f"AUTO-{uuid.uuid4().hex[:8]}"
    await svc.call(
        "POST",
        "/v1/catalog/variants",
        "ops",
        role="ops",
        json={"sku": sku, "title": "auto", "unit_cost": "1.00", "weight_grams": 10},
    )
    r = await svc.call("PUT", "/v1/order-settings", merchant, json={"auto_connect_by_sku": True})
    assert r.status_code == 200
    await svc.send(synced(merchant, store, order_id, [line(3, sku=sku)]))
    await svc.until(merchant, order_id, lambda d: d["status"] == "to_order", "To Order by SKU")
    connections = (await svc.call("GET", "/v1/product-connections", merchant)).json()["items"]
    assert [(c["external_product_id"], c["external_variant_id"]) for c in connections] == [("p3", "v3")]


async def test_concurrent_refund_requests_take_the_paid_amount_once(svc):
    merchant, _, order_id = await paid_and_shipped(svc)
    body = {"reason": "broken", "amount": {"amount": "9.70", "currency": "USD"}}
    answers = await asyncio.gather(
        *(svc.call("POST", f"/v1/orders/{order_id}/refunds", merchant, json=body) for _ in range(4))
    )
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409]
    detail = await svc.order(merchant, order_id)
    assert len(detail["after_sales"]) == 1
    counts = (await svc.call("GET", "/v1/orders/counts", merchant)).json()
    assert (counts["refunds"], counts["shipped"]) == (1, 0)
