"""The order aggregate: the merchant's store order as we fulfil it. Status changes only through its methods,
which raise IllegalTransition on a move the current status forbids and record what happened on the timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from shared.errors import IllegalTransition
from shared.events import Address, StoreOrderLine
from shared.money import Money


class Status(StrEnum):
    QUOTING = "quoting"
    TO_ORDER = "to_order"
    PENDING = "pending"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    REFUNDS = "refunds"
    RESENT = "resent"
    CANCELLED = "cancelled"


BEFORE_PAYMENT = frozenset({Status.QUOTING, Status.TO_ORDER, Status.PENDING})


@dataclass(frozen=True)
class Connection:
    """A store variant connected to a catalog variant; one store unit is `quantity_ratio` catalog units."""

    catalog_variant_id: str
    sku: str
    title: str
    unit_cost: Money
    unit_weight_grams: int
    quantity_ratio: int = 1


@dataclass
class OrderLine:
    store: StoreOrderLine
    connection: Connection | None = None

    @property
    def catalog_quantity(self) -> int:
        assert self.connection is not None
        return self.store.quantity * self.connection.quantity_ratio


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    detail: str
    actor: str


@dataclass
class Order:
    id: str
    merchant_id: str
    store_id: str
    external_order_id: str
    order_name: str
    currency: str
    total_price: Money
    shipping_address: Address
    lines: list[OrderLine]
    store_updated_at: datetime
    customer_email: str | None = None
    customer_locale: str | None = None
    status: Status = Status.QUOTING
    status_reason: str | None = None
    paid_amount: Money | None = None
    version: int = 0
    flags: list[str] = field(default_factory=list)
    # What happened in this unit of work, for the timeline and the integration events.
    changes: list[TimelineEntry] = field(default_factory=list)
    status_changes: list[tuple[Status | None, Status, str | None]] = field(default_factory=list)

    # --- connections ---------------------------------------------------------------------------------------

    def unconnected_lines(self) -> list[OrderLine]:
        return [line for line in self.lines if line.connection is None]

    def apply_connections(self, connections: dict[tuple[str | None, str | None], Connection], actor: str) -> None:
        """Attach what is connected; an order before payment moves between Quoting and To Order to match."""
        for line in self.lines:
            line.connection = connections.get((line.store.external_product_id, line.store.external_variant_id))
        missing = self.unconnected_lines()
        if self.status == Status.QUOTING and not missing:
            self._move(Status.TO_ORDER, "every product is connected", actor)
        elif self.status == Status.TO_ORDER and missing:
            self._move(Status.QUOTING, _missing_reason(missing), actor)
        elif self.status == Status.QUOTING:
            self.status_reason = _missing_reason(missing)

    # --- payment -------------------------------------------------------------------------------------------

    def start_payment(self, actor: str) -> None:
        if self.status not in (Status.TO_ORDER, Status.PENDING):
            raise IllegalTransition("order", self.status, "start a payment")
        if self.status == Status.TO_ORDER:
            self._move(Status.PENDING, "payment started", actor)
        else:
            self.status_reason = "payment started again"
            self._note("payment_started", "payment started again", actor)

    def mark_paid(self, amount: Money, actor: str) -> None:
        if self.status not in (Status.TO_ORDER, Status.PENDING):
            raise IllegalTransition("order", self.status, "mark the order paid")
        if amount.amount <= Decimal(0):
            raise ValueError("a payment must be positive")
        self.paid_amount = amount
        self._move(Status.PROCESSING, f"paid {amount.amount} {amount.currency}", actor)

    def payment_failed(self, reason: str, actor: str) -> None:
        if self.status not in (Status.TO_ORDER, Status.PENDING):
            raise IllegalTransition("order", self.status, "record a failed payment")
        if self.status == Status.TO_ORDER:
            self._move(Status.PENDING, f"payment failed: {reason}", actor)
        else:
            self.status_reason = f"payment failed: {reason}"
            self._note("payment_failed", reason, actor)

    # --- after payment -------------------------------------------------------------------------------------

    def mark_shipped(self, carrier: str, tracking_number: str, actor: str) -> None:
        if self.status != Status.PROCESSING:
            raise IllegalTransition("order", self.status, "mark the order shipped")
        self._move(Status.SHIPPED, f"shipped with {carrier}, tracking {tracking_number}", actor)

    def cancel(self, reason: str, actor: str) -> None:
        if self.status not in (Status.QUOTING, Status.TO_ORDER):
            raise IllegalTransition("order", self.status, "cancel the order")
        self._move(Status.CANCELLED, reason, actor)

    # --- store updates -------------------------------------------------------------------------------------

    def update_from_store(self, lines: list[OrderLine], address: Address, updated_at: datetime, actor: str) -> bool:
        """Take a newer version of the store order; returns False when it is not newer than what we hold."""
        if updated_at <= self.store_updated_at:
            return False
        self.store_updated_at = updated_at
        if self.status in BEFORE_PAYMENT and self.status != Status.PENDING:
            self.lines, self.shipping_address = lines, address
            self._note("store_update", "items or address changed in the store", actor)
        else:
            flag = "store order changed after payment"
            if flag not in self.flags:
                self.flags.append(flag)
            self._note("store_update_flagged", f"{flag}; not applied", actor)
        return True

    # -------------------------------------------------------------------------------------------------------

    def _move(self, to: Status, reason: str | None, actor: str) -> None:
        previous = self.status
        self.status, self.status_reason = to, reason
        self.status_changes.append((previous, to, reason))
        self._note("status", f"{previous} -> {to}" + (f": {reason}" if reason else ""), actor)

    def _note(self, kind: str, detail: str, actor: str) -> None:
        self.changes.append(TimelineEntry(kind, detail, actor))


def _missing_reason(missing: list[OrderLine]) -> str:
    names = ", ".join(sorted({line.store.sku or line.store.title or line.store.external_line_id for line in missing}))
    return f"not connected to a catalog product: {names}"


def new_order(
    *,
    order_id: str,
    merchant_id: str,
    store_id: str,
    external_order_id: str,
    order_name: str,
    currency: str,
    total_price: Money,
    shipping_address: Address,
    lines: list[StoreOrderLine],
    store_updated_at: datetime,
    customer_email: str | None,
    customer_locale: str | None,
    actor: str,
) -> Order:
    order = Order(
        id=order_id,
        merchant_id=merchant_id,
        store_id=store_id,
        external_order_id=external_order_id,
        order_name=order_name,
        currency=currency,
        total_price=total_price,
        shipping_address=shipping_address,
        lines=[OrderLine(line) for line in lines],
        store_updated_at=store_updated_at,
        customer_email=customer_email,
        customer_locale=customer_locale,
    )
    order.status_changes.append((None, Status.QUOTING, None))
    order._note("created", f"synced from the store as {order_name}", actor)
    return order
