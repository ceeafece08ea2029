"""Loads and saves the order aggregate; rows in, domain objects out."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cache

from sqlalchemy import (
    and_,
    any_,
    func,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import Select, TableValuedAlias

from services.orders.adapters.tables import (
    after_sales_cases,
    catalog_variants,
    merchant_settings,
    order_count_changes,
    order_counts,
    order_timeline,
    orders,
    packaging_rules,
    private_products,
    product_connections,
)
from services.orders.domain.order import (
    AfterSalesCase,
    CaseKind,
    CaseState,
    Connection,
    Order,
    OrderLine,
    PackagingItem,
    Shipment,
    Status,
)
from shared.db import insert_records, text_array
from shared.events import Address, ShippingChoice, StoreOrderLine
from shared.money import Money


class StaleOrder(Exception):
    """Someone else saved the order since it was loaded."""


def _line_to_json(line: OrderLine) -> dict:
    c = line.connection
    return {
        "store": line.store.model_dump(mode="json"),
        "connection": None
        if c is None
        else {
            "catalog_variant_id": c.catalog_variant_id,
            "sku": c.sku,
            "title": c.title,
            "unit_cost": str(c.unit_cost.amount),
            "currency": c.unit_cost.currency,
            "unit_weight_grams": c.unit_weight_grams,
            "quantity_ratio": c.quantity_ratio,
        },
    }


def _line_from_json(data: dict) -> OrderLine:
    c = data["connection"]
    return OrderLine(
        store=StoreOrderLine.model_validate(data["store"]),
        connection=None
        if c is None
        else Connection(
            catalog_variant_id=c["catalog_variant_id"],
            sku=c["sku"],
            title=c["title"],
            unit_cost=Money.of(c["unit_cost"], c["currency"]),
            unit_weight_grams=c["unit_weight_grams"],
            quantity_ratio=c["quantity_ratio"],
        ),
    )


def _shipment_to_json(s: Shipment | None) -> dict | None:
    if s is None:
        return None
    return {
        "shipment_id": s.shipment_id,
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_url": s.tracking_url,
        "shipped_at": s.shipped_at.isoformat(),
    }


def _shipment_from_json(d: dict | None) -> Shipment | None:
    if d is None:
        return None
    return Shipment(**{**d, "shipped_at": datetime.fromisoformat(d["shipped_at"])})


def _packaging_to_json(p: PackagingItem) -> dict:
    # vars, not dataclasses.asdict: that deep-copies the Money, only to replace it
    return {**vars(p), "unit_cost": str(p.unit_cost.amount), "currency": p.unit_cost.currency}


def _packaging_from_json(d: dict) -> PackagingItem:
    d = dict(d)
    currency = d.pop("currency")
    return PackagingItem(**{**d, "unit_cost": Money.of(d["unit_cost"], currency)})


def _case_from_row(r) -> AfterSalesCase:
    return AfterSalesCase(
        id=r.id,
        kind=CaseKind(r.kind),
        reason=r.reason,
        external_line_ids=list(r.external_line_ids),
        requested_by=r.requested_by,
        amount=None if r.amount is None else Money.of(r.amount, r.currency),
        state=CaseState(r.state),
        rejection_reason=r.rejection_reason,
        failure_reason=r.failure_reason,
        shipment=_shipment_from_json(r.shipment),
    )


def _row_to_order(row, cases: list[AfterSalesCase]) -> Order:
    return Order(
        id=row.id,
        merchant_id=row.merchant_id,
        store_id=row.store_id,
        external_order_id=row.external_order_id,
        order_name=row.order_name,
        currency=row.currency,
        total_price=Money.of(row.total_price, row.currency),
        shipping_address=Address.model_validate(row.shipping_address),
        lines=[_line_from_json(x) for x in row.lines],
        store_updated_at=row.store_updated_at,
        customer_email=row.customer_email,
        customer_locale=row.customer_locale,
        store_name=row.store_name,
        customer_notified_by_store=row.customer_notified_by_store,
        status=Status(row.status),
        status_reason=row.status_reason,
        resume_status=None if row.resume_status is None else Status(row.resume_status),
        paid_amount=None if row.paid_amount is None else Money.of(row.paid_amount, row.paid_currency),
        shipping=None if row.shipping is None else ShippingChoice.model_validate(row.shipping),
        shipment=_shipment_from_json(row.shipment),
        early_shipment=_shipment_from_json(row.early_shipment),
        packaging=[_packaging_from_json(x) for x in row.packaging],
        cases=cases,
        version=row.version,
        flags=list(row.flags),
    )


def _values(order: Order) -> dict:
    return {
        "merchant_id": order.merchant_id,
        "store_id": order.store_id,
        "external_order_id": order.external_order_id,
        "order_name": order.order_name,
        "status": order.status.value,
        "status_reason": order.status_reason,
        "resume_status": None if order.resume_status is None else order.resume_status.value,
        "currency": order.currency,
        "total_price": order.total_price.amount,
        "paid_amount": None if order.paid_amount is None else order.paid_amount.amount,
        "paid_currency": None if order.paid_amount is None else order.paid_amount.currency,
        "customer_email": order.customer_email,
        "customer_locale": order.customer_locale,
        "customer_name": order.shipping_address.name,
        "store_name": order.store_name,
        "customer_notified_by_store": order.customer_notified_by_store,
        "shipping_address": order.shipping_address.model_dump(mode="json"),
        "country_code": order.shipping_address.country_code,
        "lines": [_line_to_json(line) for line in order.lines],
        "flags": order.flags,
        "packaging": [_packaging_to_json(p) for p in order.packaging],
        "shipping": None if order.shipping is None else order.shipping.model_dump(mode="json"),
        "shipment": _shipment_to_json(order.shipment),
        "early_shipment": _shipment_to_json(order.early_shipment),
        "store_updated_at": order.store_updated_at,
    }


async def _cases(conn: AsyncConnection, order_id: str) -> list[AfterSalesCase]:
    c = after_sales_cases
    rows = await conn.execute(select(c).where(c.c.order_id == order_id).order_by(c.c.created_at, c.c.id))
    return [_case_from_row(r) for r in rows]


async def get_for_update(conn: AsyncConnection, order_id: str) -> Order | None:
    row = (await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())).first()
    return None if row is None else _row_to_order(row, await _cases(conn, order_id))


async def get(conn: AsyncConnection, merchant_id: str, order_id: str) -> Order | None:
    row = (
        await conn.execute(select(orders).where(orders.c.id == order_id, orders.c.merchant_id == merchant_id))
    ).first()
    return None if row is None else _row_to_order(row, await _cases(conn, order_id))


# The statements of the batch path are built once, their values given as parameters: SQLAlchemy memoizes a
# statement object's cache key, which it would otherwise compute again on every execution (about half of the
# Python time of running a statement).


def _table(*columns: str) -> TableValuedAlias:
    """Rows of text as a table to join, one text[] parameter per column, named after it (see `_columns`)."""
    return func.unnest(*map(text_array, columns)).table_valued(*columns).render_derived()


def _columns(rows: Iterable[tuple[str, ...]], *columns: str) -> dict[str, list[str]]:
    """The parameters of `_table(*columns)` for these rows."""
    return dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True))


_LOCK_EXISTING = (
    select(orders.c.id).where(orders.c.id == any_(text_array("ids"))).order_by(orders.c.id).with_for_update()
)


async def lock_existing(conn: AsyncConnection, order_ids: Iterable[str]) -> set[str]:
    """Which of these orders exist, locked for the rest of the transaction (in id order, like reevaluate_orders)."""
    return set(await conn.scalars(_LOCK_EXISTING, {"ids": list(order_ids)}))


async def add(conn: AsyncConnection, added: list[Order]) -> None:
    """Insert new orders, their tab-count changes and their timelines with one statement, however many orders: it
    runs once with the rows of each table as one JSON parameter (an executemany runs once per row; a VALUES list
    would be compiled anew for every batch size)."""
    rows = [{"id": order.id, **_values(order)} for order in added]
    await conn.execute(
        _insert_new(*rows[0]),
        {
            "orders": rows,
            "counts": _count_rows([(order.merchant_id, None, order.status) for order in added]),
            "timeline": _timeline_rows(added),
        },
    )
    await _write_cases(conn, added)


@cache
def _insert_new(*order_columns: str) -> Insert:
    """The orders' INSERT, with the count changes' and the timeline's as parts (CTEs) of the same statement: one
    execution, not three. The timeline's foreign key is checked at the end of the statement, the orders in."""
    counts = insert_records(order_count_changes, *_COUNT_COLUMNS, name="counts").cte("counts")
    timeline = insert_records(order_timeline, *_TIMELINE_COLUMNS, name="timeline").cte("timeline")
    return insert_records(orders, *order_columns, name="orders").add_cte(counts, timeline)


async def save(conn: AsyncConnection, order: Order) -> None:
    result = await conn.execute(
        update(orders)
        .where(orders.c.id == order.id, orders.c.version == order.version)
        .values(**_values(order), version=order.version + 1, updated_at=func.now())
    )
    if result.rowcount != 1:
        raise StaleOrder(order.id)
    order.version += 1
    if order.status_changes:
        await _count_moves(conn, [(order.merchant_id, order.status_changes[0][0], order.status)])
    await _write_cases(conn, [order])
    await _write_timeline(conn, [order])


CountMove = tuple[str, Status | None, Status]
"""An order of a merchant moved from one tab (None: it is new) to another."""


_COUNT_COLUMNS = ("merchant_id", "status", "delta")


async def _count_moves(conn: AsyncConnection, moves: list[CountMove]) -> None:
    """Record the tab-count changes in this transaction, as insert-only rows (see order_count_changes)."""
    if rows := _count_rows(moves):
        await conn.execute(insert_records(order_count_changes, *_COUNT_COLUMNS), {"records": rows})


def _count_rows(moves: list[CountMove]) -> list[dict]:
    """Counts and the fold only add deltas up, so the moves are summed per merchant and tab: 100 new orders, one
    row."""
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for merchant_id, before, after in moves:
        if before != after:
            deltas[(merchant_id, after.value)] += 1
            if before is not None:
                deltas[(merchant_id, before.value)] -= 1
    return [{"merchant_id": m, "status": s, "delta": d} for (m, s), d in deltas.items() if d]


async def counts(conn: AsyncConnection, merchant_id: str) -> dict[Status, int]:
    """The folded counters plus the changes not folded yet, read in one snapshot."""
    c, d = order_counts, order_count_changes
    both = union_all(
        select(c.c.status, c.c.count.label("n")).where(c.c.merchant_id == merchant_id),
        select(d.c.status, d.c.delta.label("n")).where(d.c.merchant_id == merchant_id),
    ).subquery()
    rows = await conn.execute(select(both.c.status, func.sum(both.c.n)).group_by(both.c.status))
    found = {status: int(n) for status, n in rows}
    return {s: found.get(s.value, 0) for s in Status}


async def fold_count_changes(conn: AsyncConnection, limit: int = 10_000) -> int:
    """Move a batch of count changes into order_counts; returns how many were folded. Instances share the work
    (SKIP LOCKED) and touch counter rows in key order, so two folders cannot deadlock."""
    folded = await conn.scalar(
        text(
            f"""WITH folded AS (
                DELETE FROM {order_count_changes.fullname} WHERE id IN (
                    SELECT id FROM {order_count_changes.fullname} ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
                RETURNING merchant_id, status, delta
            ), totals AS (
                INSERT INTO {order_counts.fullname} AS c (merchant_id, status, count)
                SELECT merchant_id, status, sum(delta) FROM folded GROUP BY 1, 2 ORDER BY 1, 2
                ON CONFLICT (merchant_id, status) DO UPDATE SET count = c.count + EXCLUDED.count
            )
            SELECT count(*) FROM folded"""  # noqa: S608 - our own table names
        ),
        {"limit": limit},
    )
    return int(folded or 0)


async def _write_cases(conn: AsyncConnection, written: list[Order]) -> None:
    rows = [
        {
            "id": case.id,
            "order_id": order.id,
            "merchant_id": order.merchant_id,
            "kind": case.kind.value,
            "state": case.state.value,
            "reason": case.reason,
            "external_line_ids": case.external_line_ids,
            "amount": None if case.amount is None else case.amount.amount,
            "currency": None if case.amount is None else case.amount.currency,
            "requested_by": case.requested_by,
            "rejection_reason": case.rejection_reason,
            "failure_reason": case.failure_reason,
            "shipment": _shipment_to_json(case.shipment),
        }
        for order in written
        for case in order.cases
    ]
    if rows:
        await conn.execute(_upsert_cases(*rows[0]), {"records": rows})


@cache
def _upsert_cases(*columns: str) -> Insert:
    c = after_sales_cases
    statement = insert_records(c, *columns)
    changing = ("state", "rejection_reason", "failure_reason", "shipment")
    return statement.on_conflict_do_update(
        index_elements=[c.c.id],
        set_={**{k: statement.excluded[k] for k in changing}, "updated_at": func.now()},
        where=tuple_(*(c.c[k] for k in changing)).is_distinct_from(tuple_(*(statement.excluded[k] for k in changing))),
    )


_TIMELINE_COLUMNS = ("order_id", "kind", "detail", "actor")


async def _write_timeline(conn: AsyncConnection, written: list[Order]) -> None:
    if rows := _timeline_rows(written):
        await conn.execute(insert_records(order_timeline, *_TIMELINE_COLUMNS), {"records": rows})


def _timeline_rows(written: list[Order]) -> list[dict]:
    # jsonb_populate_recordset yields rows in array order: the ids follow the orders' order, as one by one
    return [
        {"order_id": order.id, "kind": c.kind, "detail": c.detail, "actor": c.actor}
        for order in written
        for c in order.changes
    ]


@cache
def _packaging_rules() -> Select:
    pr, pp, cv = packaging_rules, private_products, catalog_variants
    wanted = _table("merchant_id", "store_id")
    return (
        select(pr.c.merchant_id, pr.c.store_id, pr.c.external_product_id, pr.c.quantity)
        .add_columns(pp.c.id, pp.c.name, pp.c.kind, cv.c.id.label("variant_id"), cv.c.sku)
        .add_columns(cv.c.unit_cost, cv.c.currency, cv.c.weight_grams)
        .select_from(
            pr.join(pp, pp.c.id == pr.c.private_product_id)
            .join(cv, cv.c.id == pp.c.catalog_variant_id)
            .join(wanted, and_(pr.c.merchant_id == wanted.c.merchant_id, pr.c.store_id == wanted.c.store_id))
        )
        .where(pr.c.enabled, pp.c.status == "active")
        .order_by(pp.c.id)
    )


PackagingRule = tuple[str | None, PackagingItem]
"""A rule's store product (None: every order of the store) and the item it adds."""


async def packaging_for(conn: AsyncConnection, for_orders: list[Order]) -> list[list[PackagingItem]]:
    """Each order's packaging, from one query: the merchant's rules for the order's store as a whole and for one of
    its products, quantities of one private product added up."""
    wanted = {(order.merchant_id, order.store_id) for order in for_orders}
    rows = await conn.execute(_packaging_rules(), _columns(wanted, "merchant_id", "store_id"))
    rules: dict[tuple[str, str], list[PackagingRule]] = defaultdict(list)
    for r in rows:  # each rule's item made once for the batch, not once per order (items are immutable)
        item = PackagingItem(
            private_product_id=r.id,
            name=r.name,
            kind=r.kind,
            catalog_variant_id=r.variant_id,
            sku=r.sku,
            unit_cost=Money.of(r.unit_cost, r.currency),
            unit_weight_grams=r.weight_grams,
            quantity=r.quantity,
        )
        rules[(r.merchant_id, r.store_id)].append((r.external_product_id, item))
    return [_packaging(order, rules[(order.merchant_id, order.store_id)]) for order in for_orders]


def _packaging(order: Order, rules: list[PackagingRule]) -> list[PackagingItem]:
    products = {line.store.external_product_id for line in order.lines if line.store.external_product_id}
    items: dict[str, PackagingItem] = {}
    for product, item in rules:
        if product is not None and product not in products:
            continue  # a rule for a product this order does not hold
        before = items.get(item.private_product_id)
        items[item.private_product_id] = (
            item if before is None else replace(item, quantity=item.quantity + before.quantity)
        )
    return list(items.values())


ConnectionKey = tuple[str, str, str, str]
"""(merchant, store, external product id, external variant id), with "" for an id the store does not give."""


def _key(order: Order, line: StoreOrderLine, *, any_variant: bool = False) -> ConnectionKey:
    variant = "" if any_variant else line.external_variant_id or ""
    return order.merchant_id, order.store_id, line.external_product_id or "", variant


def _line_keys(order: Order, line: StoreOrderLine) -> tuple[ConnectionKey, ConnectionKey]:
    """The keys that can connect a line: its own, and its product's for every variant."""
    return _key(order, line), _key(order, line, any_variant=True)


@dataclass(frozen=True)
class Connections:
    """Product connections of store lines, by key. A key connected to a catalog variant that is not active maps to
    None: it is taken (a new connection of it would conflict), yet it connects nothing."""

    by_key: dict[ConnectionKey, Connection | None]

    def of(self, order: Order, line: StoreOrderLine) -> Connection | None:
        own, whole_product = _line_keys(order, line)  # a connection without a variant covers all the product's
        return self.by_key.get(own) or self.by_key.get(whole_product)

    def for_order(self, order: Order) -> dict[tuple[str | None, str | None], Connection]:
        """The order's connected store products, as Order.apply_connections takes them."""
        found = ((line.store, self.of(order, line.store)) for line in order.lines)
        return {(store.external_product_id, store.external_variant_id): c for store, c in found if c is not None}


_CONNECTION_KEYS = ("merchant_id", "store_id", "product_id", "variant_id")


@cache
def _connections() -> Select:
    pc, cv = product_connections, catalog_variants
    wanted = _table(*_CONNECTION_KEYS)
    return (
        select(pc.c.merchant_id, pc.c.store_id, pc.c.external_product_id, pc.c.external_variant_id, pc.c.quantity_ratio)
        .add_columns(cv)
        .select_from(
            pc.join(cv, cv.c.id == pc.c.catalog_variant_id).join(
                wanted,
                and_(
                    pc.c.merchant_id == wanted.c.merchant_id,
                    pc.c.store_id == wanted.c.store_id,
                    pc.c.external_product_id == wanted.c.product_id,
                    pc.c.external_variant_id == wanted.c.variant_id,
                ),
            )
        )
    )


async def load_connections(conn: AsyncConnection, for_orders: list[Order]) -> Connections:
    """The catalog connections of these orders' store lines, from one query."""
    keys = {key for order in for_orders for line in order.lines for key in _line_keys(order, line.store)}
    if not keys:
        return Connections({})
    rows = await conn.execute(_connections(), _columns(keys, *_CONNECTION_KEYS))
    return Connections(
        {
            (r.merchant_id, r.store_id, r.external_product_id, r.external_variant_id): None
            if r.status != "active"
            else Connection(
                catalog_variant_id=r.id,
                sku=r.sku,
                title=r.title,
                unit_cost=Money.of(Decimal(r.unit_cost), r.currency),
                unit_weight_grams=r.weight_grams,
                quantity_ratio=r.quantity_ratio,
            )
            for r in rows
        }
    )


_AUTO_CONNECTING = select(merchant_settings.c.merchant_id).where(
    merchant_settings.c.merchant_id == any_(text_array("merchants")), merchant_settings.c.auto_connect_by_sku
)
_ACTIVE_VARIANTS = select(catalog_variants.c.sku, catalog_variants.c.id).where(
    catalog_variants.c.sku == any_(text_array("skus")), catalog_variants.c.status == "active"
)


_CONNECT = insert_records(
    product_connections,
    "id",
    "merchant_id",
    "store_id",
    "external_product_id",
    "external_variant_id",
    "catalog_variant_id",
).on_conflict_do_nothing()


async def auto_connect_by_sku(conn: AsyncConnection, for_orders: list[Order], connections: Connections) -> bool:
    """For merchants with the auto-connect setting on, connect the orders' unconnected store lines whose SKU is an
    active catalog SKU. The orders are taken in turn, as one by one: a product connected for one order is connected
    for the orders after it. Returns whether a connection was made (`connections` does not show it yet)."""

    def unconnected(order: Order) -> list[StoreOrderLine]:
        return [
            line.store
            for line in order.lines
            if line.store.sku and line.store.external_product_id and connections.of(order, line.store) is None
        ]

    missing = [(order, lines) for order in for_orders if (lines := unconnected(order))]
    if not missing:
        return False
    merchants = list({order.merchant_id for order, _ in missing})
    enabled = set(await conn.scalars(_AUTO_CONNECTING, {"merchants": merchants}))
    missing = [(order, lines) for order, lines in missing if order.merchant_id in enabled]
    if not missing:
        return False
    skus = list({line.sku for _, lines in missing for line in lines})
    variants: dict[str, str] = dict((await conn.execute(_ACTIVE_VARIANTS, {"skus": skus})).all())
    made: dict[ConnectionKey, str] = {}
    for order, lines in missing:
        made |= {  # within one order the last line of a product wins, as it always did
            _key(order, line): variants[line.sku]
            for line in lines
            if line.sku in variants
            and _key(order, line) not in connections.by_key  # taken: the insert would do nothing
            and not made.keys() & set(_line_keys(order, line))  # an earlier order connected it
        }
    if not made:
        return False
    rows = [
        {
            "id": str(uuid.uuid4()),
            "merchant_id": merchant_id,
            "store_id": store_id,
            "external_product_id": product,
            "external_variant_id": variant,
            "catalog_variant_id": variant_id,
        }
        for (merchant_id, store_id, product, variant), variant_id in sorted(made.items())  # lock order
    ]  # inserted in array order, as jsonb_populate_recordset yields them
    await conn.execute(_CONNECT, {"records": rows})
    return True
