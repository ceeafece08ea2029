"""Tenant isolation and authentication, walked over every route of every service as its OpenAPI document lists it
(so a new route is walked without touching this file): no token and bad tokens get 401, the wrong role 403, and
another merchant gets 404 on merchant A's real resources (403 on ops routes) and never sees A's ids in a list.
Then no secret the services hold (store credentials, webhook keys, the Stripe key, bearer tokens) appears in any
answer of the walk or in any line of the services' logs."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from services.sync.settings import get_settings as sync_settings
from shared.auth import mint_token
from shared.settings import ServiceSettings
from tests.e2e.services_up import CONFIGURED_SECRETS, Services, services_up
from tools import demo
from tools.stack import SERVICES, free_ports

pytestmark = pytest.mark.e2e

A, B = f"tenant-a-{uuid.uuid4().hex[:8]}", f"tenant-b-{uuid.uuid4().hex[:8]}"
SHOP = f"{A}.myshopify.com"
SHOPIFY_TOKEN = f"shpat_{uuid.uuid4().hex}"
WEBHOOK_SECRET = f"whsec-store-{uuid.uuid4().hex}"
WOO_KEY, WOO_SECRET = f"ck_{uuid.uuid4().hex}", f"cs_{uuid.uuid4().hex}"
STORE_SECRETS = (SHOPIFY_TOKEN, WEBHOOK_SECRET, WOO_KEY, WOO_SECRET)

PUBLIC = re.compile(r"^/(healthz|readyz|webhooks/.+|track/.+)$")
# Routes whose {id} is not a merchant's resource, so another merchant may read it: with the reason.
SHARED_RESOURCES = {
    ("checkout", "GET", "/v1/shipping-methods/{method_id}"): "shipping methods are ops' offer to every merchant",
}
# Path parameters -> the name of merchant A's resource that fills them (per path prefix where the name is reused).
PARAMETERS = {
    "store_id": "store",
    "job_id": "sync_job",
    "push_id": "tracking_push",
    "order_id": "order",
    "refund_id": "refund",
    "reshipment_id": "reshipment",
    "variant_id": "variant",
    "connection_id": "connection",
    "quote_id": "quote",
    "method_id": "method",
    "checkout_id": "checkout",
    "merchant_id": "merchant",
    "fulfillment_id": "fulfillment",
    "shipment_id": "shipment",
    "tracking_number": "tracking_number",
    "action": "action",
}
RULES = {"/v1/packaging-rules/": "packaging_rule", "/v1/shipping-rules/": "shipping_rule"}
# Bodies where the simplest schema-valid one is refused by the model's own checks before the route's.
BODIES = {
    ("checkout", "POST", "/v1/checkouts/{checkout_id}/pay"): {"method": "balance"},  # card needs payment_method
}


@pytest.fixture(scope="module")
def running(migrated, tmp_path_factory):
    (closed_port,) = free_ports(1)
    with services_up(
        migrated,
        tmp_path_factory.mktemp("walk-logs"),
        LOG_LEVEL="DEBUG",  # the most the services ever log, for the secrets check
        SYNC_PUBLIC_URL=f"http://127.0.0.1:{closed_port}",
        STORE_MAX_RETRIES="0",
        STORE_TIMEOUT_SECONDS="2",
    ) as services:
        yield services


class Recorder:
    """An HTTP client that keeps every answer body, for the secrets check."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.http = httpx.Client(timeout=15)
        self.answers: list[str] = []
        self.tokens: set[str] = set()

    def auth(self, role: str, merchant: str) -> dict[str, str]:
        headers = demo.auth(role, merchant)
        self.tokens.add(headers["Authorization"].removeprefix("Bearer "))
        return headers

    def call(self, method: str, service: str, path: str, *, headers: dict | None = None, **kw) -> httpx.Response:
        response = self.http.request(method, self.services.url(service) + path, headers=headers or {}, **kw)
        self.answers.append(response.text)
        return response

    def a(self, method: str, service: str, path: str, role: str = "merchant", **kw) -> httpx.Response:
        return self.call(method, service, path, headers=self.auth(role, A), **kw)


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


def created(response: httpx.Response, status: int = 201) -> dict:
    assert response.status_code == status, response.text
    return response.json()


async def _tracking_push(env: dict[str, str], merchant: str) -> str | None:
    conn = await asyncpg.connect(ServiceSettings(database_url=env["DATABASE_URL"]).asyncpg_dsn)
    try:
        return await conn.fetchval("SELECT id FROM sync.tracking_pushes WHERE merchant_id = $1", merchant)
    finally:
        await conn.close()


def build_merchant_a(client: Recorder, closed_url: str) -> dict[str, str]:
    """Merchant A's real resources in every service, through the real flow: ids by resource name."""
    ids = {"merchant": A, "action": "purchase"}
    ids["method"] = created(
        client.a(
            "POST",
            "checkout",
            "/v1/shipping-methods",
            role="ops",
            json=demo.shipping_method(f"Walk Express {A}"),
        )
    )["id"]
    created(client.a("PUT", "checkout", "/v1/shipping-settings", json={"default_method_id": ids["method"]}), 200)
    rule = {"name": "US", "priority": 1, "action": "method", "method_ids": [ids["method"]]}
    ids["shipping_rule"] = created(client.a("POST", "checkout", "/v1/shipping-rules", json=rule))["id"]
    variant = {"sku": f"SKU-{A}", "title": "Mug", "unit_cost": "4.20", "currency": "USD", "weight_grams": 300}
    ids["variant"] = created(client.a("POST", "orders", "/v1/catalog/variants", role="ops", json=variant))["id"]
    store = {
        "platform": "shopify",
        "shop_domain": SHOP,
        "name": "A's Shopify",
        "access_token": SHOPIFY_TOKEN,
        "webhook_secret": WEBHOOK_SECRET,
        "api_url": closed_url,
    }
    ids["store"] = created(client.a("POST", "sync", "/v1/stores", json=store))["id"]
    woo = {
        "platform": "woocommerce",
        "shop_domain": f"{A}.example.com",
        "name": "A's Woo",
        "consumer_key": WOO_KEY,
        "consumer_secret": WOO_SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        "api_url": closed_url,
    }
    created(client.a("POST", "sync", "/v1/stores", json=woo))
    connection = {
        "store_id": ids["store"],
        "external_product_id": "101",
        "external_variant_id": "201",
        "catalog_variant_id": ids["variant"],
    }
    ids["connection"] = created(client.a("POST", "orders", "/v1/product-connections", json=connection))["id"]
    quote = {"store_id": ids["store"], "external_product_id": "999", "title": "Unsourced lamp"}
    ids["quote"] = created(client.a("POST", "orders", "/v1/quotes", json=quote))["id"]
    card = {"kind": "card", "name": "Thank-you card", "catalog_variant_id": ids["variant"], "card_message": "Thanks"}
    private = created(client.a("POST", "orders", "/v1/private-products", json=card))["id"]
    packaging = {"store_id": ids["store"], "private_product_id": private}
    ids["packaging_rule"] = created(client.a("POST", "orders", "/v1/packaging-rules", json=packaging))["id"]
    top_up = {"merchant_id": A, "amount": {"amount": "200.00", "currency": "USD"}, "reference": "wire"}
    created(client.a("POST", "checkout", "/v1/balance/top-ups", role="ops", json=top_up))

    orders = []
    for number in (1, 2):
        body = json.dumps(demo.shopify_order(number, lines=[(101, 201, "STORE-SKU", 1, "19.90")])).encode()
        headers = demo.shopify_headers(body, shop=SHOP, secret=WEBHOOK_SECRET)
        orders.append(created(client.call("POST", "sync", "/webhooks/shopify", content=body, headers=headers), 200))
    ids["order"] = orders[0]["order_id"]

    def checkout(order_id: str) -> str:
        return eventually(
            lambda: (
                (r := client.a("POST", "checkout", "/v1/checkouts", json={"order_ids": [order_id]})).status_code == 201
                and r.json()["id"]
            ),
            what="checkout to know the order",
        )

    ids["checkout"] = checkout(ids["order"])
    pay = client.a("POST", "checkout", f"/v1/checkouts/{ids['checkout']}/pay", json={"method": "balance"})
    assert pay.json()["status"] == "succeeded", pay.text
    # The second order is paid by card, so the Stripe key and webhook secret are used too.
    card_checkout = checkout(orders[1]["order_id"])
    paid = client.a(
        "POST", "checkout", f"/v1/checkouts/{card_checkout}/pay", json={"method": "card", "payment_method": "pm_card"}
    )
    assert paid.status_code == 200, paid.text
    eventually(
        lambda: client.a("GET", "checkout", f"/v1/checkouts/{card_checkout}").json()["status"] == "paid",
        what="the card payment to be confirmed by Stripe's webhook",
    )

    def job() -> str | None:
        items = client.a("GET", "tracking", "/v1/fulfillments", role="ops", params={"limit": 250}).json()["items"]
        return next((j["id"] for j in items if j["order_id"] == ids["order"]), None)

    ids["fulfillment"] = eventually(job, what="the fulfillment job")
    ids["tracking_number"] = f"YT{uuid.uuid4().hex[:12]}"
    for action, body in (
        ("purchase", None),
        ("quality-check", {"passed": True}),
        ("pack", None),
        ("label", {"carrier": "YunExpress", "tracking_number": ids["tracking_number"]}),
        ("ship", None),
    ):
        created(client.a("POST", "tracking", f"/v1/fulfillments/{ids['fulfillment']}/{action}", "ops", json=body), 200)
    order = eventually(
        lambda: (
            (o := client.a("GET", "orders", f"/v1/orders/{ids['order']}").json())["status"] == "shipped"
            and o["shipment"]
            and o
        ),
        what="the order to be Shipped with its shipment",
    )
    ids["shipment"] = order["shipment"]["shipment_id"]
    refund = {"reason": "broken", "amount": {"amount": "1.00", "currency": "USD"}}
    ids["refund"] = created(client.a("POST", "orders", f"/v1/orders/{ids['order']}/refunds", json=refund))["id"]
    rejected = client.a(
        "POST", "orders", f"/v1/orders/{ids['order']}/refunds/{ids['refund']}/reject", "ops", json={"reason": "no"}
    )
    assert rejected.status_code == 200, rejected.text
    line = order["lines"][0]["external_line_id"]
    reship = {"reason": "lost", "external_line_ids": [line]}
    ids["reshipment"] = created(client.a("POST", "orders", f"/v1/orders/{ids['order']}/reshipments", json=reship))["id"]
    ids["sync_job"] = created(client.a("POST", "sync", f"/v1/stores/{ids['store']}/sync"), 202)["id"]
    # The shipment's tracking write-back to A's (unreachable) store.
    env = client.services.env
    ids["tracking_push"] = eventually(lambda: asyncio.run(_tracking_push(env, A)), what="the tracking push")
    return ids


def _operations(client: Recorder) -> list[tuple[str, str, str, dict]]:
    """(service, METHOD, path, operation object) for every operation of every service's OpenAPI document."""
    found = []
    for service in SERVICES:
        document = client.call("GET", service, "/openapi.json").json()
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    found.append((service, method.upper(), path, operation))
    return found


def _resource(path: str, name: str, ids: dict[str, str]) -> str:
    resource = next((r for prefix, r in RULES.items() if path.startswith(prefix)), None)
    resource = resource if name == "rule_id" else PARAMETERS.get(name)
    if resource is None:
        raise AssertionError(f"{path}: no resource of merchant A fills {name}; add it to PARAMETERS")
    return ids[resource]


def _fill(path: str, operation: dict, ids: dict[str, str]) -> tuple[str, dict[str, str], bool]:
    """The URL with A's ids in the path, the query with A's ids for the id parameters it takes, and whether the
    call names one of A's resources (a path id or a required query id)."""
    url = re.sub(r"{(\w+)}", lambda m: _resource(path, m.group(1), ids), path)
    query, required = {}, "{" in path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["name"] in PARAMETERS:
            query[parameter["name"]] = _resource(path, parameter["name"], ids)
            required = required or parameter.get("required", False)
    return url, query, required


def _sample_bodies(client: Recorder) -> dict[tuple[str, str, str], Any]:
    """The simplest valid body of every operation that takes one, generated from its schema, so that a refusal
    comes from the route's checks and not from request validation."""
    bodies: dict[tuple[str, str, str], Any] = {}
    for service in SERVICES:
        schema = schemathesis.openapi.from_url(client.services.url(service) + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.body:
                continue
            bodies[(service, operation.method.upper(), operation.path)] = _simplest_body(operation)
    return bodies


def _simplest_body(operation) -> Any:
    found: list = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=1,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def take(case) -> None:
        found.append(case.body)

    take()
    return found[0]


def _bad_tokens() -> dict[str, str]:
    secret = ServiceSettings().auth_jwt_secret.get_secret_value()
    expired = mint_token(secret, sub="a", merchant_id=A, role="merchant", ttl=dt.timedelta(seconds=-60))
    forged = mint_token("not-the-secret-" + "x" * 32, sub="a", merchant_id=A, role="merchant")
    unsigned = (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(json.dumps({"sub": "a", "merchant_id": A, "role": "ops"}).encode())
        .rstrip(b"=")
        .decode()
        + "."
    )
    return {
        "malformed": "Bearer not-a-jwt",
        "expired": f"Bearer {expired}",
        "wrongly signed": f"Bearer {forged}",
        "alg none": f"Bearer {unsigned}",
        "no scheme": demo.token("merchant", A),
        "basic": "Basic " + base64.b64encode(b"a:b").decode(),
    }


def test_every_route_checks_token_role_and_tenant(running: Services):
    client = Recorder(running)
    ids = build_merchant_a(client, running.env["SYNC_PUBLIC_URL"])
    operations = _operations(client)
    bodies = _sample_bodies(client)
    documented = {(s, m, p) for s, m, p, _ in operations}
    assert documented == set(running.roles), "the OpenAPI documents and the apps' routes differ"
    a_ids = {v for k, v in ids.items() if k not in ("merchant", "action", "method", "variant")}
    problems: list[str] = []
    walked = {"public": 0, "401": 0, "403": 0, "404": 0, "lists": 0}

    def expect(what: str, response: httpx.Response, *statuses: int) -> None:
        if response.status_code not in statuses:
            problems.append(f"{what}: {response.status_code} (expected {statuses}) {response.text[:200]}")
        elif response.status_code >= 400 and response.headers.get("content-type") != "application/problem+json":
            problems.append(f"{what}: {response.status_code} without a problem document")

    for service, method, path, operation in sorted(operations, key=lambda o: o[:3]):
        role = running.roles[(service, method, path)]
        url, query, names_a_resource = _fill(path, operation, ids)
        body = BODIES.get((service, method, path), bodies.get((service, method, path)))
        route = f"{method} {service}{path}"
        send: dict[str, Any] = {"params": query} | ({"json": body} if body is not None else {})
        if role == "public":
            assert PUBLIC.match(path), f"{route} takes no token but is not a public route"
            walked["public"] += 1
            continue
        assert path.startswith("/v1/"), f"{route}: an authenticated route outside /v1"
        expect(f"{route} without a token", client.call(method, service, url, **send), 401)
        for name, header in _bad_tokens().items():
            response = client.call(method, service, url, headers={"Authorization": header}, **send)
            expect(f"{route} with a {name} token", response, 401)
        walked["401"] += 1
        if role in ("merchant", "ops"):
            wrong = "ops" if role == "merchant" else "merchant"
            expect(f"{route} as {wrong}", client.call(method, service, url, headers=client.auth(wrong, A), **send), 403)
            walked["403"] += 1
        stranger = client.call(method, service, url, headers=client.auth("merchant", B), **send)
        if names_a_resource:
            if (service, method, path) in SHARED_RESOURCES:
                continue
            expect(f"{route} as another merchant", stranger, 403 if role == "ops" else 404)
            walked["404"] += 1
            if method == "GET" and role != "ops":  # the id is real: its owner reads it
                expect(f"{route} as its owner", client.a(method, service, url, params=query), 200)
        elif method == "GET" and role != "ops":
            expect(f"{route} as another merchant", stranger, 200)
            leaked = sorted(i for i in a_ids if i in stranger.text)
            if leaked:
                problems.append(f"{route} shows another merchant {leaked}")
            walked["lists"] += 1
    print(f"\nauth walk: {len(operations)} operations, {walked}, shared resources exempt: {len(SHARED_RESOURCES)}")
    assert not problems, "\n".join(problems)

    # A's resources are untouched by everything B and the bad tokens tried.
    assert client.a("GET", "sync", f"/v1/stores/{ids['store']}").json()["status"] != "removed"
    assert client.a("GET", "orders", f"/v1/orders/{ids['order']}").json()["status"] == "resent"
    assert client.a("GET", "checkout", f"/v1/shipping-rules/{ids['shipping_rule']}").status_code == 200

    _assert_no_secrets(running, client, ids)


def _assert_no_secrets(running: Services, client: Recorder, ids: dict[str, str]) -> None:
    box_keys = sync_settings().sync_secrets_key.get_secret_value().split(",")
    secrets = {
        *STORE_SECRETS,
        *CONFIGURED_SECRETS,
        *box_keys,
        ServiceSettings().auth_jwt_secret.get_secret_value(),
        base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode(),  # as a Basic credential
        *client.tokens,
    }
    logs = running.logs()
    assert set(logs) == {f"{s}.log" for s in SERVICES}
    # The search sees what the logs hold: some of A's ids (its sync job's, its tracking push's) are logged.
    assert any(value in text for text in logs.values() for value in ids.values())
    places = {f"answer {i}": text for i, text in enumerate(client.answers)} | logs
    found = sorted({(where, s[:12] + "...") for where, text in places.items() for s in secrets if s in text})
    assert not found, f"secrets found: {found}"
