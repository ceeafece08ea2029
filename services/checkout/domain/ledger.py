"""Double-entry bookkeeping for merchant balances. Every transaction is a set of postings that sum to zero;
a merchant's balance is the sum of the postings to their wallet account."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.errors import DomainError


def wallet_account(merchant_id: str) -> str:
    return f"wallet:{merchant_id}"


TOP_UPS = "external:top-ups"  # money that came in from outside (bank transfer, card)
ORDER_PAYMENTS = "revenue:order-payments"  # what merchants paid us for orders


@dataclass(frozen=True)
class Posting:
    account: str
    amount: Decimal  # positive = credit to that account


class InsufficientBalance(DomainError):
    def __init__(self, shortfall: Decimal, currency: str) -> None:
        super().__init__(f"the balance is short by {shortfall} {currency}")
        self.shortfall = shortfall
        self.currency = currency


def transfer(source: str, destination: str, amount: Decimal) -> list[Posting]:
    if amount <= 0:
        raise ValueError("a transfer must move a positive amount")
    postings = [Posting(source, -amount), Posting(destination, amount)]
    assert sum(p.amount for p in postings) == 0
    return postings


def check_can_spend(balance: Decimal, credit_limit: Decimal, amount: Decimal, currency: str) -> None:
    """A wallet never goes below zero, or below minus its credit line where one is granted."""
    available = balance + credit_limit
    if amount > available:
        raise InsufficientBalance(amount - available, currency)
