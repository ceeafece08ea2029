"""The cost of an order to the merchant, snapshotted at checkout."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.events import PayableLine, PayableOrderPayload
from shared.money import CENT


@dataclass(frozen=True)
class CostBreakdown:
    products: Decimal
    packaging: Decimal
    shipping: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.products + self.packaging + self.shipping + self.fees

    def as_dict(self) -> dict[str, str]:
        return {
            k: str(v)
            for k, v in {
                "products": self.products,
                "packaging": self.packaging,
                "shipping": self.shipping,
                "fees": self.fees,
                "total": self.total,
            }.items()
        }


def _sum(lines: list[PayableLine]) -> Decimal:
    return sum((line.unit_cost.amount * line.quantity for line in lines), Decimal(0)).quantize(CENT)


def price(order: PayableOrderPayload, shipping: Decimal = Decimal(0), fees: Decimal = Decimal(0)) -> CostBreakdown:
    return CostBreakdown(products=_sum(order.lines), packaging=_sum(order.packaging), shipping=shipping, fees=fees)
