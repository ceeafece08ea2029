"""The order aggregate: the merchant's store order as we fulfil it. Status changes only through its methods,
which raise IllegalTransition on a move the current status forbids and record what happened on the timeline.

One state machine, one status per order; the status is the tab the order appears in. The moves:

    quoting <-> to_order              every line connected, or not (connections; store updates before payment)
    quoting | to_order -> cancelled   the merchant cancels, or the store cancels before payment
    to_order -> pending               a payment started (a failed one keeps the order in pending, with the reason)
    to_order | pending -> processing  paid
    processing -> shipped             the parcel left
    processing | shipped -> refunds   a refund in progress; back to where it came from when it ends
    shipped -> resent                 a reshipment in progress; back to shipped when it ends

After-sales cases (refunds and reshipments) are the order's own entities. While the merchant's request is in
progress (`requested`, then `approved`) the order sits in the Refunds or Resent tab, where the case shows its
progress; `resume_status` remembers where the order came from. When the case ends (`rejected` with a reason,
`refunded`, or `reshipped` with its new tracking) the order goes back to that status, and the closed case stays
on the order's detail. So at most one case is open at a time, and `refunds`/`resent` mean exactly "a case of that
kind is open". A failed refund (`RefundFailed`) returns the case to `requested` with the failure reason, for ops
to approve again or reject. A parcel that ships while a refund is open moves `resume_status` to shipped.

Money rules: an order is paid once; refunds never exceed what was paid (requested and open ones included).
A store cancellation before payment cancels the order; while a payment is in flight (pending) or after payment it
only flags the order (refund due). A payment that arrives for an order cancelled meanwhile is recorded and
flagged for refund; the order stays cancelled (it was cancelled before it was paid, never after), and its refund
is requested like any other (Cancelled -> Refunds -> Cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from shared.errors import DomainError, IllegalTransition
from shared.events import Address, ShippingChoice, StoreOrderLine
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
EDITABLE = frozenset({Status.QUOTING, Status.TO_ORDER})
PAID = frozenset({Status.PROCESSING, Status.SHIPPED, Status.REFUNDS, Status.RESENT})


class InvalidRequest(DomainError):
    """The request names something wrong (a field), whatever the order's status: the API answers 422."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class CaseKind(StrEnum):
    REFUND = "refund"
    RESHIPMENT = "reshipment"


class CaseState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REFUNDED = "refunded"
    RESHIPPED = "reshipped"


OPEN_CASE = frozenset({CaseState.REQUESTED, CaseState.APPROVED})
CASE_TAB = {CaseKind.REFUND: Status.REFUNDS, CaseKind.RESHIPMENT: Status.RESENT}


@dataclass(frozen=True)
class Connection:
    """A store variant connected to a catalog variant; one store unit is `quantity_ratio` catalog units."""

    catalog_variant_id: str
    sku: str
    title: str
    unit_cost: Money
    unit_weight_grams: int
    quantity_ratio: int = 1


@dataclass(frozen=True)
class PackagingItem:
    """One of the merchant's private products (packaging, card) that goes into this order's parcel."""

    private_product_id: str
    name: str
    kind: str
    catalog_variant_id: str
    sku: str
    unit_cost: Money
    unit_weight_grams: int
    quantity: int


@dataclass(frozen=True)
class Shipment:
    shipment_id: str
    carrier: str
    tracking_number: str
    tracking_url: str
    shipped_at: datetime


@dataclass
class OrderLine:
    store: StoreOrderLine
    connection: Connection | None = None

    @property
    def catalog_quantity(self) -> int:
        assert self.connection is not None
        return self.store.quantity * self.connection.quantity_ratio


@dataclass
class AfterSalesCase:
    """A refund or a reshipment the merchant asked for, and its progress."""

    id: str
    kind: CaseKind
    reason: str
    external_line_ids: list[str]
    requested_by: str
    amount: Money | None = None  # refunds only
    state: CaseState = CaseState.REQUESTED
    rejection_reason: str | None = None
    failure_reason: str | None = None
    shipment: Shipment | None = None  # reshipments, once reshipped

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_CASE


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
    store_name: str = ""
    customer_notified_by_store: bool = False
    status: Status = Status.QUOTING
    status_reason: str | None = None
    resume_status: Status | None = None
    paid_amount: Money | None = None
    shipping: ShippingChoice | None = None
    shipment: Shipment | None = None
    # Shipments and payments come on different topics, so a shipment's event can overtake the payment events
    # that made it possible; it waits here and applies when the order is marked paid.
    early_shipment: Shipment | None = None
    packaging: list[PackagingItem] = field(default_factory=list)
    cases: list[AfterSalesCase] = field(default_factory=list)
    version: int = 0
    flags: list[str] = field(default_factory=list)
    # What happened in this unit of work, for the timeline and the integration events.
    changes: list[TimelineEntry] = field(default_factory=list)
    status_changes: list[tuple[Status | None, Status, str | None]] = field(default_factory=list)

    # --- connections and packaging -------------------------------------------------------------------------

    def unconnected_lines(self) -> list[OrderLine]:
        return [line for line in self.lines if line.connection is None]

    def apply_connections(self, connections: dict[tuple[str | None, str | None], Connection], actor: str) -> None:
        """Attach what is connected; an order before payment moves between Quoting and To Order to match."""
        if self.status not in EDITABLE:
            raise IllegalTransition("order", self.status, "change its product connections")
        for line in self.lines:
            line.connection = connections.get((line.store.external_product_id, line.store.external_variant_id))
        missing = self.unconnected_lines()
        if self.status == Status.QUOTING and not missing:
            self._move(Status.TO_ORDER, "every product is connected", actor)
        elif self.status == Status.TO_ORDER and missing:
            self._move(Status.QUOTING, _missing_reason(missing), actor)
        elif self.status == Status.QUOTING:
            self.status_reason = _missing_reason(missing)

    def set_packaging(self, items: list[PackagingItem], actor: str) -> bool:
        """Returns whether the packaging changed."""
        if self.status not in EDITABLE:
            raise IllegalTransition("order", self.status, "change its packaging")
        if items == self.packaging:
            return False
        self.packaging = items
        names = ", ".join(f"{p.quantity} x {p.name}" for p in items) or "none"
        self._note("packaging", f"packaging: {names}", actor)
        return True

    def product_cost(self) -> Money | None:
        connected = [line for line in self.lines if line.connection is not None]
        if not connected:
            return None
        currency = connected[0].connection.unit_cost.currency
        total = sum((line.connection.unit_cost.amount * line.catalog_quantity for line in connected), Decimal(0))
        return Money.of(total, currency)

    def packaging_cost(self) -> Money | None:
        if not self.packaging:
            return None
        total = sum((p.unit_cost.amount * p.quantity for p in self.packaging), Decimal(0))
        return Money.of(total, self.packaging[0].unit_cost.currency)

    # --- merchant edits before payment ---------------------------------------------------------------------

    def change_address(self, address: Address, actor: str) -> None:
        if self.status not in EDITABLE:
            raise IllegalTransition("order", self.status, "change the shipping address")
        self.shipping_address = address
        self._note("address", f"shipping address changed to {address.city}, {address.country_code}", actor)

    def cancel(self, reason: str, actor: str) -> None:
        if self.status not in EDITABLE:
            raise IllegalTransition("order", self.status, "cancel the order")
        if self.early_shipment is not None:
            raise IllegalTransition(
                "order", f"{self.status} but shipped (its payment is on its way)", "cancel the order"
            )
        self._move(Status.CANCELLED, reason, actor)

    # --- payment -------------------------------------------------------------------------------------------

    def start_payment(self, actor: str) -> None:
        if self.status == Status.CANCELLED:
            self._note("payment_started", "a payment started for the cancelled order", actor)
            return
        if self.status not in (Status.TO_ORDER, Status.PENDING):
            raise IllegalTransition("order", self.status, "start a payment")
        if self.status == Status.TO_ORDER:
            self._move(Status.PENDING, "payment started", actor)
        else:
            self.status_reason = "payment started again"
            self._note("payment_started", "payment started again", actor)

    def mark_paid(self, amount: Money, actor: str, shipping: ShippingChoice | None = None) -> None:
        if amount.amount <= Decimal(0):
            raise InvalidRequest("amount", "a payment must be positive")
        if self.status == Status.CANCELLED and self.paid_amount is None:
            self.paid_amount, self.shipping = amount, shipping
            self._flag("paid after it was cancelled: refund due", actor)
            return
        if self.status not in (Status.TO_ORDER, Status.PENDING):
            raise IllegalTransition("order", self.status, "mark the order paid")
        self.paid_amount, self.shipping = amount, shipping
        self._move(Status.PROCESSING, f"paid {amount.amount} {amount.currency}", actor)
        if self.early_shipment is not None:
            self.shipment, self.early_shipment = self.early_shipment, None
            self._move(Status.SHIPPED, _shipped(self.shipment), actor)

    def payment_failed(self, reason: str, actor: str) -> None:
        if self.status == Status.CANCELLED:
            self._note("payment_failed", f"{reason} (the order is cancelled)", actor)
            return
        if self.status not in (Status.TO_ORDER, Status.PENDING):
            raise IllegalTransition("order", self.status, "record a failed payment")
        if self.status == Status.TO_ORDER:
            self._move(Status.PENDING, f"payment failed: {reason}", actor)
        else:
            self.status_reason = f"payment failed: {reason}"
            self._note("payment_failed", reason, actor)

    # --- fulfilment ----------------------------------------------------------------------------------------

    def mark_shipped(self, shipment: Shipment, actor: str) -> None:
        detail = _shipped(shipment)
        if self.status in (Status.TO_ORDER, Status.PENDING) and self.early_shipment is None:
            self.early_shipment = shipment
            self._note("shipped", f"{detail}; applied once the payment arrives", actor)
            return
        if self.status == Status.REFUNDS and self.resume_status == Status.PROCESSING:
            # The warehouse shipped while a refund was being decided: the order returns to Shipped.
            self.shipment, self.resume_status = shipment, Status.SHIPPED
            self._note("shipped", detail, actor)
            return
        if self.status != Status.PROCESSING:
            raise IllegalTransition("order", self.status, "mark the order shipped")
        self.shipment = shipment
        self._move(Status.SHIPPED, detail, actor)

    def carrier_status(self, status: str, message: str, actor: str) -> None:
        if self.shipment is None and not any(c.shipment for c in self.cases):
            raise IllegalTransition("order", self.status, "record a carrier status before shipping")
        self._note("carrier_status", f"{status}" + (f": {message}" if message else ""), actor)

    # --- store changes -------------------------------------------------------------------------------------

    def update_from_store(self, lines: list[OrderLine], address: Address, updated_at: datetime, actor: str) -> bool:
        """Take a newer version of the store order; returns False when it is not newer than what we hold.
        Quoting and To Order take it (the caller re-evaluates connections and packaging); later it is flagged."""
        if updated_at <= self.store_updated_at:
            return False
        self.store_updated_at = updated_at
        if self.status in EDITABLE:
            self.lines, self.shipping_address = lines, address
            self._note("store_update", "items or address changed in the store", actor)
        elif self.status == Status.CANCELLED:
            self._note("store_update", "the store order changed; the order is cancelled, not applied", actor)
        else:
            what = "in payment" if self.status == Status.PENDING else "after payment"
            self._flag(f"store order changed {what}; not applied", actor)
        return True

    def store_cancelled(self, reason: str | None, actor: str) -> None:
        why = "cancelled in the store" + (f": {reason}" if reason else "")
        if self.status in EDITABLE:
            self._move(Status.CANCELLED, why, actor)
        elif self.status == Status.CANCELLED:
            self._note("store_cancelled", why, actor)
        elif self.status == Status.PENDING:
            self._flag(f"{why} while a payment was in progress: refund due if it is paid", actor)
        else:
            self._flag(f"{why} after payment: refund due", actor)

    # --- after-sales ---------------------------------------------------------------------------------------

    def refundable(self) -> Money:
        """What can still be refunded: paid minus refunds refunded or in progress."""
        if self.paid_amount is None:
            return Money.of(0, self.currency)
        taken = sum(
            (c.amount.amount for c in self.cases if c.kind == CaseKind.REFUND and c.state != CaseState.REJECTED),
            Decimal(0),
        )
        return Money.of(self.paid_amount.amount - taken, self.paid_amount.currency)

    def refunded(self) -> Money | None:
        done = [c.amount for c in self.cases if c.kind == CaseKind.REFUND and c.state == CaseState.REFUNDED]
        return Money.of(sum((m.amount for m in done), Decimal(0)), done[0].currency) if done else None

    def request_refund(self, case_id: str, reason: str, line_ids: list[str], amount: Money, actor: str) -> None:
        # A cancelled order can be refunded when it was paid anyway (the payment crossed the cancellation).
        paid_but_cancelled = self.status == Status.CANCELLED and self.paid_amount is not None
        if self.status not in (Status.PROCESSING, Status.SHIPPED) and not paid_but_cancelled:
            raise IllegalTransition("order", self.status, "request a refund")
        self._check_lines(line_ids, required=False)
        assert self.paid_amount is not None
        if amount.currency != self.paid_amount.currency:
            raise InvalidRequest("amount", f"the order was paid in {self.paid_amount.currency}")
        if amount.amount <= Decimal(0):
            raise InvalidRequest("amount", "a refund must be positive")
        left = self.refundable()
        if amount.amount > left.amount:
            raise InvalidRequest("amount", f"{amount.amount} is more than the {left.amount} left to refund")
        self._open(AfterSalesCase(case_id, CaseKind.REFUND, reason, line_ids, actor, amount=amount), actor)

    def request_reshipment(self, case_id: str, reason: str, line_ids: list[str], actor: str) -> None:
        if self.status != Status.SHIPPED:
            raise IllegalTransition("order", self.status, "request a reshipment")
        self._check_lines(line_ids, required=True)
        self._open(AfterSalesCase(case_id, CaseKind.RESHIPMENT, reason, line_ids, actor), actor)

    def approve(self, case_id: str, actor: str) -> AfterSalesCase:
        case = self._case(case_id, CaseState.REQUESTED, "approve")
        case.state, case.failure_reason = CaseState.APPROVED, None
        self._note(f"{case.kind}_approved", f"{case.kind} {case.id} approved", actor)
        self.status_reason = f"{case.kind} approved"
        return case

    def reject(self, case_id: str, reason: str, actor: str) -> None:
        case = self._case(case_id, CaseState.REQUESTED, "reject")
        case.state, case.rejection_reason = CaseState.REJECTED, reason
        self._close(case, f"{case.kind} rejected: {reason}", actor)

    def refund_completed(self, case_id: str, amount: Money, actor: str) -> None:
        case = self._case(case_id, CaseState.APPROVED, "complete", CaseKind.REFUND)
        if amount != case.amount:
            raise InvalidRequest("amount", f"refund {case_id} was approved for {case.amount.amount}")
        case.state = CaseState.REFUNDED
        self._close(case, f"refunded {amount.amount} {amount.currency}", actor)

    def refund_failed(self, case_id: str, reason: str, actor: str) -> None:
        case = self._case(case_id, CaseState.APPROVED, "fail", CaseKind.REFUND)
        case.state, case.failure_reason = CaseState.REQUESTED, reason
        self.status_reason = f"refund failed: {reason}"
        self._note("refund_failed", f"refund {case_id} failed: {reason}", actor)

    def reshipped(self, case_id: str, shipment: Shipment, actor: str) -> None:
        case = self._case(case_id, CaseState.APPROVED, "ship", CaseKind.RESHIPMENT)
        case.state, case.shipment = CaseState.RESHIPPED, shipment
        self._close(case, f"reshipped with {shipment.carrier}, tracking {shipment.tracking_number}", actor)

    def open_case(self) -> AfterSalesCase | None:
        return next((c for c in self.cases if c.is_open), None)

    def _open(self, case: AfterSalesCase, actor: str) -> None:
        if any(c.id == case.id for c in self.cases):
            raise InvalidRequest("id", f"case {case.id} exists already")
        self.cases.append(case)
        self.resume_status = self.status
        self._move(CASE_TAB[case.kind], f"{case.kind} requested: {case.reason}", actor)

    def _close(self, case: AfterSalesCase, reason: str, actor: str) -> None:
        assert self.resume_status is not None
        back, self.resume_status = self.resume_status, None
        self._move(back, reason, actor)

    def _case(self, case_id: str, state: CaseState, action: str, kind: CaseKind | None = None) -> AfterSalesCase:
        case = next((c for c in self.cases if c.id == case_id and (kind is None or c.kind == kind)), None)
        if case is None:
            raise InvalidRequest("case_id", f"{kind or 'case'} {case_id} is not one of this order's")
        if case.state != state:
            raise IllegalTransition(str(case.kind), case.state, f"{action} {case.kind} {case_id}")
        return case

    def _check_lines(self, line_ids: list[str], *, required: bool) -> None:
        if required and not line_ids:
            raise InvalidRequest("external_line_ids", "name at least one line")
        known = {line.store.external_line_id for line in self.lines}
        unknown = [x for x in line_ids if x not in known]
        if unknown:
            raise InvalidRequest("external_line_ids", f"not lines of this order: {', '.join(unknown)}")

    # -------------------------------------------------------------------------------------------------------

    def _move(self, to: Status, reason: str | None, actor: str) -> None:
        previous = self.status
        self.status, self.status_reason = to, reason
        self.status_changes.append((previous, to, reason))
        self._note("status", f"{previous} -> {to}" + (f": {reason}" if reason else ""), actor)

    def _flag(self, flag: str, actor: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)
        self._note("flagged", flag, actor)

    def _note(self, kind: str, detail: str, actor: str) -> None:
        self.changes.append(TimelineEntry(kind, detail, actor))


def _shipped(shipment: Shipment) -> str:
    return f"shipped with {shipment.carrier}, tracking {shipment.tracking_number}"


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
    store_name: str = "",
    customer_notified_by_store: bool = False,
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
        store_name=store_name,
        customer_notified_by_store=customer_notified_by_store,
    )
    order.status_changes.append((None, Status.QUOTING, None))
    order._note("created", f"synced from the store as {order_name}", actor)
    return order
