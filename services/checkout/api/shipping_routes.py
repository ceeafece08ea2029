from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.checkout import shipping_handlers
from services.checkout.adapters import shipping_repo
from services.checkout.adapters.tables import (
    idempotency_keys,
    merchant_settings,
    shipping_methods,
    shipping_rules,
)
from services.checkout.api.shipping_schemas import (
    PreviewItem,
    PreviewRequest,
    PreviewResult,
    QuoteItem,
    RerunResult,
    SelectedShipping,
    ShippingMethodIn,
    ShippingMethodPage,
    ShippingMethodPublic,
    ShippingQuote,
    ShippingRuleIn,
    ShippingRulePage,
    ShippingRulePublic,
    ShippingSettings,
    UnavailableMethod,
)
from shared.auth import AnyUser, Merchant, Ops
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events import PayableOrderPayload
from shared.http import PROBLEM_RESPONSES, Cursor, Engine, Limit
from shared.idempotency import Idempotent
from shared.money import Money
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


# --- methods (ops) -----------------------------------------------------------------------------------------------


def _method_public(row) -> ShippingMethodPublic:
    return ShippingMethodPublic(
        id=row.id,
        name=row.name,
        carrier=row.carrier,
        currency=row.currency,
        rates=row.rates,
        delivery_days_min=row.delivery_days_min,
        delivery_days_max=row.delivery_days_max,
        max_weight_grams=row.max_weight_grams,
        enabled=row.enabled,
        destination_countries=sorted(row.rates),
        created_at=row.created_at,
    )


def _method_values(body: ShippingMethodIn) -> dict:
    return body.model_dump(mode="json", exclude_none=True)


async def _method_row(conn: AsyncConnection, method_id: str):
    row = (await conn.execute(select(shipping_methods).where(shipping_methods.c.id == method_id))).first()
    if row is None:
        raise NotFound(f"shipping method {method_id} not found")
    return row


@router.post("/shipping-methods", status_code=201, tags=["shipping"], summary="Add a shipping method (ops)")
async def create_method(body: ShippingMethodIn, _: Ops, engine: Engine, once: Idempotent) -> ShippingMethodPublic:
    async def action() -> ShippingMethodPublic:
        method_id = str(uuid.uuid4())
        await conn.execute(shipping_methods.insert().values(id=method_id, **_method_values(body)))
        return _method_public(await _method_row(conn, method_id))

    async with engine.begin() as conn:
        return await once.run(conn, idempotency_keys, "ops:create-shipping-method", action, status_code=201)


@router.get("/shipping-methods", tags=["shipping"], summary="Shipping methods")
async def list_methods(_: AnyUser, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> ShippingMethodPage:
    query = select(shipping_methods).order_by(shipping_methods.c.id).limit(limit + 1)
    if cursor:
        query = query.where(shipping_methods.c.id > decode_cursor(cursor, str)[0])
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return ShippingMethodPage(
        items=[_method_public(r) for r in rows[:limit]],
        next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None,
    )


@router.get("/shipping-methods/{method_id}", tags=["shipping"], summary="A shipping method")
async def get_method(method_id: str, _: AnyUser, engine: Engine) -> ShippingMethodPublic:
    async with engine.connect() as conn:
        return _method_public(await _method_row(conn, method_id))


@router.put("/shipping-methods/{method_id}", tags=["shipping"], summary="Replace a shipping method (ops)")
async def replace_method(method_id: str, body: ShippingMethodIn, _: Ops, engine: Engine) -> ShippingMethodPublic:
    async with engine.begin() as conn:
        await _method_row(conn, method_id)
        await conn.execute(
            update(shipping_methods).where(shipping_methods.c.id == method_id).values(**_method_values(body))
        )
        return _method_public(await _method_row(conn, method_id))


@router.delete(
    "/shipping-methods/{method_id}",
    status_code=204,
    tags=["shipping"],
    summary="Delete a shipping method no rule or default uses (ops); disable it otherwise",
)
async def delete_method(method_id: str, _: Ops, engine: Engine) -> Response:
    async with engine.begin() as conn:
        await _method_row(conn, method_id)
        used = (
            await conn.execute(
                select(func.count())
                .select_from(shipping_rules)
                .where(shipping_rules.c.method_ids.contains([method_id]))
            )
        ).scalar_one() + (
            await conn.execute(
                select(func.count())
                .select_from(merchant_settings)
                .where(merchant_settings.c.default_shipping_method_id == method_id)
            )
        ).scalar_one()
        if used:
            raise Conflict(f"shipping method {method_id} is used by {used} rules or defaults: disable it instead")
        await conn.execute(delete(shipping_methods).where(shipping_methods.c.id == method_id))
    return Response(status_code=204)


# --- quotes ------------------------------------------------------------------------------------------------------


@router.get("/shipping-quotes", tags=["shipping"], summary="Every shipping method that can ship an order, priced")
async def shipping_quote(order_id: str, user: Merchant, engine: Engine, explain: bool = False) -> ShippingQuote:
    async with engine.connect() as conn:
        row = await shipping_handlers.payable_order(conn, user.merchant_id, order_id)
        parcel, quotes, unavailable = await shipping_handlers.quote_order(conn, user.merchant_id, order_id)
    return ShippingQuote(
        order_id=order_id,
        country=parcel.country,
        weight_grams=parcel.weight_grams,
        items=[
            QuoteItem(
                method_id=q.method.id,
                name=q.method.name,
                carrier=q.method.carrier,
                price=Money.of(q.price, parcel.currency),
                delivery_days_min=q.method.delivery_days_min,
                delivery_days_max=q.method.delivery_days_max,
            )
            for q in quotes
        ],
        unavailable=[UnavailableMethod(method_id=u.method.id, name=u.method.name, reason=u.reason) for u in unavailable]
        if explain
        else None,
        selected=SelectedShipping(
            method_id=row.shipping_method_id,
            rule_id=row.shipping_rule_id,
            reason=row.shipping_reason,
            problem=row.shipping_problem,
        ),
    )


# --- rules (merchant) --------------------------------------------------------------------------------------------


async def _check_methods(conn: AsyncConnection, method_ids: list[str], field: str) -> None:
    known = set(
        (await conn.execute(select(shipping_methods.c.id).where(shipping_methods.c.id.in_(method_ids)))).scalars()
    )
    unknown = [m for m in method_ids if m not in known]
    if unknown:
        raise Unprocessable(f"unknown shipping methods: {', '.join(unknown)}", errors=[{"field": field}])


async def _rule_row(conn: AsyncConnection, merchant_id: str, rule_id: str):
    row = (
        await conn.execute(
            select(shipping_rules).where(shipping_rules.c.id == rule_id, shipping_rules.c.merchant_id == merchant_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"shipping rule {rule_id} not found")
    return row


def _rule_public(row) -> ShippingRulePublic:
    return ShippingRulePublic(
        id=row.id,
        name=row.name,
        priority=row.priority,
        enabled=row.enabled,
        conditions=row.conditions,
        action=row.action,
        method_ids=row.method_ids,
        created_at=row.created_at,
    )


@router.post("/shipping-rules", status_code=201, tags=["shipping rules"], summary="Add a shipping rule")
async def create_rule(body: ShippingRuleIn, user: Merchant, engine: Engine, once: Idempotent) -> ShippingRulePublic:
    async def action() -> ShippingRulePublic:
        await _check_methods(conn, body.method_ids, "method_ids")
        rule_id = str(uuid.uuid4())
        await conn.execute(
            shipping_rules.insert().values(id=rule_id, merchant_id=user.merchant_id, **body.model_dump(mode="json"))
        )
        return _rule_public(await _rule_row(conn, user.merchant_id, rule_id))

    async with engine.begin() as conn:
        return await once.run(
            conn, idempotency_keys, f"{user.merchant_id}:create-shipping-rule", action, status_code=201
        )


@router.get("/shipping-rules", tags=["shipping rules"], summary="The merchant's shipping rules in priority order")
async def list_rules(user: Merchant, engine: Engine, limit: Limit = 50, cursor: Cursor = None) -> ShippingRulePage:
    r = shipping_rules
    query = select(r).where(r.c.merchant_id == user.merchant_id).order_by(r.c.priority, r.c.id).limit(limit + 1)
    if cursor:
        query = query.where(tuple_(r.c.priority, r.c.id) > tuple_(*decode_cursor(cursor, int, str)))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    last = rows[limit - 1] if len(rows) > limit else None
    return ShippingRulePage(
        items=[_rule_public(row) for row in rows[:limit]],
        next_cursor=encode_cursor(last.priority, last.id) if last else None,
    )


@router.get("/shipping-rules/{rule_id}", tags=["shipping rules"], summary="A shipping rule")
async def get_rule(rule_id: str, user: Merchant, engine: Engine) -> ShippingRulePublic:
    async with engine.connect() as conn:
        return _rule_public(await _rule_row(conn, user.merchant_id, rule_id))


@router.put("/shipping-rules/{rule_id}", tags=["shipping rules"], summary="Replace a shipping rule")
async def replace_rule(rule_id: str, body: ShippingRuleIn, user: Merchant, engine: Engine) -> ShippingRulePublic:
    async with engine.begin() as conn:
        await _rule_row(conn, user.merchant_id, rule_id)
        await _check_methods(conn, body.method_ids, "method_ids")
        await conn.execute(
            update(shipping_rules).where(shipping_rules.c.id == rule_id).values(**body.model_dump(mode="json"))
        )
        return _rule_public(await _rule_row(conn, user.merchant_id, rule_id))


@router.delete("/shipping-rules/{rule_id}", status_code=204, tags=["shipping rules"], summary="Delete a rule")
async def delete_rule(rule_id: str, user: Merchant, engine: Engine) -> Response:
    async with engine.begin() as conn:
        await _rule_row(conn, user.merchant_id, rule_id)
        await conn.execute(delete(shipping_rules).where(shipping_rules.c.id == rule_id))
    return Response(status_code=204)


@router.get("/shipping-settings", tags=["shipping rules"], summary="The merchant's default shipping method")
async def get_shipping_settings(user: Merchant, engine: Engine) -> ShippingSettings:
    async with engine.connect() as conn:
        return ShippingSettings(default_method_id=await shipping_repo.default_method_id(conn, user.merchant_id))


@router.put("/shipping-settings", tags=["shipping rules"], summary="Set the default shipping method")
async def put_shipping_settings(body: ShippingSettings, user: Merchant, engine: Engine) -> ShippingSettings:
    async with engine.begin() as conn:
        if body.default_method_id is not None:
            await _check_methods(conn, [body.default_method_id], "default_method_id")
        statement = pg_insert(merchant_settings).values(
            merchant_id=user.merchant_id, default_shipping_method_id=body.default_method_id
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[merchant_settings.c.merchant_id],
                set_={"default_shipping_method_id": body.default_method_id},
            )
        )
    return body


@router.post(
    "/shipping-rules/preview",
    tags=["shipping rules"],
    summary="What the rules (saved, or drafts given here) would pick for orders; nothing is saved",
)
async def preview_rules(body: PreviewRequest, user: Merchant, engine: Engine) -> PreviewResult:
    async with engine.connect() as conn:
        shipping = await shipping_handlers.load(conn, user.merchant_id)
        if body.rules is not None:
            shipping = shipping_handlers.Shipping(
                shipping.methods,
                [
                    shipping_repo.rule_of({**rule.model_dump(mode="json"), "id": f"draft-{n}"})
                    for n, rule in enumerate(body.rules)
                ],
                body.default_method_id,
            )
        rows = [await shipping_handlers.payable_order(conn, user.merchant_id, o) for o in body.order_ids]
    names = {m.id: m.name for m in shipping.methods}
    items = []
    for row in rows:
        order = PayableOrderPayload.model_validate(row.order)
        selection = shipping.select(order)
        items.append(
            PreviewItem(
                order_id=row.order_id,
                order_name=order.order_name,
                method_id=selection.method_id,
                method_name=names.get(selection.method_id),
                price=Money.of(selection.price, order.currency) if selection.price is not None else None,
                rule_id=selection.rule_id,
                reason=selection.reason,
                problem=selection.problem,
            )
        )
    return PreviewResult(items=items)


@router.post("/shipping-rules/rerun", tags=["shipping rules"], summary="Apply the rules again to every To Order order")
async def rerun_rules(user: Merchant, engine: Engine) -> RerunResult:
    async with engine.begin() as conn:
        selections = await shipping_handlers.apply_rules(conn, user.merchant_id)
    return RerunResult(orders=len(selections), flagged=sum(1 for s in selections if s.problem))
