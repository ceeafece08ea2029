"""Shipping methods and rules between their JSON columns and the domain."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.checkout.adapters.tables import merchant_settings, shipping_methods, shipping_rules
from services.checkout.domain.rules import Conditions, ShippingRule
from services.checkout.domain.shipping import Bracket, RateTable, ShippingMethod


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def rate_table(data: dict) -> RateTable:
    return RateTable(
        first_weight_grams=data.get("first_weight_grams"),
        first_price=_decimal(data.get("first_price")),
        step_weight_grams=data.get("step_weight_grams"),
        step_price=_decimal(data.get("step_price")),
        brackets=tuple(Bracket(b["max_weight_grams"], Decimal(str(b["price"]))) for b in data.get("brackets") or ()),
    )


def method_of(row) -> ShippingMethod:
    return ShippingMethod(
        id=row.id,
        name=row.name,
        carrier=row.carrier,
        currency=row.currency,
        rates={country: rate_table(table) for country, table in row.rates.items()},
        delivery_days_min=row.delivery_days_min,
        delivery_days_max=row.delivery_days_max,
        max_weight_grams=row.max_weight_grams,
        enabled=row.enabled,
    )


def conditions_of(data: dict) -> Conditions:
    return Conditions(
        countries=frozenset(c.upper() for c in data.get("countries") or ()),
        amount_min=_decimal(data.get("amount_min")),
        amount_max=_decimal(data.get("amount_max")),
        freight_min=_decimal(data.get("freight_min")),
        freight_max=_decimal(data.get("freight_max")),
        store_ids=frozenset(data.get("store_ids") or ()),
        skus=frozenset(data.get("skus") or ()),
        catalog_variant_ids=frozenset(data.get("catalog_variant_ids") or ()),
        weight_min_grams=data.get("weight_min_grams"),
        weight_max_grams=data.get("weight_max_grams"),
    )


def rule_of(data) -> ShippingRule:
    """From a row or from a draft rule's dict (preview)."""
    get = data.get if isinstance(data, dict) else lambda k: getattr(data, k)
    return ShippingRule(
        id=get("id") or "draft",
        name=get("name"),
        priority=get("priority"),
        action=get("action"),
        method_ids=tuple(get("method_ids")),
        conditions=conditions_of(get("conditions") or {}),
        enabled=get("enabled"),
    )


# Built once: they run for every batch of orders made ready, and SQLAlchemy computes a new statement object's cache
# key on every execution.
_METHODS = select(shipping_methods).order_by(shipping_methods.c.id)
_RULES = select(shipping_rules).where(shipping_rules.c.merchant_id == bindparam("merchant_id"))
_DEFAULT_METHOD = select(merchant_settings.c.default_shipping_method_id).where(
    merchant_settings.c.merchant_id == bindparam("merchant_id")
)


async def load_methods(conn: AsyncConnection) -> list[ShippingMethod]:
    return [method_of(r) for r in (await conn.execute(_METHODS)).all()]


async def load_rules(conn: AsyncConnection, merchant_id: str) -> list[ShippingRule]:
    return [rule_of(r) for r in (await conn.execute(_RULES, {"merchant_id": merchant_id})).all()]


async def default_method_id(conn: AsyncConnection, merchant_id: str) -> str | None:
    return (await conn.execute(_DEFAULT_METHOD, {"merchant_id": merchant_id})).scalar()
