"""Property: no sequence of merchant and ops actions and incoming events takes an order to an illegal state
(paid twice, shipped before paid, cancelled after paid, refunds above what was paid, a tab that does not match
its after-sales case, a status change missing from the timeline). Refused actions change nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.orders.domain.order import (
    PAID,
    CaseKind,
    Connection,
    InvalidRequest,
    OrderLine,
    Shipment,
    Status,
    new_order,
)
from shared.errors import IllegalTransition
from shared.events import Address, StoreOrderLine
from shared.money import Money

T0 = datetime(2026, 11, 1, tzinfo=UTC)
S = Status
# Every move the tabs allow, written independently of the aggregate's code.
ALLOWED = {
    (None, S.QUOTING),
    (S.QUOTING, S.TO_ORDER),
    (S.TO_ORDER, S.QUOTING),
    (S.QUOTING, S.CANCELLED),
    (S.TO_ORDER, S.CANCELLED),
    (S.TO_ORDER, S.PENDING),
    (S.TO_ORDER, S.PROCESSING),
    (S.PENDING, S.PROCESSING),
    (S.PROCESSING, S.SHIPPED),
    (S.PROCESSING, S.REFUNDS),
    (S.SHIPPED, S.REFUNDS),
    (S.REFUNDS, S.PROCESSING),
    (S.REFUNDS, S.SHIPPED),
    (S.SHIPPED, S.RESENT),
    (S.RESENT, S.SHIPPED),
    # a payment that crossed the cancellation is refunded, and the order goes back to Cancelled
    (S.CANCELLED, S.REFUNDS),
    (S.REFUNDS, S.CANCELLED),
}
LINES = [
    StoreOrderLine(
        external_line_id=f"l{n}",
        external_product_id=f"p{n}",
        external_variant_id="v",
        sku=f"S{n}",
        quantity=n,
        unit_price=Money.of("10", "USD"),
    )
    for n in (1, 2)
]
CONNECTION = Connection("cv", "CAT", "Mug", Money.of("3.10", "USD"), 300)
amounts = st.decimals(min_value=Decimal("-1"), max_value=Decimal("80"), places=2).map(lambda d: Money.of(d, "USD"))
line_sets = st.lists(st.sampled_from(["l1", "l2", "nope"]), max_size=2, unique=True)


def shipment(n: int) -> Shipment:
    return Shipment(f"sh{n}", "YunExpress", f"YT{n}", f"https://t.example/YT{n}", T0)


class OrderLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.order = new_order(
            order_id="o1",
            merchant_id="m1",
            store_id="s1",
            external_order_id="1",
            order_name="#1",
            currency="USD",
            total_price=Money.of("50", "USD"),
            shipping_address=Address(country_code="US"),
            lines=LINES,
            store_updated_at=T0,
            customer_email=None,
            customer_locale=None,
            actor="test",
        )
        self.payments = 0
        self.clock = 0
        self.case_ids = 0

    def attempt(self, action) -> None:
        """Run one action; if the aggregate refuses it, nothing about the order may have changed."""
        before = copy.deepcopy(self.order)
        try:
            action()
        except (IllegalTransition, InvalidRequest):
            assert self.order == before
            return

    def case_id(self, pick: int) -> str:
        """One of the order's cases, most of the time; sometimes an id the order does not know."""
        cases = self.order.cases
        return cases[pick % len(cases)].id if cases and pick < 5 else "c-unknown"

    # --- merchant and ops actions, and the events of the other services --------------------------------------

    @rule(reship=st.booleans())
    def advance(self, reship: bool) -> None:
        """The usual next step, so that runs reach the later tabs and the ends of cases often."""
        o, case = self.order, self.order.open_case()
        pick = 0 if case is None else o.cases.index(case)
        if case is not None and case.state == "approved":
            step = self.reshipped if case.kind == CaseKind.RESHIPMENT else lambda p: self.refund_completed(p, True)
            return step(pick)
        steps = {
            S.QUOTING: lambda: self.connect(True),
            S.TO_ORDER: self.start_payment,
            S.PENDING: lambda: self.pay(Money.of("20", "USD")),
            S.PROCESSING: self.ship,
            S.SHIPPED: (lambda: self.request_reshipment(["l2"]))
            if reship
            else lambda: self.request_refund(Money.of("5", "USD"), ["l1"]),
            S.REFUNDS: lambda: self.approve(pick),
            S.RESENT: lambda: self.approve(pick),
        }
        if o.status in steps:
            steps[o.status]()

    @rule(all_lines=st.booleans())
    def connect(self, all_lines: bool) -> None:
        found = {("p1", "v"): CONNECTION, **({("p2", "v"): CONNECTION} if all_lines else {})}
        self.attempt(lambda: self.order.apply_connections(found, "ops"))

    @rule()
    def start_payment(self) -> None:
        self.attempt(lambda: self.order.start_payment("checkout"))

    @rule()
    def payment_failed(self) -> None:
        self.attempt(lambda: self.order.payment_failed("declined", "checkout"))

    @rule(amount=amounts)
    def pay(self, amount: Money) -> None:
        was = self.order.status

        def pay() -> None:
            self.order.mark_paid(amount, "checkout")
            if was != S.CANCELLED:
                self.payments += 1

        self.attempt(pay)

    @rule()
    def ship(self) -> None:
        self.clock += 1
        self.attempt(lambda: self.order.mark_shipped(shipment(self.clock), "tracking"))

    @rule()
    def carrier_status(self) -> None:
        self.attempt(lambda: self.order.carrier_status("InTransit", "", "tracking"))

    @rule()
    def merchant_cancels(self) -> None:
        self.attempt(lambda: self.order.cancel("changed my mind", "merchant"))

    @rule()
    def store_cancels(self) -> None:
        self.attempt(lambda: self.order.store_cancelled("fraud", "sync"))

    @rule(newer=st.booleans())
    def store_update(self, newer: bool) -> None:
        self.clock += 1
        at = T0 + timedelta(minutes=self.clock if newer else -1)
        self.attempt(
            lambda: self.order.update_from_store([OrderLine(x) for x in LINES], Address(country_code="FR"), at, "sync")
        )

    @rule()
    def change_address(self) -> None:
        self.attempt(lambda: self.order.change_address(Address(city="Lyon", country_code="FR"), "merchant"))

    @rule(amount=amounts, lines=line_sets)
    def request_refund(self, amount: Money, lines: list[str]) -> None:
        self.case_ids += 1
        self.attempt(lambda: self.order.request_refund(f"c{self.case_ids}", "broken", lines, amount, "merchant"))

    @rule(lines=line_sets)
    def request_reshipment(self, lines: list[str]) -> None:
        self.case_ids += 1
        self.attempt(lambda: self.order.request_reshipment(f"c{self.case_ids}", "lost", lines, "merchant"))

    @rule(pick=st.integers(0, 6))
    def approve(self, pick: int) -> None:
        self.attempt(lambda: self.order.approve(self.case_id(pick), "ops"))

    @rule(pick=st.integers(0, 6))
    def reject(self, pick: int) -> None:
        self.attempt(lambda: self.order.reject(self.case_id(pick), "no proof", "ops"))

    @rule(pick=st.integers(0, 6), exact=st.booleans())
    def refund_completed(self, pick: int, exact: bool) -> None:
        case_id = self.case_id(pick)
        case = next((c for c in self.order.cases if c.id == case_id), None)
        amount = case.amount if case is not None and case.amount is not None and exact else Money.of("0.01", "USD")
        self.attempt(lambda: self.order.refund_completed(case_id, amount, "checkout"))

    @rule(pick=st.integers(0, 6))
    def refund_failed(self, pick: int) -> None:
        self.attempt(lambda: self.order.refund_failed(self.case_id(pick), "card expired", "checkout"))

    @rule(pick=st.integers(0, 6))
    def reshipped(self, pick: int) -> None:
        self.clock += 1
        self.attempt(lambda: self.order.reshipped(self.case_id(pick), shipment(self.clock), "tracking"))

    # --- what must always hold ------------------------------------------------------------------------------

    @invariant()
    def paid_once_and_only_when_paid_statuses(self) -> None:
        o = self.order
        assert self.payments <= 1
        if o.status in PAID:
            assert o.paid_amount is not None
        if o.status in (S.QUOTING, S.TO_ORDER, S.PENDING):
            assert o.paid_amount is None
        if o.status == S.CANCELLED and o.paid_amount is not None:
            assert "paid after it was cancelled: refund due" in o.flags

    @invariant()
    def shipped_only_after_payment(self) -> None:
        o = self.order
        if o.shipment is not None or any(c.shipment for c in o.cases):
            assert o.paid_amount is not None and o.status != S.CANCELLED
        if o.status == S.SHIPPED:
            assert o.shipment is not None

    @invariant()
    def refunds_never_exceed_what_was_paid(self) -> None:
        o = self.order
        taken = sum((c.amount.amount for c in o.cases if c.kind == CaseKind.REFUND and c.state != "rejected"), 0)
        assert taken == 0 or (o.paid_amount is not None and taken <= o.paid_amount.amount)
        assert o.refundable().amount >= 0

    @invariant()
    def the_tab_matches_the_open_case(self) -> None:
        o = self.order
        open_cases = [c for c in o.cases if c.is_open]
        assert len(open_cases) <= 1
        kind = open_cases[0].kind if open_cases else None
        assert (o.status == S.REFUNDS) == (kind == CaseKind.REFUND)
        assert (o.status == S.RESENT) == (kind == CaseKind.RESHIPMENT)
        assert (o.resume_status is not None) == bool(open_cases)

    @invariant()
    def every_move_is_allowed_and_on_the_timeline(self) -> None:
        o = self.order
        for before, after, _ in o.status_changes:
            assert (before, after) in ALLOWED, (before, after)
        assert o.status_changes[-1][1] == o.status
        moves = [c for c in o.changes if c.kind == "status"]
        assert len(moves) == len(o.status_changes) - 1  # the first is the creation


TestOrderLifecycle = OrderLifecycle.TestCase
TestOrderLifecycle.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
