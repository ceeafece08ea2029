"""Shopify's REST Order resource, normalised into our StoreOrder. Pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.events import Address, StoreOrder, StoreOrderLine
from shared.money import Money


class UnusableOrder(ValueError):
    """The payload parses but lacks what we need; `field` names what is missing or wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _require(data: dict[str, Any], field: str, path: str = "") -> Any:
    value = data.get(field)
    if value is None or value == "":
        raise UnusableOrder(path + field, "is required")
    return value


def _decimal(value: Any, field: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise UnusableOrder(field, f"is not a decimal number: {value!r}") from exc


def _time(value: Any, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnusableOrder(field, f"is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise UnusableOrder(field, "has no UTC offset")
    return parsed


def parse_time(value: Any) -> datetime | None:
    """A lenient reading for optional times: None when absent or unreadable."""
    try:
        return None if value in (None, "") else _time(value, "time")
    except UnusableOrder:
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def normalise(store_id: str, data: dict[str, Any]) -> StoreOrder:
    currency = _require(data, "currency")
    items = data.get("line_items")
    if not isinstance(items, list) or not items:
        raise UnusableOrder("line_items", "must be a non-empty list")
    lines = []
    for i, item in enumerate(items):
        path = f"line_items[{i}]."
        quantity = _require(item, "quantity", path)
        if not isinstance(quantity, int) or quantity <= 0:
            raise UnusableOrder(path + "quantity", "must be a positive integer")
        lines.append(
            StoreOrderLine(
                external_line_id=str(_require(item, "id", path)),
                external_product_id=_str_or_none(item.get("product_id")),
                external_variant_id=_str_or_none(item.get("variant_id")),
                sku=item.get("sku") or None,
                title=item.get("title") or "",
                quantity=quantity,
                unit_price=Money.of(_decimal(item.get("price", "0"), path + "price"), currency),
            )
        )
    address = data.get("shipping_address") or {}
    customer = data.get("customer") or {}
    name = address.get("name") or " ".join(x for x in (address.get("first_name"), address.get("last_name")) if x)
    return StoreOrder(
        store_id=store_id,
        platform="shopify",
        external_order_id=str(_require(data, "id")),
        order_name=str(data.get("name") or f"#{data.get('order_number', data['id'])}"),
        currency=currency,
        total_price=Money.of(_decimal(_require(data, "total_price"), "total_price"), currency),
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
        store_created_at=_time(_require(data, "created_at"), "created_at"),
        store_updated_at=_time(_require(data, "updated_at"), "updated_at"),
    )


def wanted(order: StoreOrder, *, include_unpaid: bool = False) -> str | None:
    """Why an order is not synced, or None when it is: by default only paid, unfulfilled orders come in."""
    if order.fulfillment_status not in (None, "unfulfilled"):
        return f"fulfillment status is {order.fulfillment_status}"
    paid = {"paid", "partially_refunded"}
    if include_unpaid:
        paid |= {"pending", "authorized", "partially_paid"}
    if order.financial_status not in paid:
        return f"financial status is {order.financial_status}"
    return None
