"""Refunds, reshipments and store cancellations on the order aggregate, case by case."""

from datetime import UTC, datetime

import pytest

from services.orders.domain.order import CaseState, Connection, InvalidRequest, Shipment, Status, new_order
from shared.errors import IllegalTransition
from shared.events import Address, StoreOrderLine
from shared.money import Money

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def shipment(n: str) -> Shipment:
    return Shipment(f"sh{n}", "YunExpress", f"YT{n}", f"https://t.example/YT{n}", T0)


def order(status: Status = Status.SHIPPED):
    o = new_order(
        order_id="o1",
        merchant_id="m1",
        store_id="s1",
        external_order_id="1",
        order_name="#1",
        currency="USD",
        total_price=usd("30"),
        shipping_address=Address(country_code="US"),
        lines=[
            StoreOrderLine(
                external_line_id=line,
                external_product_id=f"p-{line}",
                external_variant_id="v",
                quantity=1,
                unit_price=usd("15"),
            )
            for line in ("l1", "l2")
        ],
        store_updated_at=T0,
        customer_email=None,
        customer_locale=None,
        actor="test",
    )
    if status == Status.QUOTING:
        return o
    connection = Connection("cv", "CAT", "Mug", usd("5"), 300)
    o.apply_connections({("p-l1", "v"): connection, ("p-l2", "v"): connection}, "test")
    if status in (Status.PROCESSING, Status.SHIPPED):
        o.mark_paid(usd("12"), "checkout")
    if status == Status.SHIPPED:
        o.mark_shipped(shipment("1"), "tracking")
    return o


def test_a_refund_is_requested_approved_and_refunded_and_the_order_returns_to_its_tab():
    o = order()
    o.request_refund("r1", "broken mug", ["l1"], usd("5"), "user:m")
    assert (o.status, o.resume_status) == (Status.REFUNDS, Status.SHIPPED)
    o.approve("r1", "user:ops")
    assert o.status == Status.REFUNDS and o.cases[0].state == CaseState.APPROVED
    o.refund_completed("r1", usd("5"), "event:RefundCompleted")
    assert (o.status, o.resume_status, o.refunded()) == (Status.SHIPPED, None, usd("5"))
    assert [c.detail for c in o.changes if c.kind == "status"][-2:] == [
        "shipped -> refunds: refund requested: broken mug",
        "refunds -> shipped: refunded 5.00 USD",
    ]


def test_a_refund_above_what_is_left_is_refused_naming_the_amount():
    o = order()
    o.request_refund("r1", "late", [], usd("10"), "user:m")
    o.approve("r1", "ops")
    o.refund_completed("r1", usd("10"), "checkout")
    with pytest.raises(InvalidRequest) as error:
        o.request_refund("r2", "more", [], usd("2.01"), "user:m")
    assert error.value.field == "amount" and "2.00 left" in error.value.message
    o.request_refund("r2", "the rest", [], usd("2"), "user:m")
    assert o.refundable() == usd("0")


def test_a_rejected_refund_goes_back_with_its_reason_and_frees_the_amount():
    o = order(Status.PROCESSING)
    o.request_refund("r1", "too slow", [], usd("12"), "user:m")
    o.reject("r1", "already packed", "ops")
    assert (o.status, o.cases[0].rejection_reason) == (Status.PROCESSING, "already packed")
    assert o.refundable() == usd("12")
    with pytest.raises(IllegalTransition, match="refund is rejected"):
        o.approve("r1", "ops")


def test_a_failed_refund_returns_to_requested_with_the_failure_and_can_be_approved_again():
    o = order()
    o.request_refund("r1", "broken", [], usd("3"), "user:m")
    o.approve("r1", "ops")
    o.refund_failed("r1", "card expired", "checkout")
    assert o.status == Status.REFUNDS
    assert (o.cases[0].state, o.cases[0].failure_reason) == (CaseState.REQUESTED, "card expired")
    o.approve("r1", "ops")
    assert o.cases[0].failure_reason is None


def test_a_parcel_shipped_while_a_refund_is_decided_lands_the_order_in_shipped_afterwards():
    o = order(Status.PROCESSING)
    o.request_refund("r1", "wrong colour", ["l2"], usd("4"), "user:m")
    o.mark_shipped(shipment("9"), "tracking")
    assert (o.status, o.resume_status, o.shipment.tracking_number) == (Status.REFUNDS, Status.SHIPPED, "YT9")
    o.reject("r1", "colour as ordered", "ops")
    assert o.status == Status.SHIPPED


def test_a_reshipment_is_approved_and_reshipped_with_its_new_tracking():
    o = order()
    o.request_reshipment("x1", "lost in transit", ["l2"], "user:m")
    assert o.status == Status.RESENT
    with pytest.raises(IllegalTransition, match="order is resent"):
        o.request_refund("r1", "also", [], usd("1"), "user:m")  # one case at a time
    o.approve("x1", "ops")
    o.reshipped("x1", shipment("2"), "tracking")
    assert o.status == Status.SHIPPED and o.cases[0].shipment.tracking_number == "YT2"


@pytest.mark.parametrize("lines", [[], ["l9"]])
def test_a_reshipment_names_known_lines(lines):
    with pytest.raises(InvalidRequest) as error:
        order().request_reshipment("x1", "lost", lines, "user:m")
    assert error.value.field == "external_line_ids"


def test_no_after_sales_before_payment():
    with pytest.raises(IllegalTransition, match="order is to_order"):
        order(Status.TO_ORDER).request_refund("r1", "x", [], usd("1"), "user:m")
    with pytest.raises(IllegalTransition, match="order is processing"):
        order(Status.PROCESSING).request_reshipment("x1", "x", ["l1"], "user:m")


def test_a_store_cancellation_cancels_before_payment_and_flags_after():
    before = order(Status.TO_ORDER)
    before.store_cancelled("customer changed mind", "sync")
    assert before.status == Status.CANCELLED
    after = order(Status.PROCESSING)
    after.store_cancelled(None, "sync")
    assert after.status == Status.PROCESSING
    assert after.flags == ["cancelled in the store after payment: refund due"]


def test_a_payment_for_an_order_cancelled_meanwhile_is_kept_and_flagged_for_refund():
    o = order(Status.TO_ORDER)
    o.cancel("not needed", "user:m")
    o.mark_paid(usd("10"), "checkout")
    assert o.status == Status.CANCELLED and o.paid_amount == usd("10")
    assert "paid after it was cancelled: refund due" in o.flags
    with pytest.raises(IllegalTransition):
        o.mark_paid(usd("10"), "checkout")  # paid twice


def test_the_payment_of_a_cancelled_order_is_refunded_and_the_order_stays_cancelled():
    o = order(Status.TO_ORDER)
    o.cancel("not needed", "user:m")
    with pytest.raises(IllegalTransition):  # nothing was paid: nothing to refund
        o.request_refund("r0", "cancelled", [], usd("1"), "user:m")
    o.mark_paid(usd("10"), "checkout")
    o.request_refund("r1", "paid after the cancellation", [], usd("10"), "user:m")
    assert o.status == Status.REFUNDS
    o.approve("r1", "user:ops")
    o.refund_completed("r1", usd("10"), "checkout")
    assert o.status == Status.CANCELLED
    assert o.refundable() == usd("0")


def test_the_address_is_editable_only_before_payment():
    o = order(Status.TO_ORDER)
    o.change_address(Address(city="Lyon", country_code="FR"), "user:m")
    assert o.shipping_address.city == "Lyon"
    with pytest.raises(IllegalTransition, match="order is processing"):
        order(Status.PROCESSING).change_address(Address(country_code="FR"), "user:m")
