"""Shopify's REST Order resource, normalised into our StoreOrder. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any

from services.sync.domain.parsing import (
    Cancellation,
    UnusableOrder,
    aware_time,
    decimal,
    parse_time,
    require,
    str_or_none,
)
from services.sync.domain.store_settings import StoreSettings, skip_reason
from shared.events import Address, StoreOrder, StoreOrderLine
from shared.money import Money


def normalise(store_id: str, data: dict[str, Any]) -> StoreOrder:
    currency = require(data, "currency")
    items = data.get("line_items")
    if not isinstance(items, list) or not items:
        raise UnusableOrder("line_items", "must be a non-empty list")
    lines = []
    for i, item in enumerate(items):
        path = f"line_items[{i}]."
        quantity = require(item, "quantity", path)
        if not isinstance(quantity, int) or quantity <= 0:
            raise UnusableOrder(path + "quantity", "must be a positive integer")
        lines.append(
            StoreOrderLine(
                external_line_id=str(require(item, "id", path)),
                external_product_id=str_or_none(item.get("product_id")),
                external_variant_id=str_or_none(item.get("variant_id")),
                sku=item.get("sku") or None,
                title=item.get("title") or "",
                quantity=quantity,
                unit_price=Money.of(decimal(item.get("price", "0"), path + "price"), currency),
            )
        )
    address = data.get("shipping_address") or {}
    customer = data.get("customer") or {}
    name = address.get("name") or " ".join(x for x in (address.get("first_name"), address.get("last_name")) if x)
    return StoreOrder(
        store_id=store_id,
        platform="shopify",
        external_order_id=str(require(data, "id")),
        order_name=str(data.get("name") or f"#{data.get('order_number', data['id'])}"),
        currency=currency,
        total_price=Money.of(decimal(require(data, "total_price"), "total_price"), currency),
        financial_status=str(data.get("financial_status") or "pending"),
        fulfillment_status=data.get("fulfillment_status"),
        customer_email=data.get("email") or customer.get("email"),
        customer_locale=data.get("customer_locale"),
        shipping_address=Address(
            name=name,
            company=address.get("company"),
            address1=address.get("address1") or "",
            address2=address.get("address2"),
            city=address.get("city") or "",
            province=address.get("province"),
            province_code=address.get("province_code"),
            zip=address.get("zip"),
            country_code=address.get("country_code") or "",
            phone=address.get("phone"),
        ),
        lines=lines,
        store_created_at=aware_time(require(data, "created_at"), "created_at"),
        store_updated_at=aware_time(require(data, "updated_at"), "updated_at"),
        tags=[t.strip() for t in str(data.get("tags") or "").split(",") if t.strip()],
    )


def wanted(order: StoreOrder, *, include_unpaid: bool = False) -> str | None:
    """Why an order is not synced under the default settings (or with unpaid orders included), or None."""
    return skip_reason(order, StoreSettings(include_unpaid=include_unpaid))


def cancellation(data: dict[str, Any]) -> Cancellation | None:
    """The store-side cancellation an order payload carries, if any."""
    if not data.get("cancelled_at"):
        return None
    return Cancellation(str(require(data, "id")), data.get("cancel_reason"), parse_time(data["cancelled_at"]))


__all__ = ["UnusableOrder", "cancellation", "normalise", "parse_time", "wanted"]
