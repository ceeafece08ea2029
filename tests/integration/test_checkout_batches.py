"""The checkout's order event handlers applied in batches, as the consumer's fast path hands them over, end exactly
as applying the same events one by one does: the same payable orders, statuses and chosen shipping methods."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.checkout.adapters.tables import merchant_settings, payable_orders, shipping_methods, shipping_rules
from services.checkout.consumers import HANDLERS
from shared.events import (
    Address,
    IntegrationEvent,
    OrderReadyForCheckout,
    OrderStatusChanged,
    OrderStatusChangedPayload,
    PayableLine,
    PayableOrderPayload,
)
from shared.messaging.consumer import Batch
from shared.money import Money

Apply = Callable[[AsyncConnection], Awaitable[None]]


@pytest.fixture
async def engine(engine_for) -> AsyncEngine:
    return engine_for("checkout")


def payable(name: str, country: str = "DE", grams: int = 300) -> PayableOrderPayload:
    line = PayableLine(
        catalog_variant_id="var-1", sku="SKU-1", quantity=1, unit_cost=Money.of("10.00", "USD"), unit_weight_grams=grams
    )
    return PayableOrderPayload(
        store_id="store-1",
        order_name=name,
        currency="USD",
        lines=[line],
        shipping_address=Address(country_code=country),
    )


def ready(merchant: str, order_id: str, order: PayableOrderPayload) -> OrderReadyForCheckout:
    return OrderReadyForCheckout(merchant_id=merchant, order_id=order_id, payload=order)


def moved(merchant: str, order_id: str, before: str, after: str) -> OrderStatusChanged:
    payload = OrderStatusChangedPayload(from_status=before, to_status=after)
    return OrderStatusChanged(merchant_id=merchant, order_id=order_id, payload=payload)


def one_by_one(events: list[IntegrationEvent]) -> Apply:
    """The consumer's slow path: each event alone (a batch of one)."""

    async def apply(conn: AsyncConnection) -> None:
        for e in events:
            await HANDLERS[e.event_type](conn, e)

    return apply


def in_runs(events: list[IntegrationEvent]) -> Apply:
    """The consumer's fast path: each run of consecutive events with one Batch handler in one call of it."""

    async def apply(conn: AsyncConnection) -> None:
        for handler, run in itertools.groupby(events, key=lambda e: HANDLERS[e.event_type]):
            assert isinstance(handler, Batch)
            await handler.handle(conn, list(run))

    return apply


async def outcome(engine: AsyncEngine, order_ids: list[str], apply: Apply) -> tuple[dict[str, dict], int]:
    """The payable orders after `apply`, and the statements it ran; rolled back so that both ways start alike."""
    statements = 0

    def count(*_) -> None:
        nonlocal statements
        statements += 1

    async with engine.connect() as conn:
        transaction = await conn.begin()
        event.listen(conn.sync_connection, "before_cursor_execute", count)
        await apply(conn)
        event.remove(conn.sync_connection, "before_cursor_execute", count)
        rows = (
            await conn.execute(
                select(payable_orders)
                .where(payable_orders.c.order_id.in_(order_ids))
                .order_by(payable_orders.c.order_id)
            )
        ).all()
        await transaction.rollback()
    # updated_at is the transaction's time: it cannot match between two transactions
    return {r.order_id: {k: v for k, v in r._asdict().items() if k != "updated_at"} for r in rows}, statements


async def seed_shipping(engine: AsyncEngine, tag: str) -> dict[str, str]:
    """Merchant a: heavy parcels go the fastest way, else the cheap line by default. Merchant b: France by its own
    method, else express by default."""
    ids = {name: f"{name}-{tag}" for name in ("cheap", "express", "france", "a", "b")}
    everywhere = {"first_weight_grams": 2000, "first_price": "4.00"}
    methods = [
        ("cheap", {"DE": everywhere, "FR": everywhere}, 10),
        ("express", {"DE": {**everywhere, "first_price": "19.00"}, "FR": {**everywhere, "first_price": "21.00"}}, 2),
        ("france", {"FR": everywhere}, 5),
    ]
    async with engine.begin() as conn:
        for name, rates, days in methods:
            await conn.execute(
                insert(shipping_methods).values(
                    id=ids[name],
                    name=name,
                    carrier=name,
                    currency="USD",
                    rates=rates,
                    delivery_days_min=days,
                    delivery_days_max=days + 3,
                    max_weight_grams=2000,
                    enabled=True,
                )
            )
        rules = [
            ("a", "heavy", "fastest", ["cheap", "express"], {"weight_min_grams": 1000}),
            ("b", "france", "method", ["france"], {"countries": ["FR"]}),
        ]
        for merchant, name, action, method_names, conditions in rules:
            await conn.execute(
                insert(shipping_rules).values(
                    id=f"rule-{merchant}-{tag}",
                    merchant_id=ids[merchant],
                    name=name,
                    priority=1,
                    enabled=True,
                    conditions=conditions,
                    action=action,
                    method_ids=[ids[m] for m in method_names],
                )
            )
        for merchant, default in (("a", "cheap"), ("b", "express")):
            await conn.execute(
                insert(merchant_settings).values(merchant_id=ids[merchant], default_shipping_method_id=ids[default])
            )
    return ids


async def seed_row(engine: AsyncEngine, merchant: str, order_id: str, status: str, reason: str | None = None) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(payable_orders).values(
                order_id=order_id,
                merchant_id=merchant,
                status=status,
                status_reason=reason,
                currency="USD",
                order=payable("#before").model_dump(mode="json"),
            )
        )


async def test_a_batch_of_ready_orders_ends_as_one_by_one(engine):
    tag = uuid.uuid4().hex[:8]
    ids = await seed_shipping(engine, tag)
    a, b = ids["a"], ids["b"]
    names = ("light", "heavy", "twice", "fr", "de", "paid", "paying", "failed", "revived")
    o = {name: f"{name}-{tag}" for name in names}
    await seed_row(engine, a, o["paid"], "paid")
    await seed_row(engine, b, o["paying"], "paying")
    await seed_row(engine, b, o["failed"], "pending", "payment failed: declined")
    await seed_row(engine, b, o["revived"], "unavailable", "the order is quoting")
    events = [
        ready(a, o["light"], payable("#light")),
        ready(a, o["twice"], payable("#twice-1")),
        ready(b, o["fr"], payable("#fr", country="FR")),
        ready(a, o["heavy"], payable("#heavy", grams=1200)),
        ready(a, o["paid"], payable("#paid-again")),
        ready(b, o["paying"], payable("#paying-again", country="FR")),  # skipped: no rules run on it either
        ready(b, o["failed"], payable("#failed-again", country="FR")),
        ready(b, o["de"], payable("#de")),
        ready(a, o["twice"], payable("#twice-2", grams=1500)),  # the later content must win
        ready(b, o["revived"], payable("#revived", country="FR")),
    ]

    expected, _ = await outcome(engine, list(o.values()), one_by_one(events))
    batched, statements = await outcome(engine, list(o.values()), in_runs(events))

    assert batched == expected
    rows = {name: batched[order_id] for name, order_id in o.items()}
    assert {name: (r["status"], r["order"]["order_name"], r["shipping_method_id"]) for name, r in rows.items()} == {
        "light": ("to_order", "#light", ids["cheap"]),
        "heavy": ("to_order", "#heavy", ids["express"]),
        "twice": ("to_order", "#twice-2", ids["express"]),
        "fr": ("to_order", "#fr", ids["france"]),
        "de": ("to_order", "#de", ids["express"]),
        "paid": ("paid", "#before", None),
        "paying": ("paying", "#before", None),
        "failed": ("to_order", "#failed-again", ids["france"]),
        "revived": ("to_order", "#revived", ids["france"]),
    }
    assert batched[o["revived"]]["status_reason"] is None
    assert batched[o["failed"]]["status_reason"] is None
    # the batch's statements do not grow with its orders: as many as for one order of each merchant
    _, two_orders = await outcome(engine, [], in_runs([events[0], events[2]]))
    assert statements == two_orders


async def test_status_changes_in_runs_between_ready_orders_end_as_one_by_one(engine):
    tag = uuid.uuid4().hex[:8]
    m = (await seed_shipping(engine, tag))["a"]
    o = {name: f"{name}-{tag}" for name in ("back", "edited", "twice_left", "paid", "stays", "new")}
    for name in ("back", "edited", "twice_left", "stays"):
        await seed_row(engine, m, o[name], "to_order")
    await seed_row(engine, m, o["paid"], "paid")
    events = [
        moved(m, o["back"], "to_order", "quoting"),
        moved(m, o["edited"], "to_order", "quoting"),
        moved(m, o["twice_left"], "to_order", "quoting"),
        moved(m, o["back"], "quoting", "to_order"),  # with no OrderReadyForCheckout after it: still unavailable
        moved(m, o["twice_left"], "quoting", "cancelled"),  # the first departure's reason stays
        moved(m, o["edited"], "quoting", "to_order"),
        ready(m, o["edited"], payable("#edited")),  # back in To Order with new content: payable again
        moved(m, o["paid"], "pending", "cancelled"),
        moved(m, o["stays"], "to_order", "pending"),
        moved(m, o["new"], None, "quoting"),
        moved(m, o["new"], "quoting", "to_order"),
        ready(m, o["new"], payable("#new")),
    ]

    expected, _ = await outcome(engine, list(o.values()), one_by_one(events))
    batched, _ = await outcome(engine, list(o.values()), in_runs(events))

    assert batched == expected
    rows = {name: batched[order_id] for name, order_id in o.items()}
    assert {name: (r["status"], r["status_reason"]) for name, r in rows.items()} == {
        "back": ("unavailable", "the order is quoting"),
        "edited": ("to_order", None),
        "twice_left": ("unavailable", "the order is quoting"),
        "paid": ("paid", None),
        "stays": ("to_order", None),
        "new": ("to_order", None),
    }
