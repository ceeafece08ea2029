"""Use cases of shipping: quotes, applying the merchant's rules to payable orders, previews."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Update, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.checkout.adapters import shipping_repo
from services.checkout.adapters.tables import payable_orders
from services.checkout.domain.pricing import price
from services.checkout.domain.rules import OrderFacts, Selection, ShippingRule, select_method
from services.checkout.domain.shipping import Quote, ShippingMethod, Unavailable, parcel_of, quote_all
from shared.db import records
from shared.errors import NotFound
from shared.events import PayableOrderPayload

OPEN = ("to_order", "pending")  # orders whose shipping may still change


@dataclass(frozen=True)
class Shipping:
    """Everything rule matching needs for one merchant, loaded once for many orders."""

    methods: list[ShippingMethod]
    rules: list[ShippingRule]
    default_method_id: str | None

    def answers(self, order: PayableOrderPayload) -> dict[str, Quote | Unavailable]:
        quotes, unavailable = quote_all(self.methods, parcel_of(order))
        return {a.method.id: a for a in [*quotes, *unavailable]}

    def select(self, order: PayableOrderPayload) -> Selection:
        costs = price(order)
        facts = OrderFacts(
            parcel=parcel_of(order),
            amount=costs.products + costs.packaging,
            store_id=order.store_id,
            skus=frozenset(line.sku for line in order.lines),
            catalog_variant_ids=frozenset(line.catalog_variant_id for line in order.lines),
        )
        return select_method(self.rules, facts, self.answers(order), self.default_method_id)


async def load(conn: AsyncConnection, merchant_id: str) -> Shipping:
    return Shipping(
        await shipping_repo.load_methods(conn),
        await shipping_repo.load_rules(conn, merchant_id),
        await shipping_repo.default_method_id(conn, merchant_id),
    )


CHOICE_COLUMNS = ("shipping_method_id", "shipping_rule_id", "shipping_reason", "shipping_problem")


def chosen(selection: Selection) -> dict[str, str | None]:
    """A selection as the payable_orders columns that record it (CHOICE_COLUMNS)."""
    values = (selection.method_id, selection.rule_id, selection.reason, selection.problem)
    return dict(zip(CHOICE_COLUMNS, values, strict=True))


def _record_choices() -> Update:
    """The choices given as {"records": [order_id and `chosen` columns]}: one statement for any number of orders."""
    choice = records(payable_orders)
    return (
        update(payable_orders)
        .where(payable_orders.c.order_id == choice.c.order_id)
        .values({name: choice.c[name] for name in CHOICE_COLUMNS})
    )


_RECORD_CHOICES = _record_choices()


async def apply_rules(conn: AsyncConnection, merchant_id: str) -> list[Selection]:
    """Choose the method of all the merchant's open orders again and record why."""
    rows = (
        await conn.execute(
            select(payable_orders.c.order_id, payable_orders.c.order)
            .where(payable_orders.c.merchant_id == merchant_id, payable_orders.c.status.in_(OPEN))
            # locked here, in order_id order as checkouts lock them: the update may visit them in any order
            .order_by(payable_orders.c.order_id)
            .with_for_update()
        )
    ).all()
    if not rows:
        return []
    shipping = await load(conn, merchant_id)
    selections = [shipping.select(PayableOrderPayload.model_validate(r.order)) for r in rows]
    choices = [{"order_id": r.order_id, **chosen(s)} for r, s in zip(rows, selections, strict=True)]
    await conn.execute(_RECORD_CHOICES, {"records": choices})
    return selections


async def payable_order(conn: AsyncConnection, merchant_id: str, order_id: str):
    row = (
        await conn.execute(
            select(payable_orders).where(
                payable_orders.c.order_id == order_id, payable_orders.c.merchant_id == merchant_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"order {order_id} not found or not ready to order")
    return row


async def quote_order(conn: AsyncConnection, merchant_id: str, order_id: str):
    row = await payable_order(conn, merchant_id, order_id)
    order = PayableOrderPayload.model_validate(row.order)
    parcel = parcel_of(order)
    return parcel, *quote_all(await shipping_repo.load_methods(conn), parcel)
