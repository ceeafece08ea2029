"""The demo merchant and store that `make run` seeds, and a Shopify-format order sender.

python -m tools.demo order [--id N]    send a signed orders/create webhook for the demo store
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from shared.auth import mint_token
from shared.settings import ServiceSettings
from tools.stack import SERVICES

MERCHANT = "demo-merchant"
SHOP = "demo-store.myshopify.com"
WEBHOOK_SECRET = "demo-webhook-secret"  # noqa: S105 - the demo store's, published on purpose
ACCESS_TOKEN = "shpat_demo_token"  # noqa: S105 - likewise
SHIPPING_METHOD = "YunExpress Global Direct"
PRODUCT_ID, VARIANT_ID, SKU = 7001, 8001, "DEMO-MUG-BLK"


def token(role: str = "merchant", merchant_id: str = MERCHANT) -> str:
    secret = ServiceSettings().auth_jwt_secret.get_secret_value()
    return mint_token(secret, sub=f"{role}@{merchant_id}", merchant_id=merchant_id, role=role)  # type: ignore[arg-type]


def auth(role: str = "merchant", merchant_id: str = MERCHANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, merchant_id)}"}


def shopify_order(
    order_number: int,
    *,
    lines: list[tuple[int, int, str, int, str]] | None = None,
    financial_status: str = "paid",
    updated_at: datetime | None = None,
    country_code: str = "US",
    email: str = "customer@example.com",
    locale: str = "en",
) -> dict:
    """A Shopify REST Order resource; lines are (product_id, variant_id, sku, quantity, price)."""
    lines = lines or [(PRODUCT_ID, VARIANT_ID, SKU, 1, "19.90")]
    now = (updated_at or datetime.now(UTC)).isoformat()
    total = sum(Decimal(price) * qty for _, _, _, qty, price in lines)
    return {
        "id": 450789469000 + order_number,
        "name": f"#{1000 + order_number}",
        "order_number": 1000 + order_number,
        "email": email,
        "currency": "USD",
        "total_price": str(total),
        "created_at": now,
        "updated_at": now,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "cancelled_at": None,
        "customer_locale": locale,
        "customer": {"id": 115310627314723954, "email": email},
        "line_items": [
            {
                "id": 866550311766439000 + i,
                "product_id": p,
                "variant_id": v,
                "sku": sku,
                "quantity": qty,
                "title": f"Product {p}",
                "price": price,
            }
            for i, (p, v, sku, qty, price) in enumerate(lines)
        ],
        "shipping_address": {
            "first_name": "Ana",
            "last_name": "Silva",
            "name": "Ana Silva",
            "address1": "123 Main St",
            "city": "Springfield",
            "province": "Illinois",
            "province_code": "IL",
            "zip": "62701",
            "country": "United States",
            "country_code": country_code,
            "phone": "+1 217 555 0100",
        },
        "shipping_lines": [],
        "fulfillments": [],
    }


def shopify_headers(
    body: bytes,
    *,
    topic: str = "orders/create",
    shop: str = SHOP,
    secret: str = WEBHOOK_SECRET,
    webhook_id: str | None = None,
) -> dict[str, str]:
    from shared.signatures import hmac_sha256_base64

    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Hmac-Sha256": hmac_sha256_base64(secret, body),
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-API-Version": "2025-07",
    }


SHOPIFY_EMULATOR = "http://127.0.0.1:8101"


def shipping_method(
    name: str,
    *,
    carrier: str = "YunExpress",
    countries: tuple[str, ...] = ("US",),
    first_price: str = "5.00",
    step_price: str = "2.00",
) -> dict:
    """A shipping method as ops create it (POST /v1/shipping-methods): the first 500 g, then each 500 g more,
    7 to 12 days, up to 20 kg."""
    rate = {"first_weight_grams": 500, "first_price": first_price, "step_weight_grams": 500, "step_price": step_price}
    return {
        "name": name,
        "carrier": carrier,
        "currency": "USD",
        "rates": dict.fromkeys(countries, rate),
        "delivery_days_min": 7,
        "delivery_days_max": 12,
        "max_weight_grams": 20000,
    }


def seed(stack) -> None:
    """Idempotent: a second run finds everything in place."""
    with httpx.Client(timeout=10) as http:

        def call(method: str, service: str, path: str, role: str = "merchant", **kw) -> httpx.Response:
            return http.request(
                method, f"{stack.url(service)}{path}", headers={**auth(role), **kw.pop("headers", {})}, **kw
            )

        stores = call("GET", "sync", "/v1/stores").json()["items"]
        store = next((s for s in stores if s["shop_domain"] == SHOP), None)
        if store is None:
            store = (
                call(
                    "POST",
                    "sync",
                    "/v1/stores",
                    json={
                        "platform": "shopify",
                        "shop_domain": SHOP,
                        "name": "Demo Store",
                        "api_url": SHOPIFY_EMULATOR,
                        "access_token": ACCESS_TOKEN,
                        "webhook_secret": WEBHOOK_SECRET,
                    },
                )
                .raise_for_status()
                .json()
            )
        # Every run: the store emulator starts afresh, without the subscriptions of the last run.
        call("POST", "sync", f"/v1/stores/{store['id']}/webhooks").raise_for_status()
        variants = call("GET", "orders", "/v1/catalog/variants", params={"sku": SKU}).json()["items"]
        variant = (
            variants[0]
            if variants
            else call(
                "POST",
                "orders",
                "/v1/catalog/variants",
                role="ops",
                json={
                    "sku": SKU,
                    "title": "Black ceramic mug 11oz",
                    "unit_cost": "4.20",
                    "currency": "USD",
                    "weight_grams": 350,
                },
            )
            .raise_for_status()
            .json()
        )
        call(
            "POST",
            "orders",
            "/v1/product-connections",
            json={
                "store_id": store["id"],
                "external_product_id": str(PRODUCT_ID),
                "external_variant_id": str(VARIANT_ID),
                "catalog_variant_id": variant["id"],
            },
        )  # 409 when connected already
        methods = call("GET", "checkout", "/v1/shipping-methods").json()["items"]
        method = next((m for m in methods if m["name"] == SHIPPING_METHOD), None)
        if method is None:
            method = (
                call(
                    "POST",
                    "checkout",
                    "/v1/shipping-methods",
                    role="ops",
                    json=shipping_method(
                        SHIPPING_METHOD,
                        countries=("US", "BR", "DE", "FR", "GB", "PT"),
                        first_price="4.90",
                        step_price="1.80",
                    ),
                )
                .raise_for_status()
                .json()
            )
        call("PUT", "checkout", "/v1/shipping-settings", json={"default_method_id": method["id"]}).raise_for_status()
        call(
            "POST",
            "checkout",
            "/v1/balance/top-ups",
            role="ops",
            headers={"Idempotency-Key": "demo-seed"},
            json={
                "merchant_id": MERCHANT,
                "amount": {"amount": "1000.00", "currency": "USD"},
                "reference": "demo opening balance",
            },
        ).raise_for_status()


def instructions(stack) -> str:
    urls = "\n".join(f"  {name:9} {stack.url(name)}/docs" for name in SERVICES)
    return f"""
The four services are up (OpenAPI docs):
{urls}
Demo merchant '{MERCHANT}' with the Shopify store {SHOP} (an emulator at {SHOPIFY_EMULATOR}), a default
shipping method and a balance of 1000.00 USD; Stripe and an SMTP server are emulated too (.local/logs).

  .venv/bin/python -m tools.demo order          # the store gets an order and sends its webhooks
  TOKEN=$(make -s token)
  curl -s -H "Authorization: Bearer $TOKEN" {stack.url("orders")}/v1/orders/counts
  curl -s {SHOPIFY_EMULATOR}/_emulator/emails    # the customers' emails

Ctrl-C stops the services (PostgreSQL and Kafka keep running: make stop).
"""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.demo")
    parser.add_argument("command", choices=["order"])
    parser.add_argument("--quantity", type=int, default=1)
    args = parser.parse_args()
    with httpx.Client(base_url=SHOPIFY_EMULATOR, timeout=10) as http:
        created = (
            http.post("/_emulator/orders", json={"lines": [[PRODUCT_ID, VARIANT_ID, SKU, args.quantity, "19.90"]]})
            .raise_for_status()
            .json()
        )
        delivered = http.post("/_emulator/deliver", json={}).raise_for_status().json()
    print(f"store order {created['orders'][0]} created; webhook answers: {delivered['statuses']}")


if __name__ == "__main__":
    main()
