"""OrderSynced events applied as one batch (the consumer's fast path) leave the same rows and the same events out as
the same events applied one by one (its slow path: batches of one); a batch of new orders takes a few statements
whatever its size, the same statements."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import event, func, select

from services.orders import handlers
from services.orders.adapters import repository
from services.orders.adapters.tables import (
    order_count_changes,
    order_timeline,
    orders,
    outbox,
    private_products,
    product_connections,
)
from services.orders.consumers import HANDLERS
from services.orders.domain.order import Status
from shared.events import Address, OrderSynced, OrderSyncedPayload, StoreOrder, StoreOrderLine
from shared.money import Money

T0 = datetime(2026, 11, 1, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


def line(n: int, sku: str | None = None, variant: str | None = "v") -> StoreOrderLine:
    return StoreOrderLine(
        external_line_id=f"l{n}",
        external_product_id=f"p{n}",
        external_variant_id=variant and f"{variant}{n}",
        sku=sku,
        title=f"Product {n}",
        quantity=1,
        unit_price=Money.of("20", "USD"),
    )


def synced(merchant: str, order_id: str, lines: list[StoreOrderLine], at: datetime = T0) -> OrderSynced:
    return OrderSynced(
        merchant_id=merchant,
        order_id=order_id,
        payload=OrderSyncedPayload(
            order=StoreOrder(
                store_id=f"store-of-{merchant}",
                platform="shopify",
                external_order_id=order_id,
                order_name=f"#{order_id[-2:]}",
                currency="USD",
                total_price=Money.of("40", "USD"),
                financial_status="paid",
                shipping_address=Address(name="Ana", city="Porto", country_code="PT"),
                lines=lines,
                store_created_at=at,
                store_updated_at=at,
            )
        ),
    )


async def scenario(engine, tag: str, catalog: dict[str, dict]) -> tuple[OrderSynced, list[OrderSynced]]:
    """Merchant A connects by SKU; merchant B has product 1 connected and a box with every order, and its order b0
    exists before the batch. Returns the event that made b0 and the batch."""
    a, b = f"m-a-{tag}", f"m-b-{tag}"
    sku = catalog["auto"]["sku"]
    earlier = synced(b, f"{tag}-b0", [line(1)])
    async with engine.begin() as conn:
        await handlers.set_merchant_settings(conn, a, True)
        mug = {"external_product_id": "p1", "external_variant_id": "v1", "catalog_variant_id": catalog["mug"]["id"]}
        await handlers.connect_product(conn, b, {"store_id": f"store-of-{b}", **mug}, "test")
        box = await handlers.add_private_product(
            conn, b, {"kind": "packaging", "name": "box", "catalog_variant_id": catalog["box"]["id"]}
        )
        await handlers.add_packaging_rule(conn, b, {"store_id": f"store-of-{b}", "private_product_id": box["id"]})
        await handlers.on_orders_synced(conn, [earlier])
    a1 = synced(a, f"{tag}-a1", [line(3, sku), line(5, sku, variant=None)])  # connected by SKU: p3/v3 and all of p5
    batch = [
        a1,
        synced(b, f"{tag}-b1", [line(1)]),  # connected and boxed: To Order
        synced(a, f"{tag}-a2", [line(3, sku), line(5, sku), line(4)]),  # p3, p5 connected by a1; p4 is not
        synced(b, f"{tag}-b1", [line(1), line(2)], LATER),  # an update of b1: back to Quoting
        a1,  # a duplicate: not newer than what is held, so no effect
        synced(b, f"{tag}-b0", [line(2)], LATER),  # an update of the order from before
        synced(b, f"{tag}-b2", [line(1)]),
    ]
    return earlier, batch


async def stored(engine, tag: str, events: list[OrderSynced]) -> dict[str, list[str]]:
    """The rows of one run, its tag and the ids made for it replaced, so that two runs compare equal."""
    order_ids = {e.order_id for e in events}
    t, o, pc, pp = order_timeline, outbox, product_connections, private_products

    def normal(row: object) -> str:
        text = json.dumps(row, default=str, sort_keys=True).replace(tag, "TAG")
        for made_id, name in names.items():
            text = text.replace(made_id, name)
        return text

    def fresh(value: str) -> dict:  # without what each event out gets new
        return {k: v for k, v in json.loads(value).items() if k not in ("event_id", "occurred_at")}

    async with engine.connect() as conn:
        private = await conn.execute(select(pp.c.id, pp.c.name).where(pp.c.merchant_id.like(f"%-{tag}")))
        names = {r.id: f"private-{r.name}" for r in private} | {str(e.event_id): f"e{n}" for n, e in enumerate(events)}
        return {
            "orders": [
                normal({k: v for k, v in r._mapping.items() if k not in ("created_at", "updated_at")})
                for r in await conn.execute(select(orders).where(orders.c.id.in_(order_ids)).order_by(orders.c.id))
            ],
            "timeline": [
                normal([r.order_id, r.kind, r.detail, r.actor])
                for r in await conn.execute(select(t).where(t.c.order_id.in_(order_ids)).order_by(t.c.id))
            ],
            "counts": [  # the tabs' counts, not the change rows: a batch sums its changes per merchant and tab
                normal({s.value: n for s, n in (await repository.counts(conn, merchant)).items() if n})
                for merchant in (f"m-a-{tag}", f"m-b-{tag}")
            ],
            "outbox": [
                normal([r.topic, r.key, fresh(r.value)])
                for r in await conn.execute(select(o).where(o.c.key.in_(order_ids)).order_by(o.c.id))
            ],
            "connections": [
                normal([r.merchant_id, r.store_id, r.external_product_id, r.external_variant_id, r.catalog_variant_id])
                for r in await conn.execute(
                    select(pc)
                    .where(pc.c.merchant_id.like(f"%-{tag}"))
                    .order_by(pc.c.merchant_id, pc.c.external_product_id)
                )
            ],
        }


async def test_a_batch_gives_what_its_events_give_one_by_one(engine_for):
    engine = engine_for("orders")
    async with engine.begin() as conn:
        catalog = {
            name: await handlers.add_catalog_variant(
                conn,
                {"sku": f"{name}-{uuid.uuid4().hex[:8]}", "title": name, "unit_cost": Decimal("1.50")}
                | {"currency": "USD", "weight_grams": 100},
            )
            for name in ("mug", "box", "auto")
        }

    batched_tag, single_tag = f"x{uuid.uuid4().hex[:8]}", f"y{uuid.uuid4().hex[:8]}"
    earlier, batch = await scenario(engine, batched_tag, catalog)
    async with engine.begin() as conn:
        await handlers.on_orders_synced(conn, batch)
    single_earlier, one_by_one = await scenario(engine, single_tag, catalog)
    for synced_event in one_by_one:
        async with engine.begin() as conn:
            await HANDLERS["OrderSynced"](conn, synced_event)  # the consumer's slow path: a batch of one

    batched = await stored(engine, batched_tag, [earlier, *batch])
    assert batched == await stored(engine, single_tag, [single_earlier, *one_by_one])
    statuses = {json.loads(row)["id"]: json.loads(row)["status"] for row in batched["orders"]}
    assert statuses == {
        "TAG-a1": "to_order",
        "TAG-a2": "quoting",
        "TAG-b0": "quoting",
        "TAG-b1": "quoting",
        "TAG-b2": "to_order",
    }
    assert batched["counts"] == [
        json.dumps({"quoting": 1, "to_order": 1}),  # a2; a1
        json.dumps({"quoting": 2, "to_order": 1}),  # b0, b1; b2
    ]
    assert len(batched["connections"]) == 3  # B's own, and A's p3/v3 and p5 once, though two orders hold them
    assert len(batched["outbox"]) == 4 + 3  # b0, a1, b1, b2 reach To Order (ready); a2 and two updates: moved


async def test_a_batch_of_new_orders_takes_the_same_statements_as_one(engine_for):
    """The same statement texts too, each prepared once whatever the batch size (an IN or VALUES list of the rows
    would not be), products connected by SKU included."""
    engine = engine_for("orders")
    async with engine.begin() as conn:
        auto = await handlers.add_catalog_variant(
            conn,
            {"sku": f"auto-{uuid.uuid4().hex[:8]}", "title": "auto", "unit_cost": Decimal("1.50")}
            | {"currency": "USD", "weight_grams": 100},
        )
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    async def statements_for(n: int) -> tuple[list[str], int]:
        merchant = f"m-many-{uuid.uuid4().hex[:8]}"
        async with engine.begin() as conn:
            await handlers.set_merchant_settings(conn, merchant, True)
        statements.clear()
        async with engine.begin() as conn:
            batch = [synced(merchant, f"{merchant}-{i}", [line(i, auto["sku"])]) for i in range(n)]
            await handlers.on_orders_synced(conn, batch)
        ran = list(statements)
        async with engine.connect() as conn:
            c = order_count_changes
            count_rows = await conn.scalar(select(func.count()).where(c.c.merchant_id == merchant))
            assert await repository.counts(conn, merchant) == {s: n if s == Status.TO_ORDER else 0 for s in Status}
        return ran, count_rows

    (one, _), (fifty, count_rows) = await statements_for(1), await statements_for(50)
    assert one == fifty
    assert count_rows == 1  # the 50 orders' tab-count changes summed into one row
