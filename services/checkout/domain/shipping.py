"""Shipping methods and what they cost: pure Decimal arithmetic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from shared.events import PayableOrderPayload
from shared.money import CENT


@dataclass(frozen=True)
class Bracket:
    max_weight_grams: int
    price: Decimal


@dataclass(frozen=True)
class RateTable:
    """Either first weight + price then a price per started step, or weight brackets (the first that fits)."""

    first_weight_grams: int | None = None
    first_price: Decimal | None = None
    step_weight_grams: int | None = None
    step_price: Decimal | None = None
    brackets: tuple[Bracket, ...] = ()

    def price(self, weight_grams: int) -> Decimal | None:
        """The price for a parcel of that weight, or None when the table does not cover it."""
        if self.brackets:
            for bracket in sorted(self.brackets, key=lambda b: b.max_weight_grams):
                if weight_grams <= bracket.max_weight_grams:
                    return bracket.price.quantize(CENT, ROUND_HALF_UP)
            return None
        assert self.first_weight_grams is not None and self.first_price is not None
        extra = max(0, weight_grams - self.first_weight_grams)
        steps = -(-extra // self.step_weight_grams) if extra and self.step_weight_grams else 0  # started steps
        return (self.first_price + steps * (self.step_price or Decimal(0))).quantize(CENT, ROUND_HALF_UP)

    def covers_weight(self) -> int | None:
        return max(b.max_weight_grams for b in self.brackets) if self.brackets else None


@dataclass(frozen=True)
class ShippingMethod:
    id: str
    name: str
    carrier: str
    currency: str
    rates: dict[str, RateTable]  # ISO country code -> its rate table; the keys are the destination countries
    delivery_days_min: int
    delivery_days_max: int
    max_weight_grams: int
    enabled: bool = True


@dataclass(frozen=True)
class Parcel:
    """What a quote needs to know of an order."""

    country: str
    weight_grams: int
    currency: str


@dataclass(frozen=True)
class Quote:
    method: ShippingMethod
    price: Decimal


@dataclass(frozen=True)
class Unavailable:
    method: ShippingMethod
    reason: str


def order_weight(order: PayableOrderPayload) -> int:
    return sum(line.unit_weight_grams * line.quantity for line in [*order.lines, *order.packaging])


def parcel_of(order: PayableOrderPayload) -> Parcel:
    return Parcel(order.shipping_address.country_code.upper(), order_weight(order), order.currency)


def quote(method: ShippingMethod, parcel: Parcel) -> Quote | Unavailable:
    if not method.enabled:
        return Unavailable(method, "the method is disabled")
    if method.currency != parcel.currency:
        return Unavailable(method, f"priced in {method.currency}, the order is in {parcel.currency}")
    table = method.rates.get(parcel.country)
    if table is None:
        return Unavailable(method, f"does not ship to {parcel.country or 'an address without a country'}")
    if parcel.weight_grams > method.max_weight_grams:
        return Unavailable(method, f"{parcel.weight_grams} g is over the maximum of {method.max_weight_grams} g")
    price = table.price(parcel.weight_grams)
    if price is None:
        return Unavailable(
            method, f"{parcel.weight_grams} g is over the rate table's last bracket ({table.covers_weight()} g)"
        )
    return Quote(method, price)


def quote_all(methods: list[ShippingMethod], parcel: Parcel) -> tuple[list[Quote], list[Unavailable]]:
    """Every method's answer for one parcel: the available ones cheapest first, then the others with a reason."""
    results = [quote(m, parcel) for m in methods]
    quotes = sorted((r for r in results if isinstance(r, Quote)), key=lambda q: (q.price, q.method.delivery_days_max))
    return quotes, [r for r in results if isinstance(r, Unavailable)]
