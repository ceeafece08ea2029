"""Clients of the stores' admin APIs behind one small interface, so that e.g. a GraphQL Shopify client can replace
the REST one. Rate limits are honoured here (429 + Retry-After, Shopify's call-limit header); 5xx answers and
timeouts are retried with backoff up to `max_retries`; a 401/403 means the store revoked our credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from services.sync.domain.tracking import TrackingInfo

SHOPIFY_API_VERSION = "2025-07"
SHOPIFY_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled", "app/uninstalled")
WOO_TOPICS = ("order.created", "order.updated", "order.deleted")
MAX_RATE_LIMIT_WAITS = 100


class StoreError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StoreAuthError(StoreError):
    """The store refused our credentials (revoked token, deleted key)."""


class StoreUnavailable(StoreError):
    """5xx answers or timeouts, still failing after the retries."""


class StoreRejected(StoreError):
    """The store understood and refused the request (4xx other than auth and rate limit)."""


@dataclass(frozen=True)
class OrdersPage:
    orders: list[dict[str, Any]]
    next: Any | None  # opaque: what to pass to get the next page, None on the last one


@dataclass(frozen=True)
class Push:
    external_order_id: str
    tracking: TrackingInfo
    notify_customer: bool
    previous_ref: str | None = None  # the store's fulfillment/tracking of the first shipment, for a reshipment


class StoreClient(Protocol):
    async def list_orders(self, *, updated_since: datetime | None, cursor: Any | None) -> OrdersPage: ...

    async def register_webhooks(self, address: str, secret: str) -> list[str]: ...

    async def push_tracking(self, push: Push) -> str:
        """Create (or, for a reshipment, update) the store's fulfillment with tracking; returns its id. Safe to
        repeat: a push the store already has is found and not made twice."""
        ...

    async def aclose(self) -> None: ...


OnRetry = Callable[[str], Awaitable[None] | None]


class _Http:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_retries: int,
        backoff_seconds: float,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.client, self.max_retries, self.backoff, self.on_retry = client, max_retries, backoff_seconds, on_retry

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        failures = waits = 0
        while True:
            try:
                response = await self.client.request(method, url, **kw)
            except httpx.TimeoutException:
                problem: str = f"{method} {_path(url)}: timed out"
                status = None
            except httpx.TransportError as exc:
                problem, status = f"{method} {_path(url)}: {type(exc).__name__}", None
            else:
                status = response.status_code
                if status == 429 and waits < MAX_RATE_LIMIT_WAITS:
                    waits += 1
                    await asyncio.sleep(_seconds(response.headers.get("retry-after"), default=1.0))
                    continue
                if status in (401, 403):
                    raise StoreAuthError(f"the store refused our credentials ({status})", status)
                if status < 500:
                    await self._pace(response)
                    return response
                problem = f"{method} {_path(url)}: HTTP {status}"
            if failures >= self.max_retries:
                raise StoreUnavailable(problem, status)
            failures += 1
            if self.on_retry:
                result = self.on_retry(f"{problem}; retry {failures} of {self.max_retries}")
                if result is not None:
                    await result
            await asyncio.sleep(self.backoff * 2 ** (failures - 1))

    async def _pace(self, response: httpx.Response) -> None:
        """Shopify's `used/size` header: with the bucket full, the next call would get a 429; a slot frees within
        half a second on the slowest plan (2/s)."""
        used, _, size = response.headers.get("x-shopify-shop-api-call-limit", "").partition("/")
        if used.isdigit() and size.isdigit() and int(used) >= int(size):
            await asyncio.sleep(0.5)


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(0.0, float(value)) if value else default
    except ValueError:
        return default


def _path(url: str) -> str:
    return httpx.URL(url).path


def _check(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code >= 400:
        raise StoreRejected(f"{what}: HTTP {response.status_code} {response.text[:300]}", response.status_code)
    return response


class ShopifyClient:
    """The REST Admin API (orders, Fulfillment Orders, webhooks)."""

    def __init__(self, api_url: str, access_token: str, http: httpx.AsyncClient, **retry: Any) -> None:
        self.base = f"{api_url.rstrip('/')}/admin/api/{SHOPIFY_API_VERSION}"
        http.headers["X-Shopify-Access-Token"] = access_token
        self.http = _Http(http, **retry)

    async def list_orders(self, *, updated_since: datetime | None, cursor: Any | None) -> OrdersPage:
        if cursor is not None:  # the Link header's URL carries page_info and limit, nothing else may be added
            response = await self.http.request("GET", cursor)
        else:
            params = {"status": "any", "limit": "250"}
            if updated_since is not None:
                params["updated_at_min"] = updated_since.isoformat()
            response = await self.http.request("GET", f"{self.base}/orders.json", params=params)
        orders = _check(response, "listing orders").json()["orders"]
        return OrdersPage(orders, response.links.get("next", {}).get("url"))

    async def register_webhooks(self, address: str, secret: str) -> list[str]:
        for topic in SHOPIFY_TOPICS:
            response = await self.http.request(
                "POST",
                f"{self.base}/webhooks.json",
                json={"webhook": {"topic": topic, "address": address, "format": "json"}},
            )
            if response.status_code == 422 and "taken" in response.text:
                continue  # registered already
            _check(response, f"registering {topic}")
        return list(SHOPIFY_TOPICS)

    async def push_tracking(self, push: Push) -> str:
        info = push.tracking
        tracking = {"number": info.number, "company": info.company}
        if not info.listed:
            tracking["url"] = info.url  # Shopify builds links only for the carriers it lists
        if push.previous_ref:
            response = await self.http.request(
                "POST",
                f"{self.base}/fulfillments/{push.previous_ref}/update_tracking.json",
                json={"fulfillment": {"tracking_info": tracking, "notify_customer": push.notify_customer}},
            )
            return str(_check(response, "updating tracking").json()["fulfillment"]["id"])
        order = push.external_order_id
        response = await self.http.request("GET", f"{self.base}/orders/{order}/fulfillment_orders.json")
        fulfillment_orders = _check(response, "reading fulfillment orders").json()["fulfillment_orders"]
        open_ones = [fo for fo in fulfillment_orders if fo["status"] in ("open", "in_progress")]
        if not open_ones:
            # Fulfilled already: by us (an attempt whose answer we never got), or by someone else.
            response = await self.http.request("GET", f"{self.base}/orders/{order}/fulfillments.json")
            for fulfillment in _check(response, "reading fulfillments").json()["fulfillments"]:
                if info.number in (fulfillment.get("tracking_numbers") or [fulfillment.get("tracking_number")]):
                    return str(fulfillment["id"])
            raise StoreRejected("the order has no open fulfillment order (fulfilled or cancelled in the store)")
        response = await self.http.request(
            "POST",
            f"{self.base}/fulfillments.json",
            json={
                "fulfillment": {
                    "line_items_by_fulfillment_order": [
                        {"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": []} for fo in open_ones
                    ],
                    "notify_customer": push.notify_customer,
                    "tracking_info": tracking,
                }
            },
        )
        return str(_check(response, "creating the fulfillment").json()["fulfillment"]["id"])

    async def aclose(self) -> None:
        await self.http.client.aclose()


class WooCommerceClient:
    """REST API v3, plus the Shipment Tracking extension when the store has it."""

    def __init__(self, api_url: str, key: str, secret: str, http: httpx.AsyncClient, **retry: Any) -> None:
        self.site = api_url.rstrip("/")
        self.base = f"{self.site}/wp-json/wc/v3"
        http.auth = httpx.BasicAuth(key, secret)
        self.http = _Http(http, **retry)

    async def list_orders(self, *, updated_since: datetime | None, cursor: Any | None) -> OrdersPage:
        page = cursor or 1
        params = {"per_page": "100", "page": str(page), "orderby": "id", "order": "asc", "dates_are_gmt": "true"}
        if updated_since is not None:
            params["modified_after"] = updated_since.isoformat()
        response = _check(await self.http.request("GET", f"{self.base}/orders", params=params), "listing orders")
        pages = int(response.headers.get("x-wp-totalpages") or 1)
        return OrdersPage(response.json(), page + 1 if page < pages else None)

    async def register_webhooks(self, address: str, secret: str) -> list[str]:
        for topic in WOO_TOPICS:
            response = await self.http.request(
                "POST",
                f"{self.base}/webhooks",
                json={"name": f"dropship {topic}", "topic": topic, "delivery_url": address, "secret": secret},
            )
            _check(response, f"registering {topic}")
        return list(WOO_TOPICS)

    async def push_tracking(self, push: Push) -> str:
        info, order = push.tracking, push.external_order_id
        trackings = f"{self.site}/wp-json/wc-shipment-tracking/v3/orders/{order}/shipment-trackings"
        listed = await self.http.request("GET", trackings)
        if listed.status_code != 404:  # the extension is installed
            for tracking in _check(listed, "reading trackings").json():
                if tracking.get("tracking_number") == info.number:
                    return str(tracking.get("tracking_id"))
            response = await self.http.request(
                "POST",
                trackings,
                json={
                    "custom_tracking_provider": info.company,
                    "custom_tracking_link": info.url,
                    "tracking_number": info.number,
                },
            )
            return str(_check(response, "adding the tracking").json().get("tracking_id"))
        notes = _check(await self.http.request("GET", f"{self.base}/orders/{order}/notes"), "reading notes").json()
        note = next((n for n in notes if info.number in n.get("note", "")), None)
        if note is None:
            response = await self.http.request(
                "POST",
                f"{self.base}/orders/{order}/notes",
                json={
                    "note": f"Your order has shipped with {info.company}: {info.number} - track it at {info.url}",
                    "customer_note": push.notify_customer,
                },
            )
            note = _check(response, "adding the order note").json()
        _check(
            await self.http.request("PUT", f"{self.base}/orders/{order}", json={"status": "completed"}),
            "completing the order",
        )
        return f"note:{note.get('id')}"

    async def aclose(self) -> None:
        await self.http.client.aclose()


def client_for(
    platform: str,
    api_url: str,
    credentials: dict[str, str],
    *,
    timeout: float,
    max_retries: int,
    backoff_seconds: float,
    on_retry: OnRetry | None = None,
) -> StoreClient:
    http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
    retry = {"max_retries": max_retries, "backoff_seconds": backoff_seconds, "on_retry": on_retry}
    if platform == "shopify":
        return ShopifyClient(api_url, credentials["access_token"], http, **retry)
    return WooCommerceClient(api_url, credentials["consumer_key"], credentials["consumer_secret"], http, **retry)
