from decimal import Decimal

import pytest

from services.checkout.domain import ledger
from services.checkout.domain.pricing import price
from shared.events import Address, PayableLine, PayableOrderPayload
from shared.money import Money


def test_a_transfer_balances():
    postings = ledger.transfer("a", "b", Decimal("12.30"))
    assert sum(p.amount for p in postings) == 0


@pytest.mark.parametrize("amount", [Decimal(0), Decimal("-1")])
def test_a_transfer_must_be_positive(amount):
    with pytest.raises(ValueError):
        ledger.transfer("a", "b", amount)


def test_spending_beyond_balance_and_credit_names_the_shortfall():
    ledger.check_can_spend(Decimal("10"), Decimal("5"), Decimal("15"), "USD")
    with pytest.raises(ledger.InsufficientBalance) as error:
        ledger.check_can_spend(Decimal("10"), Decimal("5"), Decimal("15.01"), "USD")
    assert error.value.shortfall == Decimal("0.01")


def test_the_cost_breakdown_is_decimal_exact():
    def line(cost: str, qty: int) -> PayableLine:
        return PayableLine(
            catalog_variant_id="v", sku="s", quantity=qty, unit_cost=Money.of(cost, "USD"), unit_weight_grams=100
        )

    order = PayableOrderPayload(
        store_id="s",
        order_name="#1",
        currency="USD",
        lines=[line("0.10", 3), line("0.20", 1)],
        packaging=[line("0.35", 1)],
        shipping_address=Address(),
    )
    costs = price(order, shipping=Decimal("3.05"))
    assert (costs.products, costs.packaging, costs.total) == (Decimal("0.50"), Decimal("0.35"), Decimal("3.90"))
