"""Money as a Decimal amount with its currency; serialised as {"amount": "12.30", "currency": "USD"}."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

CENT = Decimal("0.01")

Amount = Annotated[
    Decimal,
    Field(max_digits=14, decimal_places=2),
    PlainSerializer(lambda d: f"{d.quantize(CENT, rounding=ROUND_HALF_UP)}", return_type=str, when_used="json"),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Amount
    currency: Currency

    @classmethod
    def of(cls, amount: Decimal | str | int, currency: str) -> Money:
        return cls(amount=Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP), currency=currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money.of(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money.of(self.amount - other.amount, self.currency)

    def times(self, factor: int | Decimal) -> Money:
        return Money.of(self.amount * factor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")
