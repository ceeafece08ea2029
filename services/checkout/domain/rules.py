"""Shipping rules: which method an order ships with, and why. Pure; the caller supplies every method's quote.

Rules run in priority order (lowest number first); every condition of a rule must hold; the first matching
enabled rule wins; when none matches the merchant's default method applies. A rule (or the default) whose
method cannot serve the order flags the order: it is never silently given another method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from services.checkout.domain.shipping import Parcel, Quote, Unavailable

Answer = Quote | Unavailable


@dataclass(frozen=True)
class Conditions:
    countries: frozenset[str] = frozenset()  # empty = any
    amount_min: Decimal | None = None  # the order's products + packaging cost
    amount_max: Decimal | None = None
    freight_min: Decimal | None = None  # the price of the method the action picks
    freight_max: Decimal | None = None
    store_ids: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()  # any line with one of these SKUs
    catalog_variant_ids: frozenset[str] = frozenset()  # any line of one of these catalog products
    weight_min_grams: int | None = None
    weight_max_grams: int | None = None


@dataclass(frozen=True)
class ShippingRule:
    id: str
    name: str
    priority: int
    action: Literal["method", "cheapest", "fastest"]
    method_ids: tuple[str, ...]  # one for "method", the candidates otherwise
    conditions: Conditions = field(default_factory=Conditions)
    enabled: bool = True


@dataclass(frozen=True)
class OrderFacts:
    parcel: Parcel
    amount: Decimal
    store_id: str
    skus: frozenset[str]
    catalog_variant_ids: frozenset[str]


@dataclass(frozen=True)
class Selection:
    """The outcome for one order: a method with its price, or a problem that flags the order."""

    method_id: str | None
    price: Decimal | None
    rule_id: str | None
    reason: str
    problem: str | None = None


def _within(value: Decimal | int, low: Decimal | int | None, high: Decimal | int | None, what: str) -> str | None:
    if (low is not None and value < low) or (high is not None and value > high):
        return None
    bounds = f"{'' if low is None else low}..{'' if high is None else high}"
    return f"{what} {value} in {bounds}"


def _order_conditions(c: Conditions, order: OrderFacts) -> list[str] | None:
    """Why each order condition holds, or None as soon as one does not."""
    reasons: list[str] = []
    if c.countries:
        if order.parcel.country not in c.countries:
            return None
        reasons.append(f"country {order.parcel.country} in {', '.join(sorted(c.countries))}")
    if c.amount_min is not None or c.amount_max is not None:
        if (why := _within(order.amount, c.amount_min, c.amount_max, "amount")) is None:
            return None
        reasons.append(why)
    if c.weight_min_grams is not None or c.weight_max_grams is not None:
        weight = order.parcel.weight_grams
        if (why := _within(weight, c.weight_min_grams, c.weight_max_grams, "weight (g)")) is None:
            return None
        reasons.append(why)
    if c.store_ids:
        if order.store_id not in c.store_ids:
            return None
        reasons.append(f"store {order.store_id}")
    if c.skus:
        if not (hit := order.skus & c.skus):
            return None
        reasons.append(f"SKU {', '.join(sorted(hit))}")
    if c.catalog_variant_ids:
        if not (hit := order.catalog_variant_ids & c.catalog_variant_ids):
            return None
        reasons.append(f"product {', '.join(sorted(hit))}")
    return reasons


def _pick(rule: ShippingRule, answers: dict[str, Answer]) -> Answer | str:
    """The action's method for this order, or why it has none."""
    candidates = [answers.get(m) or f"method {m} does not exist" for m in rule.method_ids]
    if rule.action == "method":
        return candidates[0]
    quotes = [a for a in candidates if isinstance(a, Quote)]
    if not quotes:
        why = [a if isinstance(a, str) else f"{a.method.name}: {a.reason}" for a in candidates]
        return f"none of the {rule.action} rule's methods can ship it ({'; '.join(why)})"
    if rule.action == "cheapest":
        return min(quotes, key=lambda q: (q.price, q.method.delivery_days_max))
    return min(quotes, key=lambda q: (q.method.delivery_days_max, q.method.delivery_days_min, q.price))


def _selection(picked: Answer | str, rule_id: str | None, reason: str) -> Selection:
    if isinstance(picked, Quote):
        return Selection(picked.method.id, picked.price, rule_id, f"{reason} -> {picked.method.name}")
    if isinstance(picked, Unavailable):
        problem = f"{picked.method.name} cannot ship this order: {picked.reason}"
        return Selection(picked.method.id, None, rule_id, reason, problem)
    return Selection(None, None, rule_id, reason, picked)


def select_method(
    rules: list[ShippingRule], order: OrderFacts, answers: dict[str, Answer], default_method_id: str | None
) -> Selection:
    """`answers` holds every known method's quote (or unavailability) for this order, by method id."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if not rule.enabled:
            continue
        reasons = _order_conditions(rule.conditions, order)
        if reasons is None:
            continue
        picked = _pick(rule, answers)
        c = rule.conditions
        if isinstance(picked, Quote) and (c.freight_min is not None or c.freight_max is not None):
            if (why := _within(picked.price, c.freight_min, c.freight_max, "freight")) is None:
                continue
            reasons.append(why)
        why = f"rule '{rule.name}' (priority {rule.priority}) matched: {'; '.join(reasons) or 'no conditions'}"
        return _selection(picked, rule.id, f"{why}; action {rule.action}")
    if default_method_id is None:
        return Selection(None, None, None, "no rule matched and no default method is set")
    picked = answers.get(default_method_id) or f"the default method {default_method_id} does not exist"
    return _selection(picked, None, "no rule matched: the merchant's default method")
