"""Property-based fuzzing (schemathesis) of every operation in each service's OpenAPI document, against the four
services running as processes: no 5xx, and every answer is one the document promises (status code, content type,
body schema). Webhooks are also sent malformed, oversized, unsigned and wrongly signed bodies: the right 4xx, never
a 5xx, and nothing stored."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.settings import ServiceSettings
from tests.e2e.services_up import Services, services_up
from tools import demo
from tools.stack import SERVICES

pytestmark = pytest.mark.e2e

# Cases per operation and generation mode (positive: valid per the document; negative: invalid on purpose).
MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MERCHANT = f"fuzz-{uuid.uuid4().hex[:8]}"
SHOP, SHOP_SECRET = f"{MERCHANT}.myshopify.com", f"whsec-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def running(migrated, tmp_path_factory):
    with services_up(migrated, tmp_path_factory.mktemp("fuzz-logs")) as services:
        yield services


@dataclass
class Tally:
    operations: int = 0
    cases: int = 0
    failures: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tally():
    total = Tally()
    yield total
    print(
        f"\nfuzz summary: {total.operations} operations, {total.cases} cases, {len(total.failures)} failing operations"
    )


def _fuzz(operation, base_url: str, headers: dict[str, str], mode: str, session: requests.Session, tally: Tally):
    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        tally.cases += 1
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=15)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented(running: Services, service: str, tally: Tally):
    base_url = running.url(service)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    tokens = {"merchant": demo.auth("merchant", MERCHANT), "any": demo.auth("merchant", MERCHANT)}
    tokens["ops"] = demo.auth("ops", MERCHANT)
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            role = running.roles[(service, operation.method.upper(), operation.path)]
            tally.operations += 1
            for mode in ("positive", "negative"):
                try:
                    _fuzz(operation, base_url, tokens.get(role, {}), mode, session, tally)
                except Unsatisfiable:
                    pass  # nothing in this mode can be generated (e.g. no constraint to violate)
                except (Exception, FailureGroup) as exc:  # one operation's failure must not hide the next one's
                    failures.append(f"{operation.label} ({mode}): {exc}")
    tally.failures += failures
    assert not failures, "\n\n".join(failures)
    log = running.logs()[f"{service}.log"]
    assert "http.unhandled" not in log, "a request ended in an unhandled exception (see the service log)"


# --- what the fuzzer found, as regressions ----------------------------------------------------------------------

NUL = "nul\u0000byte"
# (service, role, method, path, request arguments, the answer expected)
FOUND = {
    "a NUL in a created product's title": (
        "orders",
        "ops",
        "POST",
        "/v1/catalog/products",
        {"json": {"title": NUL}},
        422,
    ),
    "a NUL in a search": ("orders", "merchant", "GET", "/v1/catalog/variants", {"params": {"q": NUL}}, 422),
    "a NUL in a quote": (
        "orders",
        "merchant",
        "POST",
        "/v1/quotes",
        {"json": {"store_id": "s", "external_product_id": NUL, "title": "t"}},
        422,
    ),
    "a NUL in an order id": ("checkout", "merchant", "POST", "/v1/checkouts", {"json": {"order_ids": [NUL]}}, 422),
    "a NUL in a store id": ("sync", "merchant", "GET", "/v1/stores/%00", {}, 422),
    "a NUL in a fulfillment id": ("tracking", "ops", "GET", "/v1/fulfillments/%00", {}, 422),
    "a lower-case currency": ("checkout", "merchant", "GET", "/v1/balance", {"params": {"currency": "usd"}}, 422),
    "a PATCH changing nothing": ("orders", "ops", "PATCH", "/v1/catalog/variants/unknown", {"json": {}}, 404),
    "a body that is not JSON": ("sync", "merchant", "POST", "/v1/stores", {"content": b"{not json"}, 400),
}


@pytest.mark.parametrize("case", FOUND)
def test_inputs_the_fuzzer_found_get_a_4xx(running: Services, case: str):
    service, role, method, path, kwargs, expected = FOUND[case]
    headers = {**demo.auth(role, MERCHANT), "Content-Type": "application/json"}
    response = httpx.request(method, running.url(service) + path, headers=headers, **kwargs)
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_patch_changing_nothing_answers_the_variant_unchanged(running: Services):
    url, ops = f"{running.url('orders')}/v1/catalog/variants", demo.auth("ops", MERCHANT)
    variant = {"sku": f"FUZZ-{uuid.uuid4().hex[:8]}", "title": "t", "unit_cost": "1.00", "currency": "USD"}
    created = httpx.post(url, headers=ops, json={**variant, "weight_grams": 100}).json()
    unchanged = httpx.patch(f"{url}/{created['id']}", headers=ops, json={})
    assert unchanged.status_code == 200 and unchanged.json() == created


# --- webhooks, by hand ------------------------------------------------------------------------------------------

WEBHOOKS = {
    "shopify": ("sync", "/webhooks/shopify"),
    "woocommerce": ("sync", "/webhooks/woocommerce/{store}"),
    "stripe": ("checkout", "/webhooks/stripe"),
    "aftership": ("tracking", "/webhooks/aftership"),
}


async def _stored(env: dict[str, str]) -> dict[str, int]:
    """Row counts of what webhooks store, across the services' schemas."""
    conn = await asyncpg.connect(ServiceSettings(database_url=env["DATABASE_URL"]).asyncpg_dsn)
    try:
        counts = {}
        for table in (
            "sync.webhook_deliveries",
            "sync.webhook_failures",
            "sync.store_orders",
            "tracking.carrier_events",
        ):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        return counts
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def woo_store(running: Services) -> str:
    response = httpx.post(
        f"{running.url('sync')}/v1/stores",
        headers=demo.auth("merchant", MERCHANT),
        json={
            "platform": "woocommerce",
            "shop_domain": f"w{uuid.uuid4().hex[:8]}.example.com",
            "name": "Fuzz Woo",
            "consumer_key": "ck_fuzz",
            "consumer_secret": f"cs_{uuid.uuid4().hex}",
            "webhook_secret": "fuzz-woo-webhook-secret",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def shop(running: Services) -> str:
    store = {
        "platform": "shopify",
        "shop_domain": SHOP,
        "name": "Fuzz Shop",
        "access_token": f"shpat_{uuid.uuid4().hex}",
        "webhook_secret": SHOP_SECRET,
    }
    response = httpx.post(f"{running.url('sync')}/v1/stores", headers=demo.auth("merchant", MERCHANT), json=store)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_signed_order_with_a_nul_byte_gets_a_4xx(running: Services, shop: str):
    order = demo.shopify_order(1, email="nul\u0000@example.com")
    order["shipping_address"]["name"] = "Ana\u0000Silva"
    body = json.dumps(order).encode()
    response = httpx.post(
        f"{running.url('sync')}/webhooks/shopify",
        content=body,
        headers=demo.shopify_headers(body, shop=SHOP, secret=SHOP_SECRET),
    )
    assert 400 <= response.status_code < 500, response.text


def _bad_requests(oversized: bytes) -> dict[str, tuple[bytes, dict[str, str], set[int]]]:
    """name -> (body, headers, the statuses allowed): unsigned, wrongly signed, malformed and oversized."""
    json_headers = {"Content-Type": "application/json"}
    return {
        "no headers": (b'{"id": 1}', json_headers, {400, 401, 404, 422}),
        "wrong signature": (b'{"id": 1}', {}, {400, 401, 404}),
        "malformed json": (b'{"id": 1,,', {}, {400, 401, 404, 422}),
        "not an object": (b"[1, 2, 3]", {}, {400, 401, 404, 422}),
        "nul bytes": (b'{"id": "\x00"}', {}, {400, 401, 404, 422}),
        "oversized": (oversized, json_headers, {413}),
    }


def _signature_headers(kind: str) -> dict[str, str]:
    """Headers a genuine sender would set, with a signature made with the wrong key."""
    body = b"signed-with-the-wrong-key"
    match kind:
        case "shopify":
            return demo.shopify_headers(body, shop=SHOP, secret="not-the-secret")
        case "woocommerce":
            return {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Signature": "Zm9yZ2Vk"}
        case "stripe":
            return {"Stripe-Signature": "t=1700000000,v1=" + "0" * 64}
        case _:
            return {"aftership-hmac-sha256": "Zm9yZ2Vk"}


@pytest.mark.parametrize("kind", WEBHOOKS)
async def test_bad_webhooks_get_a_4xx_and_store_nothing(running: Services, shop: str, woo_store: str, kind: str):
    service, path = WEBHOOKS[kind]
    url = running.url(service) + path.format(store=woo_store)
    limit = ServiceSettings().max_body_bytes
    oversized = json.dumps({"padding": "x" * limit}).encode()
    before = await _stored(running.env)
    async with httpx.AsyncClient(timeout=15) as http:
        for name, (body, headers, allowed) in _bad_requests(oversized).items():
            sent = headers if name in ("no headers", "oversized") else {**_signature_headers(kind), **headers}
            response = await http.post(url, content=body, headers=sent)
            assert response.status_code in allowed, (kind, name, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json", (kind, name)

        # A body over the limit that announces no length (chunked) is cut off while it streams.
        async def chunks():
            for start in range(0, len(oversized), 65536):
                yield oversized[start : start + 65536]

        streamed = await http.post(url, content=chunks(), headers=_signature_headers(kind))
        assert streamed.status_code == 413, (kind, streamed.text)
    assert await _stored(running.env) == before
