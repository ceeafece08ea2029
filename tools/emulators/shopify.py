"""A Shopify store emulator: the REST Admin API parts we use, its rate limit, and signed webhooks.

Admin API (`X-Shopify-Access-Token`):
  GET  /admin/api/{version}/orders.json                      filters, `Link` cursor pagination (page_info)
  GET  /admin/api/{version}/orders/{id}/fulfillment_orders.json
  GET  /admin/api/{version}/orders/{id}/fulfillments.json
  POST /admin/api/{version}/fulfillments.json                tracking_info, line_items_by_fulfillment_order
  POST /admin/api/{version}/fulfillments/{id}/update_tracking.json
  GET|POST /admin/api/{version}/webhooks.json
Every admin response carries `X-Shopify-Shop-Api-Call-Limit: used/size`; over the leaky bucket -> 429 with
`Retry-After` (seconds). Control API for tests and the demo under /_emulator (see the routes below).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.signatures import hmac_sha256_base64
from tools.emulators import Faults

API_VERSION = "2025-07"


class LeakyBucket:
    """Shopify's REST limit: each request adds one to the bucket, which drains at `drain_per_second`."""

    def __init__(self, size: int = 40, drain_per_second: float = 2.0, level: float = 0.0) -> None:
        self.size, self.rate, self.level, self._at = size, drain_per_second, level, time.monotonic()

    def take(self) -> float | None:
        """Take one request: None if it fits, else the seconds to wait before it would."""
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self._at) * self.rate)
        self._at = now
        if self.level + 1 > self.size:
            return (self.level + 1 - self.size) / self.rate
        self.level += 1
        return None

    def fill(self) -> None:
        """As if the app had just spent its whole allowance."""
        self.level, self._at = float(self.size), time.monotonic()

    def header(self) -> str:
        return f"{math.ceil(self.level)}/{self.size}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class ShopifyEmulator:
    def __init__(
        self,
        shop: str = "emulated.myshopify.com",
        *,
        access_token: str = "shpat_emulator",  # noqa: S107 - the emulator's, for tests
        webhook_secret: str = "emulator-webhook-secret",  # noqa: S107
        bucket_size: int = 40,
        drain_per_second: float = 2.0,
        bucket_level: float = 0.0,
        first_id: int = 5_000_000_001,
    ) -> None:
        self.shop, self.access_token, self.webhook_secret = shop, access_token, webhook_secret
        self.bucket = LeakyBucket(bucket_size, drain_per_second, bucket_level)
        self.faults = Faults()
        self.orders: dict[int, dict] = {}
        self.fulfillment_orders: dict[int, dict] = {}
        self.fulfillments: dict[int, dict] = {}
        self.webhooks: list[dict] = []
        self.outgoing: list[tuple[str, bytes]] = []  # (topic, body) not yet delivered
        self._ids = itertools.count(first_id)
        self._clock = datetime.now(UTC) - timedelta(days=1)
        self.app = self._build_app()

    # --- state changes, as the merchant's actions in the Shopify admin -----------------------------------------

    def _tick(self) -> str:
        """A strictly increasing updated_at, so that every change is newer than the previous one."""
        self._clock = max(self._clock + timedelta(seconds=1), datetime.now(UTC).replace(microsecond=0))
        return _iso(self._clock)

    def create_order(
        self,
        *,
        lines: list[tuple[int, int, str, int, str]] | None = None,
        financial_status: str = "paid",
        tags: str = "",
        country_code: str = "US",
        email: str = "customer@example.com",
        queue_webhooks: bool = True,
    ) -> dict:
        """A new order; lines are (product_id, variant_id, sku, quantity, price)."""
        order_id = next(self._ids)
        lines = lines or [(7001, 8001, "EMU-SKU-1", 1, "19.90")]
        now = self._tick()
        number = len(self.orders) + 1001
        order = {
            "id": order_id,
            "name": f"#{number}",
            "order_number": number,
            "email": email,
            "currency": "USD",
            "total_price": str(sum(Decimal(p) * q for _, _, _, q, p in lines)),
            "created_at": now,
            "updated_at": now,
            "financial_status": financial_status,
            "fulfillment_status": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "tags": tags,
            "customer_locale": "en",
            "customer": {"id": 207119551, "email": email},
            "line_items": [
                {
                    "id": next(self._ids),
                    "product_id": p,
                    "variant_id": v,
                    "sku": sku,
                    "quantity": q,
                    "title": f"Product {p}",
                    "price": price,
                }
                for p, v, sku, q, price in lines
            ],
            "shipping_address": {
                "first_name": "Ana",
                "last_name": "Silva",
                "name": "Ana Silva",
                "company": None,
                "address1": "123 Main St",
                "address2": None,
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
        self.orders[order_id] = order
        fo_id = next(self._ids)
        self.fulfillment_orders[fo_id] = {
            "id": fo_id,
            "order_id": order_id,
            "status": "open",
            "line_items": [
                {"id": next(self._ids), "line_item_id": li["id"], "quantity": li["quantity"]}
                for li in order["line_items"]
            ],
        }
        if queue_webhooks:
            self._queue("orders/create", order)
            if financial_status == "paid":
                self._queue("orders/paid", order)
        return order

    def update_order(self, order_id: int, **changes: Any) -> dict:
        order = self.orders[order_id]
        order.update(changes)
        order["updated_at"] = self._tick()
        self._queue("orders/updated", order)
        if changes.get("financial_status") == "paid":
            self._queue("orders/paid", order)
        return order

    def cancel_order(self, order_id: int, reason: str = "customer") -> dict:
        order = self.orders[order_id]
        order.update(cancelled_at=self._tick(), cancel_reason=reason, financial_status="voided")
        order["updated_at"] = order["cancelled_at"]
        self._queue("orders/cancelled", order)
        return order

    def revoke_token(self) -> None:
        self.access_token = f"revoked-{uuid.uuid4().hex}"

    def _queue(self, topic: str, order: dict) -> None:
        self.outgoing.append((topic, json.dumps(order).encode()))

    # --- webhooks ----------------------------------------------------------------------------------------------

    def signed_headers(self, topic: str, body: bytes, webhook_id: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": hmac_sha256_base64(self.webhook_secret, body),
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": _iso(datetime.now(UTC)),
        }

    async def deliver(
        self,
        url: str | None = None,
        *,
        duplicates: int = 1,
        shuffle: bool = False,
        drop: set[int] | None = None,
        seed: int | None = None,
    ) -> list[int]:
        """Send the queued webhooks (to `url`, else to the registered subscriptions), each `duplicates` times with
        the same X-Shopify-Webhook-Id, shuffled on demand; `drop` skips those positions (missed webhooks).
        Returns the HTTP statuses received."""
        queued, self.outgoing = self.outgoing, []
        deliveries = []
        for position, (topic, body) in enumerate(queued):
            if drop and position in drop:
                continue
            targets = [url] if url else [w["address"] for w in self.webhooks if w["topic"] == topic]
            for target in targets:
                headers = self.signed_headers(topic, body)
                deliveries += [(target, body, headers)] * duplicates
        if shuffle:
            random.Random(seed).shuffle(deliveries)
        async with httpx.AsyncClient(timeout=10) as http:
            return [(await http.post(t, content=b, headers=h)).status_code for t, b, h in deliveries]

    # --- the HTTP app ------------------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Shopify emulator")
        admin = "/admin/api/{version}"

        @app.middleware("http")
        async def gate(request: Request, call_next):
            if not request.url.path.startswith("/admin/"):
                return await call_next(request)
            if request.headers.get("x-shopify-access-token") != self.access_token:
                response = JSONResponse(
                    {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, 401
                )
            elif (wait := self.bucket.take()) is not None:
                response = JSONResponse(
                    {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume."},
                    429,
                    headers={"Retry-After": f"{math.ceil(wait * 10) / 10:.1f}"},
                )
            else:
                response = await self.faults.apply(request) or await call_next(request)
            response.headers["X-Shopify-Shop-Api-Call-Limit"] = self.bucket.header()
            self.faults.requests.append((request.method, request.url.path, response.status_code))
            return response

        @app.get(admin + "/orders.json")
        async def list_orders(request: Request, version: str):
            params = dict(request.query_params)
            limit = int(params.pop("limit", 50))
            if not 1 <= limit <= 250:
                return JSONResponse({"errors": {"limit": "must be between 1 and 250"}}, 400)
            fields = params.pop("fields", None)
            if "page_info" in params:
                page_info = params.pop("page_info")
                if params:
                    return JSONResponse(
                        {"errors": {"page_info": f"only limit and fields may go with it, not {sorted(params)}"}}, 400
                    )
                try:
                    cursor = json.loads(base64.urlsafe_b64decode(page_info))
                except ValueError:
                    return JSONResponse({"errors": {"page_info": "Invalid value."}}, 400)
                params, after_id = cursor["filters"], cursor["last_id"]
            else:
                after_id = 0
            matching = [o for o in sorted(self.orders.values(), key=lambda o: o["id"]) if _matches(o, params)]
            page = [o for o in matching if o["id"] > after_id][:limit]
            headers = {}
            if page and any(o["id"] > page[-1]["id"] for o in matching):
                token = base64.urlsafe_b64encode(
                    json.dumps({"filters": params, "last_id": page[-1]["id"]}).encode()
                ).decode()
                base = str(request.url).split("?")[0]
                headers["Link"] = f'<{base}?limit={limit}&page_info={token}>; rel="next"'
            if fields:
                wanted = fields.split(",")
                page = [{k: o.get(k) for k in wanted} for o in page]
            return JSONResponse({"orders": page}, headers=headers)

        @app.get(admin + "/orders/{order_id}/fulfillment_orders.json")
        async def fulfillment_orders(version: str, order_id: int):
            if order_id not in self.orders:
                return JSONResponse({"errors": "Not Found"}, 404)
            found = [fo for fo in self.fulfillment_orders.values() if fo["order_id"] == order_id]
            return {"fulfillment_orders": found}

        @app.get(admin + "/orders/{order_id}/fulfillments.json")
        async def order_fulfillments(version: str, order_id: int):
            return {"fulfillments": [f for f in self.fulfillments.values() if f["order_id"] == order_id]}

        @app.post(admin + "/fulfillments.json", status_code=201)
        async def create_fulfillment(request: Request, version: str):
            body = (await request.json()).get("fulfillment") or {}
            groups = body.get("line_items_by_fulfillment_order") or []
            if not groups:
                return JSONResponse({"errors": {"line_items_by_fulfillment_order": "is required"}}, 422)
            fos = [self.fulfillment_orders.get(g.get("fulfillment_order_id")) for g in groups]
            if any(fo is None for fo in fos):
                return JSONResponse({"errors": "Not Found"}, 404)
            if any(fo["status"] not in ("open", "in_progress") for fo in fos):
                return JSONResponse({"errors": ["Fulfillment order is not in a fulfillable state"]}, 422)
            tracking = body.get("tracking_info") or {}
            order = self.orders[fos[0]["order_id"]]
            fulfillment = {
                "id": next(self._ids),
                "order_id": order["id"],
                "status": "success",
                "tracking_company": tracking.get("company"),
                "tracking_number": tracking.get("number"),
                "tracking_numbers": [tracking["number"]] if tracking.get("number") else [],
                "tracking_url": tracking.get("url"),
                "notify_customer": bool(body.get("notify_customer")),
                "updates": 0,
            }
            self.fulfillments[fulfillment["id"]] = fulfillment
            for fo in fos:
                fo["status"] = "closed"
            order["fulfillments"].append(fulfillment)
            order["fulfillment_status"] = "fulfilled"
            order["updated_at"] = self._tick()
            return JSONResponse({"fulfillment": fulfillment}, 201)

        @app.post(admin + "/fulfillments/{fulfillment_id}/update_tracking.json")
        async def update_tracking(request: Request, version: str, fulfillment_id: int):
            fulfillment = self.fulfillments.get(fulfillment_id)
            if fulfillment is None:
                return JSONResponse({"errors": "Not Found"}, 404)
            body = (await request.json()).get("fulfillment") or {}
            tracking = body.get("tracking_info") or {}
            fulfillment.update(
                tracking_company=tracking.get("company", fulfillment["tracking_company"]),
                tracking_number=tracking.get("number", fulfillment["tracking_number"]),
                tracking_url=tracking.get("url", fulfillment["tracking_url"]),
                notify_customer=bool(body.get("notify_customer")),
                updates=fulfillment["updates"] + 1,
            )
            fulfillment["tracking_numbers"] = [fulfillment["tracking_number"]]
            return {"fulfillment": fulfillment}

        @app.get(admin + "/webhooks.json")
        async def list_webhooks(version: str):
            return {"webhooks": self.webhooks}

        @app.post(admin + "/webhooks.json", status_code=201)
        async def create_webhook(request: Request, version: str):
            body = (await request.json()).get("webhook") or {}
            if not body.get("topic") or not body.get("address"):
                return JSONResponse({"errors": {"topic": "is required", "address": "is required"}}, 422)
            if any(w["topic"] == body["topic"] and w["address"] == body["address"] for w in self.webhooks):
                return JSONResponse({"errors": {"address": ["for this topic has already been taken"]}}, 422)
            webhook = {"id": next(self._ids), "topic": body["topic"], "address": body["address"], "format": "json"}
            self.webhooks.append(webhook)
            return JSONResponse({"webhook": webhook}, 201)

        # --- control API -------------------------------------------------------------------------------------

        @app.post("/_emulator/orders", status_code=201)
        async def control_create(request: Request):
            body = await request.json() if await request.body() else {}
            count = int(body.pop("count", 1))
            created = [self.create_order(**body) for _ in range(count)]
            return {"orders": [o["id"] for o in created]}

        @app.patch("/_emulator/orders/{order_id}")
        async def control_update(request: Request, order_id: int):
            return self.update_order(order_id, **await request.json())

        @app.post("/_emulator/orders/{order_id}/cancel")
        async def control_cancel(order_id: int):
            return self.cancel_order(order_id)

        @app.post("/_emulator/deliver")
        async def control_deliver(request: Request):
            body = await request.json() if await request.body() else {}
            statuses = await self.deliver(
                body.get("url"),
                duplicates=int(body.get("duplicates", 1)),
                shuffle=bool(body.get("shuffle")),
                drop=set(body.get("drop") or ()),
            )
            return {"statuses": statuses}

        @app.post("/_emulator/faults")
        async def control_faults(request: Request):
            body = await request.json()
            self.faults.inject(
                body.get("status"), int(body.get("count", 1)), body.get("path_contains", ""), body.get("hang", 30.0)
            )
            return {"pending": len(self.faults.pending)}

        @app.post("/_emulator/revoke")
        async def control_revoke():
            self.revoke_token()
            return {"revoked": True}

        @app.get("/_emulator/requests")
        async def control_requests():
            return {"requests": self.faults.requests}

        return app


def _matches(order: dict, params: dict[str, str]) -> bool:
    status = params.get("status", "open")
    if status == "open" and order["cancelled_at"]:
        return False
    if status == "cancelled" and not order["cancelled_at"]:
        return False
    if status == "closed" and order["fulfillment_status"] != "fulfilled":
        return False
    financial = params.get("financial_status", "any")
    if financial not in ("any", order["financial_status"]):
        if not (financial == "unpaid" and order["financial_status"] in ("pending", "authorized")):
            return False
    fulfillment = params.get("fulfillment_status", "any")
    if fulfillment == "unfulfilled" and order["fulfillment_status"] not in (None, "partial"):
        return False
    if fulfillment == "shipped" and order["fulfillment_status"] != "fulfilled":
        return False
    if "ids" in params and str(order["id"]) not in params["ids"].split(","):
        return False
    if "since_id" in params and order["id"] <= int(params["since_id"]):
        return False
    for field, bound in (("updated_at", "updated_at"), ("created_at", "created_at")):
        if f"{bound}_min" in params and _time(order[field]) < _time(params[f"{bound}_min"]):
            return False
        if f"{bound}_max" in params and _time(order[field]) > _time(params[f"{bound}_max"]):
            return False
    return True
