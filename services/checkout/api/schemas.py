from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from shared.money import Money


class CheckoutCreate(BaseModel):
    order_ids: list[str] = Field(min_length=1, max_length=1000, description="To Order orders to pay together")


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


class CheckoutPublic(BaseModel):
    id: str
    status: str
    orders: list[CheckoutOrderPublic]
    total: Money
    created_at: datetime


class PayRequest(BaseModel):
    method: Literal["balance"] = Field(description="card payments come with the payment-provider adapter")


class PaymentPublic(BaseModel):
    payment_id: str
    checkout_id: str
    method: str
    status: str
    amount: Money


class TopUpCreate(BaseModel):
    merchant_id: str = Field(min_length=1)
    amount: Money
    reference: str = Field(min_length=1, max_length=200, description="e.g. the bank transfer's reference")

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Money) -> Money:
        if value.amount <= 0:
            raise ValueError("a top-up must be positive")
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
