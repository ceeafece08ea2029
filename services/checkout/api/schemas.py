from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.events import ShippingChoice
from shared.money import Money


def _positive(value: Money | None) -> Money | None:
    if value is not None and value.amount <= 0:
        raise ValueError("the amount must be positive")
    return value


class CheckoutCreate(BaseModel):
    order_ids: list[str] = Field(min_length=1, max_length=1000, description="To Order orders to pay together")
    shipping: dict[str, str] = Field(
        default={}, description="order id -> shipping method id, for orders whose rule-chosen method to change"
    )


class CostBreakdownPublic(BaseModel):
    products: Money
    packaging: Money
    shipping: Money
    fees: Money
    total: Money


class CheckoutOrderPublic(BaseModel):
    order_id: str
    order_name: str
    costs: CostBreakdownPublic
    shipping: ShippingChoice | None = Field(description="null when no rule or default chose a method")


class PaymentPublic(BaseModel):
    payment_id: str
    checkout_id: str
    method: str
    status: Literal["processing", "succeeded", "failed"] = Field(
        description="a card payment stays processing until the provider's webhook confirms it"
    )
    amount: Money
    failure_reason: str | None = None


class CheckoutPublic(BaseModel):
    id: str
    status: Literal["open", "paying", "paid"]
    orders: list[CheckoutOrderPublic]
    total: Money
    created_at: datetime
    last_payment: PaymentPublic | None = None


class PayRequest(BaseModel):
    method: Literal["balance", "card"]
    payment_method: str | None = Field(
        default=None, max_length=255, description="card: the provider's payment method id, e.g. pm_card_visa"
    )
    amount: Money | None = Field(default=None, description="the total the merchant agreed to; refused if different")

    _amount = field_validator("amount")(_positive)

    @model_validator(mode="after")
    def _card_needs_a_payment_method(self) -> PayRequest:
        if (self.method == "card") != (self.payment_method is not None):
            raise ValueError("payment_method is required for card payments and only for them")
        return self


class TopUpCreate(BaseModel):
    merchant_id: str = Field(min_length=1)
    amount: Money
    reference: str = Field(min_length=1, max_length=200, description="e.g. the bank transfer's reference")

    _amount = field_validator("amount")(_positive)


class CreditLineSet(BaseModel):
    limit: Money = Field(description="how far below zero the balance may go")

    @field_validator("limit")
    @classmethod
    def _not_negative(cls, value: Money) -> Money:
        if value.amount < 0:
            raise ValueError("a credit line cannot be negative")
        return value


class BalancePublic(BaseModel):
    balance: Money
    credit_limit: Money
    available: Money


class LedgerEntryPublic(BaseModel):
    id: int
    transaction_id: str
    amount: Money
    kind: str
    reference: str
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerEntryPublic]
    next_cursor: str | None
