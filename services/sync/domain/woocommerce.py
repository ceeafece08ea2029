"""WooCommerce's REST v3 Order, normalised into our StoreOrder. Pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.sync.domain.parsing import Cancellation, UnusableOrder, decimal, require, str_or_none
from shared.events import Address, StoreOrder, StoreOrderLine
from shared.money import Money

# WooCommerce has one status; ours (like Shopify's) separates payment from fulfilment.
FINANCIAL_STATUS = {
    "pending": "pending",
    "on-hold": "authorized",  # awaiting a manual payment (bank transfer, cheque)
    "processing": "paid",
    "completed": "paid",
    "refunded": "refunded",
    "cancelled": "voided",
    "failed": "voided",
    "trash": "voided",
}
CANCELLED = {"cancelled", "trash"}


def gmt_time(value: Any, field: str) -> datetime:
    """`date_*_gmt` fields are GMT without an offset."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnusableOrder(field, f"is not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalise(store_id: str, data: dict[str, Any]) -> StoreOrder:
    currency = require(data, "currency")
    status = str(require(data, "status"))
    items = data.get("line_items")
    if not isinstance(items, list) or not items:
        raise UnusableOrder("line_items", "must be a non-empty list")
    lines = []
    for i, item in enumerate(items):
        path = f"line_items[{i}]."
        quantity = require(item, "quantity", path)
        if not isinstance(quantity, int) or quantity <= 0:
            raise UnusableOrder(path + "quantity", "must be a positive integer")
        # `total` is a decimal string; `price` a JSON number (a float): prefer the string.
        unit = (
            decimal(item["total"], path + "total") / quantity
            if item.get("total") not in (None, "")
            else decimal(item.get("price", 0), path + "price")
        )
        lines.append(
            StoreOrderLine(
                external_line_id=str(require(item, "id", path)),
                external_product_id=str_or_none(item.get("product_id") or None),
                external_variant_id=str_or_none(item.get("variation_id") or None),
                sku=item.get("sku") or None,
                title=item.get("name") or "",
                quantity=quantity,
                unit_price=Money.of(unit, currency),
            )
        )
    shipping = data.get("shipping") or {}
    billing = data.get("billing") or {}
    return StoreOrder(
        store_id=store_id,
        platform="woocommerce",
        external_order_id=str(require(data, "id")),
        order_name=f"#{data.get('number') or data['id']}",
        currency=currency,
        total_price=Money.of(decimal(require(data, "total"), "total"), currency),
        financial_status=FINANCIAL_STATUS.get(status, status),
        fulfillment_status="fulfilled" if status == "completed" else None,
        customer_email=billing.get("email") or None,
        shipping_address=Address(
            name=" ".join(x for x in (shipping.get("first_name"), shipping.get("last_name")) if x),
            company=shipping.get("company") or None,
            address1=shipping.get("address_1") or "",
            address2=shipping.get("address_2") or None,
            city=shipping.get("city") or "",
            province_code=shipping.get("state") or None,
            zip=shipping.get("postcode") or None,
            country_code=shipping.get("country") or "",
            phone=shipping.get("phone") or billing.get("phone") or None,
        ),
        lines=lines,
        store_created_at=gmt_time(require(data, "date_created_gmt"), "date_created_gmt"),
        store_updated_at=gmt_time(require(data, "date_modified_gmt"), "date_modified_gmt"),
    )


def cancellation(data: dict[str, Any]) -> Cancellation | None:
    if data.get("status") not in CANCELLED:
        return None
    modified = data.get("date_modified_gmt")
    return Cancellation(
        str(require(data, "id")),
        f"status {data['status']}",
        gmt_time(modified, "date_modified_gmt") if modified else None,
    )


def delivery_key(data: dict[str, Any], topic: str) -> str:
    """WooCommerce's delivery id does not identify the event: the order id and its modification time do."""
    if topic == "order.deleted":
        return f"{require(data, 'id')}:deleted"
    return f"{require(data, 'id')}:{require(data, 'date_modified_gmt')}"


__all__ = ["cancellation", "delivery_key", "normalise"]
