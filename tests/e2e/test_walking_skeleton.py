"""The walking skeleton through all four services as separate processes, over HTTP, Kafka and PostgreSQL:
a signed Shopify webhook -> To Order (or Quoting until connected) -> paid from the balance -> Processing ->
warehouse steps -> shipped -> Shipped."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from shared import topics
from shared.events import parse_event
from tests.kafka import read_topic
from tools import demo
from tools.stack import SERVICES, Stack, free_ports

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(migrated, tmp_path_factory):
    stack = Stack(
        migrated,
        ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
        log_dir=tmp_path_factory.mktemp("logs"),
    )
    stack.start_all(timeout=60)
    yield stack
    stack.stop()


def eventually(check: Callable[[], object], timeout: float = 20, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Client:
    def __init__(self, stack: Stack, merchant: str):
        self.stack, self.merchant = stack, merchant
        self.http = httpx.Client(timeout=10)

    def call(self, method: str, service: str, path: str, role: str = "merchant", **kw) -> httpx.Response:
        headers = {**demo.auth(role, self.merchant), **kw.pop("headers", {})}
        return self.http.request(method, f"{self.stack.url(service)}{path}", headers=headers, **kw)

    def webhook(self, order: dict, shop: str, secret: str, **kw) -> httpx.Response:
        body = json.dumps(order).encode()
        headers = {
            **demo.shopify_headers(body, shop=shop, secret=secret, **kw.pop("header_args", {})),
            **kw.pop("headers", {}),
        }
        return self.http.post(f"{self.stack.url('sync')}/webhooks/shopify", content=body, headers=headers)

    def counts(self) -> dict[str, int]:
        return self.call("GET", "orders", "/v1/orders/counts").raise_for_status().json()

    def order(self, order_id: str) -> dict:
        return self.call("GET", "orders", f"/v1/orders/{order_id}").json()


async def test_an_order_from_webhook_to_shipped(stack, migrated):
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    client = Client(stack, merchant)
    shop, secret = f"{merchant}.myshopify.com", "e2e-webhook-secret"
    sku_a, sku_b = f"A-{merchant}", f"B-{merchant}"

    store = client.call(
        "POST",
        "sync",
        "/v1/stores",
        json={
            "platform": "shopify",
            "shop_domain": shop,
            "name": "E2E Store",
            "access_token": "shpat_e2e_token",
            "webhook_secret": secret,
        },
    )
    assert store.status_code == 201, store.text
    store_id = store.json()["id"]
    assert "shpat_e2e_token" not in store.text and secret not in store.text
    # Ops offer a shipping method; the merchant makes it the default for orders no rule matches.
    method = client.call(
        "POST",
        "checkout",
        "/v1/shipping-methods",
        role="ops",
        json={
            "name": f"YunExpress Global Direct {merchant}",
            "carrier": "YunExpress",
            "currency": "USD",
            "rates": {
                "US": {"first_weight_grams": 500, "first_price": "5.00", "step_weight_grams": 500, "step_price": "2.00"}
            },
            "delivery_days_min": 7,
            "delivery_days_max": 12,
            "max_weight_grams": 20000,
        },
    )
    assert method.status_code == 201, method.text
    default = client.call("PUT", "checkout", "/v1/shipping-settings", json={"default_method_id": method.json()["id"]})
    assert default.status_code == 200, default.text
    variants = {}
    for sku, cost in ((sku_a, "4.20"), (sku_b, "2.35")):
        response = client.call(
            "POST",
            "orders",
            "/v1/catalog/variants",
            role="ops",
            json={"sku": sku, "title": sku, "unit_cost": cost, "currency": "USD", "weight_grams": 300},
        )
        assert response.status_code == 201, response.text
        variants[sku] = response.json()["id"]
    connection = client.call(
        "POST",
        "orders",
        "/v1/product-connections",
        json={
            "store_id": store_id,
            "external_product_id": "101",
            "external_variant_id": "201",
            "catalog_variant_id": variants[sku_a],
            "quantity_ratio": 2,
        },
    )
    assert connection.status_code == 201, connection.text

    # A connected order, with a correlation id to follow, delivered twice with the same webhook id.
    connected = demo.shopify_order(1, lines=[(101, 201, "STORE-A", 1, "19.90")])
    correlation = f"corr-{uuid.uuid4().hex}"
    first = client.webhook(
        connected, shop, secret, header_args={"webhook_id": "wh-1"}, headers={"X-Correlation-ID": correlation}
    )
    assert first.status_code == 200 and first.json()["outcome"] == "accepted", first.text
    assert first.headers["x-correlation-id"] == correlation
    assert client.webhook(connected, shop, secret, header_args={"webhook_id": "wh-1"}).json()["outcome"] == "duplicate"
    assert client.webhook(connected, shop, secret, header_args={"webhook_id": "wh-2"}).json()["outcome"] == "accepted"

    def outcomes() -> dict:
        deliveries = client.call("GET", "sync", f"/v1/stores/{store_id}/deliveries").json()["items"]
        return {d["delivery_key"]: d["outcome"] for d in deliveries}

    eventually(lambda: None not in outcomes().values(), what="the deliveries to be applied")
    assert outcomes()["wh-1"] == "synced" and outcomes()["wh-2"].startswith("stale"), outcomes()
    order_a = first.json()["order_id"]

    # An order with a product nobody connected lands in Quoting, with the reason.
    unconnected = demo.shopify_order(2, lines=[(102, 202, "STORE-B", 3, "5.00")])
    order_b = client.webhook(unconnected, shop, secret).json()["order_id"]
    eventually(lambda: client.counts()["to_order"] == 1 and client.counts()["quoting"] == 1, what="tabs")
    assert "STORE-B" in client.order(order_b)["status_reason"]

    # Bad signatures change nothing.
    forged = client.webhook(demo.shopify_order(3), shop, "wrong-secret")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"

    # Connecting the product moves the Quoting order to To Order by itself.
    assert (
        client.call(
            "POST",
            "orders",
            "/v1/product-connections",
            json={"store_id": store_id, "external_product_id": "102", "catalog_variant_id": variants[sku_b]},
        ).status_code
        == 201
    )
    eventually(lambda: client.counts()["to_order"] == 2, what="the quoted order to reach To Order")

    # Checkout with the balance; the pay call is retry-safe.
    assert (
        client.call(
            "POST",
            "checkout",
            "/v1/balance/top-ups",
            role="ops",
            json={"merchant_id": merchant, "amount": {"amount": "50.00", "currency": "USD"}, "reference": "wire 1"},
        ).status_code
        == 201
    )
    checkout = eventually(
        lambda: (
            (r := client.call("POST", "checkout", "/v1/checkouts", json={"order_ids": [order_a, order_b]})).status_code
            == 201
            and r.json()
        ),
        what="checkout to know both orders",
    )
    costs = {o["order_id"]: o["costs"]["total"]["amount"] for o in checkout["orders"]}
    # products 4.20 x 1 x ratio 2 and 2.35 x 3; shipping 5.00 for the first 500 g + 2.00 per started 500 g more
    assert costs == {order_a: "15.40", order_b: "14.05"}
    assert checkout["total"] == {"amount": "29.45", "currency": "USD"}
    pay = {"headers": {"Idempotency-Key": f"pay-{checkout['id']}"}, "json": {"method": "balance"}}
    paid = client.call("POST", "checkout", f"/v1/checkouts/{checkout['id']}/pay", **pay)
    assert paid.status_code == 200, paid.text
    replay = client.call("POST", "checkout", f"/v1/checkouts/{checkout['id']}/pay", **pay)
    assert replay.json() == paid.json() and replay.headers.get("idempotent-replayed") == "true"
    balance = client.call("GET", "checkout", "/v1/balance").json()
    assert balance["balance"] == {"amount": "20.55", "currency": "USD"}
    eventually(lambda: client.counts()["processing"] == 2, what="both orders in Processing")

    # The warehouse: every step for both orders, then shipped.
    def ops(method: str, path: str, **kw) -> httpx.Response:
        return client.call(method, "tracking", path, role="ops", **kw)

    def jobs() -> dict[str, str]:
        items = ops("GET", "/v1/fulfillments", params={"step": "purchasing", "limit": 250}).json()["items"]
        return {j["order_id"]: j["id"] for j in items if j["merchant_id"] == merchant}

    fulfillment = eventually(lambda: len(j := jobs()) == 2 and j, what="fulfillment jobs")
    for n, order_id in enumerate((order_a, order_b)):
        job = fulfillment[order_id]
        assert ops("POST", f"/v1/fulfillments/{job}/pack").status_code == 409  # not bought yet
        for action, body in (
            ("purchase", None),
            ("quality-check", {"passed": True}),
            ("pack", None),
            ("label", {"carrier": "YunExpress", "tracking_number": f"YT{uuid.uuid4().hex[:10]}{n}"}),
            ("ship", None),
        ):
            response = ops("POST", f"/v1/fulfillments/{job}/{action}", json=body)
            assert response.status_code == 200, (action, response.text)
    eventually(lambda: client.counts()["shipped"] == 2, what="both orders Shipped")

    detail = client.order(order_a)
    assert [t["detail"].split(":")[0] for t in detail["timeline"] if t["kind"] == "status"] == [
        "quoting -> to_order",
        "to_order -> pending",
        "pending -> processing",
        "processing -> shipped",
    ]
    counts = client.counts()
    for tab, count in counts.items():
        listed = client.call("GET", "orders", "/v1/orders", params={"status": tab, "limit": 250}).json()["items"]
        assert len(listed) == count, tab

    # The webhook's correlation id travelled through sync's event into the events orders published.
    records = await read_topic(migrated["KAFKA_BOOTSTRAP_SERVERS"], migrated["TOPIC_PREFIX"] + topics.ORDERS, until=1)
    events = [parse_event(r.value) for r in records if r.key == order_a.encode()]
    assert events and events[0].correlation_id == correlation

    # Tenancy and roles.
    stranger = Client(stack, f"m-{uuid.uuid4().hex[:8]}")
    assert stranger.call("GET", "orders", f"/v1/orders/{order_a}").status_code == 404
    assert stranger.counts()["shipped"] == 0
    assert client.http.get(f"{stack.url('orders')}/v1/orders/counts").status_code == 401
    assert client.call("GET", "tracking", "/v1/fulfillments").status_code == 403
