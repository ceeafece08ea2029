"""Shipping quotes and shipping rules: pure Decimal arithmetic and rule matching."""

from decimal import Decimal

import pytest

from services.checkout.domain.rules import Conditions, OrderFacts, ShippingRule, select_method
from services.checkout.domain.shipping import (
    Bracket,
    Parcel,
    Quote,
    RateTable,
    ShippingMethod,
    Unavailable,
    order_weight,
    quote,
    quote_all,
)
from shared.events import Address, PayableLine, PayableOrderPayload
from shared.money import Money

STEPPED = RateTable(
    first_weight_grams=500, first_price=Decimal("3.10"), step_weight_grams=100, step_price=Decimal("0.35")
)
BRACKETS = RateTable(brackets=(Bracket(1000, Decimal("9.99")), Bracket(250, Decimal("4.45"))))


def method(mid: str, price: str = "5.00", days: tuple[int, int] = (7, 12), **kw) -> ShippingMethod:
    return ShippingMethod(
        id=mid,
        name=f"Line {mid}",
        carrier="YunExpress",
        currency=kw.pop("currency", "USD"),
        rates=kw.pop("rates", {"DE": RateTable(first_weight_grams=2000, first_price=Decimal(price))}),
        delivery_days_min=days[0],
        delivery_days_max=days[1],
        max_weight_grams=kw.pop("max_weight_grams", 2000),
        **kw,
    )


@pytest.mark.parametrize(
    ("weight", "expected"),
    [(1, "3.10"), (500, "3.10"), (501, "3.45"), (600, "3.45"), (601, "3.80"), (1000, "4.85")],
)
def test_first_weight_then_started_steps(weight, expected):
    assert STEPPED.price(weight) == Decimal(expected)


def test_brackets_take_the_first_that_fits_whatever_their_order():
    assert BRACKETS.price(250) == Decimal("4.45")
    assert BRACKETS.price(251) == Decimal("9.99")
    assert BRACKETS.price(1001) is None


def test_order_weight_counts_lines_and_packaging():
    def line(grams: int, qty: int) -> PayableLine:
        return PayableLine(
            catalog_variant_id="v", sku="s", quantity=qty, unit_cost=Money.of("1", "USD"), unit_weight_grams=grams
        )

    order = PayableOrderPayload(
        store_id="s",
        order_name="#1",
        currency="USD",
        lines=[line(300, 2), line(45, 1)],
        packaging=[line(20, 1)],
        shipping_address=Address(country_code="DE"),
    )
    assert order_weight(order) == 665


def test_unavailable_methods_say_why():
    parcel = Parcel("DE", 2500, "USD")
    assert "over the maximum" in quote(method("a", max_weight_grams=2000), parcel).reason
    assert "does not ship to FR" in quote(method("a"), Parcel("FR", 100, "USD")).reason
    assert "disabled" in quote(method("a", enabled=False), Parcel("DE", 100, "USD")).reason
    assert "priced in EUR" in quote(method("a", currency="EUR"), Parcel("DE", 100, "USD")).reason
    late = quote(method("b", rates={"DE": BRACKETS}, max_weight_grams=5000), Parcel("DE", 1200, "USD"))
    assert isinstance(late, Unavailable) and "last bracket" in late.reason


def test_quote_all_lists_available_methods_cheapest_first():
    quotes, unavailable = quote_all(
        [method("a", "7.00"), method("b", "3.00"), method("c", enabled=False)], Parcel("DE", 100, "USD")
    )
    assert [(q.method.id, q.price) for q in quotes] == [("b", Decimal("3.00")), ("a", Decimal("7.00"))]
    assert [u.method.id for u in unavailable] == ["c"]


# --- rules -------------------------------------------------------------------------------------------------------

CHEAP, FAST, FR_ONLY = (
    method("cheap", "3.00", (10, 20)),
    method("fast", "9.00", (2, 4)),
    method("fr", rates={"FR": STEPPED}),
)
METHODS = [CHEAP, FAST, FR_ONLY]


def facts(country="DE", amount="20.00", weight=300, store="s1", skus=("SKU-1",), variants=("v1",)) -> OrderFacts:
    return OrderFacts(Parcel(country, weight, "USD"), Decimal(amount), store, frozenset(skus), frozenset(variants))


def answers(order: OrderFacts) -> dict:
    return {m.id: quote(m, order.parcel) for m in METHODS}


def pick(rules, order=None, default=None):
    order = order or facts()
    return select_method(rules, order, answers(order), default)


def rule(rid="r1", priority=1, action="method", methods=("fast",), enabled=True, **conditions) -> ShippingRule:
    return ShippingRule(rid, f"rule {rid}", priority, action, tuple(methods), Conditions(**conditions), enabled)


@pytest.mark.parametrize(
    ("conditions", "order", "matches"),
    [
        ({"countries": frozenset({"DE", "AT"})}, facts(), True),
        ({"countries": frozenset({"FR"})}, facts(), False),
        ({"amount_min": Decimal("20.00"), "amount_max": Decimal("50")}, facts(amount="20.00"), True),
        ({"amount_min": Decimal("20.01")}, facts(amount="20.00"), False),
        ({"amount_max": Decimal("19.99")}, facts(amount="20.00"), False),
        ({"freight_min": Decimal("9.00"), "freight_max": Decimal("9.00")}, facts(), True),  # fast costs 9.00
        ({"freight_max": Decimal("8.99")}, facts(), False),
        ({"store_ids": frozenset({"s1"})}, facts(), True),
        ({"store_ids": frozenset({"s2"})}, facts(), False),
        ({"skus": frozenset({"SKU-1", "X"})}, facts(), True),
        ({"skus": frozenset({"X"})}, facts(), False),
        ({"catalog_variant_ids": frozenset({"v1"})}, facts(), True),
        ({"catalog_variant_ids": frozenset({"v9"})}, facts(), False),
        ({"weight_min_grams": 300, "weight_max_grams": 300}, facts(weight=300), True),
        ({"weight_max_grams": 299}, facts(weight=300), False),
        ({"countries": frozenset({"DE"}), "skus": frozenset({"X"})}, facts(), False),  # all must hold
    ],
)
def test_each_condition(conditions, order, matches):
    selection = pick([rule(**conditions)], order, default="cheap")
    assert (selection.rule_id == "r1") is matches
    assert selection.method_id == ("fast" if matches else "cheap")
    if matches:
        assert "rule 'rule r1' (priority 1) matched" in selection.reason


def test_priority_order_and_first_match_wins_and_disabled_rules_are_skipped():
    rules = [
        rule("late", priority=5, methods=("cheap",)),
        rule("early", priority=1, methods=("fast",)),
        rule("off", priority=0, methods=("cheap",), enabled=False),
    ]
    assert pick(rules).rule_id == "early"


def test_cheapest_and_fastest_among_a_list_skip_methods_that_cannot_ship():
    assert pick([rule(action="cheapest", methods=("fast", "cheap", "fr"))]).method_id == "cheap"
    selection = pick([rule(action="fastest", methods=("cheap", "fast", "fr"))])
    assert (selection.method_id, selection.price) == ("fast", Decimal("9.00"))


def test_no_match_falls_back_to_the_default_or_to_nothing():
    no_match = [rule(countries=frozenset({"US"}))]
    default = pick(no_match, default="cheap")
    assert (default.method_id, default.rule_id, default.problem) == ("cheap", None, None)
    assert "default" in default.reason
    nothing = pick(no_match)
    assert nothing.method_id is None and nothing.problem is None and "no default" in nothing.reason


def test_an_unavailable_method_flags_the_order_instead_of_choosing_another():
    flagged = pick([rule(methods=("fr",)), rule("r2", priority=2, methods=("cheap",))], default="cheap")
    assert (flagged.method_id, flagged.rule_id, flagged.price) == ("fr", "r1", None)
    assert "does not ship to DE" in flagged.problem
    none_fit = pick([rule(action="cheapest", methods=("fr",))])
    assert none_fit.method_id is None and "none of the cheapest rule's methods" in none_fit.problem
    bad_default = pick([], default="fr")
    assert bad_default.problem and bad_default.method_id == "fr"


def test_selected_quote_is_decimal_exact():
    selection = pick([rule(methods=("fr",))], facts(country="FR", weight=601))
    assert selection.price == Decimal("3.80") and isinstance(quote(FR_ONLY, Parcel("FR", 601, "USD")), Quote)
