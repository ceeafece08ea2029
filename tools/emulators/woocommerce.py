"""A WooCommerce store emulator: REST API v3 orders, webhooks, notes, and the Shipment Tracking extension.

REST (consumer key and secret, HTTP Basic or `consumer_key`/`consumer_secret` query parameters):
  GET  /wp-json/wc/v3/orders            page, per_page (<=100), status, modified_after, after; X-WP-Total(Pages)
  PUT  /wp-json/wc/v3/orders/{id}       e.g. {"status": "completed"}
  GET|POST /wp-json/wc/v3/orders/{id}/notes
  POST /wp-json/wc/v3/webhooks          registers a webhook and sends the unsigned form-encoded ping
  GET|POST /wp-json/wc-shipment-tracking/v3/orders/{id}/shipment-trackings   (only when the extension is on)
Control API for tests and the demo under /_emulator.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.signatures import hmac_sha256_base64
from tools.emulators import Faults

REST = "/wp-json/wc/v3"
TRACKING = "/wp-json/wc-shipment-tracking/v3"


def _gmt(moment: datetime) -> str:
    """WooCommerce writes GMT times without an offset."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


class WooCommerceEmulator:
    def __init__(
        self,
        site: str = "shop.example.com",
        *,
        consumer_key: str = "ck_emulator",
        consumer_secret: str = "cs_emulator",  # noqa: S107 - the emulator's, for tests
        webhook_secret: str = "emulator-woo-secret",  # noqa: S107
        shipment_tracking: bool = True,
    ) -> None:
        self.site, self.consumer_key, self.consumer_secret = site, consumer_key, consumer_secret
        self.webhook_secret = webhook_secret
        self.shipment_tracking = shipment_tracking
        self.faults = Faults()
        self.orders: dict[int, dict] = {}
        self.notes: dict[int, list[dict]] = {}
        self.trackings: dict[int, list[dict]] = {}
        self.webhooks: list[dict] = []
        self.outgoing: list[tuple[str, bytes]] = []
        self._ids = itertools.count(1001)
        self._clock = datetime.now(UTC) - timedelta(days=1)
        self.app = self._build_app()

    def _tick(self) -> str:
        self._clock = max(self._clock + timedelta(seconds=1), datetime.now(UTC).replace(microsecond=0))
        return _gmt(self._clock)

    def create_order(
        self,
        *,
        lines: list[tuple[int, int, str, int, str]] | None = None,
        status: str = "processing",
        email: str = "customer@example.com",
    ) -> dict:
        """A new order; lines are (product_id, variation_id, sku, quantity, price)."""
        order_id = next(self._ids)
        lines = lines or [(7001, 8001, "EMU-SKU-1", 1, "19.90")]
        now = self._tick()
        order = {
            "id": order_id,
            "number": str(order_id),
            "status": status,
            "currency": "USD",
            "total": str(sum(Decimal(p) * q for _, _, _, q, p in lines)),
            "customer_id": 12,
            "date_created_gmt": now,
            "date_modified_gmt": now,
            "date_paid_gmt": now if status in ("processing", "completed") else None,
            "billing": {"first_name": "Ana", "last_name": "Silva", "email": email, "phone": "+1 217 555 0100"},
            "shipping": {
                "first_name": "Ana",
                "last_name": "Silva",
                "company": "",
                "address_1": "123 Main St",
                "address_2": "",
                "city": "Springfield",
                "state": "IL",
                "postcode": "62701",
                "country": "US",
            },
            "line_items": [
                {
                    "id": next(self._ids),
                    "name": f"Product {p}",
                    "product_id": p,
                    "variation_id": v,
                    "quantity": q,
                    "sku": sku,
                    "price": float(price),  # WooCommerce sends the unit price as a JSON number
                    "total": str(Decimal(price) * q),
                }
                for p, v, sku, q, price in lines
            ],
            "meta_data": [],
        }
        self.orders[order_id] = order
        self._queue("order.created", order)
        return order

    def update_order(self, order_id: int, **changes) -> dict:
        order = self.orders[order_id]
        order.update(changes)
        order["date_modified_gmt"] = self._tick()
        if changes.get("status") in ("processing", "completed") and not order["date_paid_gmt"]:
            order["date_paid_gmt"] = order["date_modified_gmt"]
        self._queue("order.updated", order)
        return order

    def delete_order(self, order_id: int) -> None:
        self.orders.pop(order_id)
        self._queue("order.deleted", {"id": order_id})

    def _queue(self, topic: str, payload: dict) -> None:
        self.outgoing.append((topic, json.dumps(payload).encode()))

    def signed_headers(self, topic: str, body: bytes, webhook_id: int = 1) -> dict[str, str]:
        resource, event = topic.split(".")
        return {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": f"https://{self.site}/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": hmac_sha256_base64(self.webhook_secret, body),
            "X-WC-Webhook-ID": str(webhook_id),
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        }

    async def deliver(
        self, url: str | None = None, *, duplicates: int = 1, shuffle: bool = False, seed: int | None = None
    ) -> list[int]:
        """Send the queued webhooks (to `url`, else to the registered ones); WooCommerce itself never retries, so
        `duplicates` stands for a plugin or proxy that does."""
        queued, self.outgoing = self.outgoing, []
        deliveries = []
        for topic, body in queued:
            targets = (
                [(url, 1)] if url else [(w["delivery_url"], w["id"]) for w in self.webhooks if w["topic"] == topic]
            )
            for target, webhook_id in targets:
                deliveries += [(target, body, self.signed_headers(topic, body, webhook_id))] * duplicates
        if shuffle:
            random.Random(seed).shuffle(deliveries)
        async with httpx.AsyncClient(timeout=10) as http:
            return [(await http.post(t, content=b, headers=h)).status_code for t, b, h in deliveries]

    def _authorised(self, request: Request) -> bool:
        key = request.query_params.get("consumer_key")
        secret = request.query_params.get("consumer_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        return (key, secret) == (self.consumer_key, self.consumer_secret)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="WooCommerce emulator")

        @app.middleware("http")
        async def gate(request: Request, call_next):
            if not request.url.path.startswith("/wp-json/"):
                return await call_next(request)
            if not self._authorised(request):
                response = JSONResponse(
                    {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."}, 401
                )
            elif request.url.path.startswith(TRACKING) and not self.shipment_tracking:
                response = JSONResponse(
                    {"code": "rest_no_route", "message": "No route was found matching the URL and request method."},
                    404,
                )
            else:
                response = await self.faults.apply(request) or await call_next(request)
            self.faults.requests.append((request.method, request.url.path, response.status_code))
            return response

        @app.get(REST + "/orders")
        async def list_orders(request: Request):
            q = request.query_params
            per_page, page = int(q.get("per_page", 10)), int(q.get("page", 1))
            if not 1 <= per_page <= 100:
                return JSONResponse({"code": "rest_invalid_param", "message": "per_page must be 1 to 100"}, 400)
            statuses = set((q.get("status") or "any").split(","))
            found = sorted(self.orders.values(), key=lambda o: o["id"])
            if "any" not in statuses:
                found = [o for o in found if o["status"] in statuses]
            if q.get("modified_after"):
                bound = q["modified_after"].replace("Z", "").split("+")[0]
                found = [o for o in found if o["date_modified_gmt"] > bound]
            if q.get("after"):
                bound = q["after"].replace("Z", "").split("+")[0]
                found = [o for o in found if o["date_created_gmt"] > bound]
            total = len(found)
            headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(math.ceil(total / per_page))}
            return JSONResponse(found[(page - 1) * per_page : page * per_page], headers=headers)

        @app.get(REST + "/orders/{order_id}")
        async def get_order(order_id: int):
            if order_id not in self.orders:
                return JSONResponse({"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID."}, 404)
            return self.orders[order_id]

        @app.put(REST + "/orders/{order_id}")
        async def put_order(request: Request, order_id: int):
            if order_id not in self.orders:
                return JSONResponse({"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID."}, 404)
            return self.update_order(order_id, **await request.json())

        @app.get(REST + "/orders/{order_id}/notes")
        async def list_notes(order_id: int):
            return self.notes.get(order_id, [])

        @app.post(REST + "/orders/{order_id}/notes", status_code=201)
        async def add_note(request: Request, order_id: int):
            if order_id not in self.orders:
                return JSONResponse({"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID."}, 404)
            body = await request.json()
            note = {"id": next(self._ids), "note": body["note"], "customer_note": bool(body.get("customer_note"))}
            self.notes.setdefault(order_id, []).append(note)
            return JSONResponse(note, 201)

        @app.get(TRACKING + "/orders/{order_id}/shipment-trackings")
        async def list_trackings(order_id: int):
            return self.trackings.get(order_id, [])

        @app.post(TRACKING + "/orders/{order_id}/shipment-trackings", status_code=201)
        async def add_tracking(request: Request, order_id: int):
            if order_id not in self.orders:
                return JSONResponse({"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID."}, 404)
            body = await request.json()
            if not body.get("tracking_number"):
                return JSONResponse({"code": "rest_missing_callback_param", "message": "tracking_number"}, 400)
            tracking = {"tracking_id": uuid.uuid4().hex, **body}
            self.trackings.setdefault(order_id, []).append(tracking)
            return JSONResponse(tracking, 201)

        @app.post(REST + "/webhooks", status_code=201)
        async def create_webhook(request: Request):
            body = await request.json()
            webhook = {
                "id": next(self._ids),
                "name": body.get("name", ""),
                "status": "active",
                "topic": body["topic"],
                "delivery_url": body["delivery_url"],
            }
            self.webhooks.append(webhook)
            async with httpx.AsyncClient(timeout=10) as http:  # the unsigned creation ping
                await http.post(
                    webhook["delivery_url"],
                    content=f"webhook_id={webhook['id']}".encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            return JSONResponse(webhook, 201)

        @app.post("/_emulator/orders", status_code=201)
        async def control_create(request: Request):
            body = await request.json() if await request.body() else {}
            count = int(body.pop("count", 1))
            return {"orders": [self.create_order(**body)["id"] for _ in range(count)]}

        @app.patch("/_emulator/orders/{order_id}")
        async def control_update(request: Request, order_id: int):
            return self.update_order(order_id, **await request.json())

        @app.delete("/_emulator/orders/{order_id}")
        async def control_delete(order_id: int):
            self.delete_order(order_id)
            return {"deleted": order_id}

        @app.post("/_emulator/deliver")
        async def control_deliver(request: Request):
            body = await request.json() if await request.body() else {}
            statuses = await self.deliver(
                body.get("url"), duplicates=int(body.get("duplicates", 1)), shuffle=bool(body.get("shuffle"))
            )
            return {"statuses": statuses}

        @app.post("/_emulator/faults")
        async def control_faults(request: Request):
            body = await request.json()
            self.faults.inject(
                body.get("status"), int(body.get("count", 1)), body.get("path_contains", ""), body.get("hang", 30.0)
            )
            return {"pending": len(self.faults.pending)}

        @app.post("/_emulator/shipment-tracking")
        async def control_tracking(request: Request):
            self.shipment_tracking = bool((await request.json())["enabled"])
            return {"enabled": self.shipment_tracking}

        return app
