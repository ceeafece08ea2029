from datetime import UTC, datetime, timedelta

import pytest

from services.orders.domain.order import Connection, OrderLine, Shipment, Status, new_order
from services.orders.handlers import recorded_events
from shared.errors import IllegalTransition
from shared.events import Address, StoreOrderLine
from shared.money import Money

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def line(product: str = "p1", variant: str = "v1", qty: int = 1) -> StoreOrderLine:
    return StoreOrderLine(
        external_line_id=f"l-{product}-{variant}",
        external_product_id=product,
        external_variant_id=variant,
        sku=f"SKU-{product}",
        quantity=qty,
        unit_price=Money.of("10", "USD"),
    )


def connection(ratio: int = 1) -> Connection:
    return Connection("cv1", "CAT-1", "Mug", Money.of("4.20", "USD"), 350, ratio)


def shipment(tracking: str = "YT0") -> Shipment:
    return Shipment("sh1", "YunExpress", tracking, f"https://t.example/{tracking}", T0)


def order(*lines: StoreOrderLine):
    return new_order(
        order_id="o1",
        merchant_id="m1",
        store_id="s1",
        external_order_id="1001",
        order_name="#1001",
        currency="USD",
        total_price=Money.of("10", "USD"),
        shipping_address=Address(country_code="US"),
        lines=list(lines or [line()]),
        store_updated_at=T0,
        customer_email=None,
        customer_locale=None,
        actor="test",
    )


def test_an_unconnected_order_is_quoting_with_the_missing_product_named():
    o = order(line("p1"), line("p2"))
    o.apply_connections({("p1", "v1"): connection()}, "test")
    assert o.status == Status.QUOTING
    assert o.status_reason == "not connected to a catalog product: SKU-p2"


def test_connecting_every_line_moves_the_order_to_to_order():
    o = order()
    o.apply_connections({("p1", "v1"): connection(ratio=3)}, "test")
    assert o.status == Status.TO_ORDER
    assert o.lines[0].catalog_quantity == 3
    assert o.status_changes == [
        (None, Status.QUOTING, None),
        (Status.QUOTING, Status.TO_ORDER, "every product is connected"),
    ]


def test_the_payment_path_to_shipped():
    o = order()
    o.apply_connections({("p1", "v1"): connection()}, "test")
    o.start_payment("checkout")
    assert o.status == Status.PENDING
    o.payment_failed("card declined", "checkout")
    assert (o.status, o.status_reason) == (Status.PENDING, "payment failed: card declined")
    o.start_payment("checkout")
    o.mark_paid(Money.of("4.20", "USD"), "checkout")
    assert o.status == Status.PROCESSING and o.paid_amount == Money.of("4.20", "USD")
    o.mark_shipped(shipment("YT1"), "tracking")
    assert o.status == Status.SHIPPED


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], lambda o: o.mark_paid(Money.of("1", "USD"), "x")),  # quoting: nothing to pay yet
        ([], lambda o: o.mark_shipped(shipment(), "x")),  # shipped before paid
        (["connect", "pay"], lambda o: o.mark_paid(Money.of("1", "USD"), "x")),  # paid twice
        (["connect", "pay"], lambda o: o.cancel("changed my mind", "x")),  # cancelled after paid
        (["connect", "pay", "ship"], lambda o: o.start_payment("x")),
    ],
)
def test_illegal_moves_raise_and_name_the_current_status(setup, action):
    o = order()
    for step in setup:
        if step == "connect":
            o.apply_connections({("p1", "v1"): connection()}, "test")
        elif step == "pay":
            o.mark_paid(Money.of("4.20", "USD"), "test")
        elif step == "ship":
            o.mark_shipped(shipment(), "test")
    before = o.status
    with pytest.raises(IllegalTransition) as error:
        action(o)
    assert o.status == before
    assert f"is {before}" in str(error.value)


def test_an_older_store_update_is_ignored_and_a_newer_one_applied():
    o = order()
    assert not o.update_from_store([OrderLine(line(qty=5))], Address(country_code="FR"), T0, "store")
    assert o.lines[0].store.quantity == 1
    assert o.update_from_store([OrderLine(line(qty=5))], Address(country_code="FR"), T0 + timedelta(1), "store")
    assert o.lines[0].store.quantity == 5 and o.shipping_address.country_code == "FR"


def test_a_store_update_after_payment_is_flagged_not_applied():
    o = order()
    o.apply_connections({("p1", "v1"): connection()}, "test")
    o.mark_paid(Money.of("4.20", "USD"), "test")
    assert o.update_from_store([OrderLine(line(qty=9))], Address(country_code="FR"), T0 + timedelta(1), "store")
    assert o.lines[0].store.quantity == 1
    assert o.flags == ["store order changed after payment; not applied"]


def test_a_shipment_that_overtook_its_payment_applies_once_the_order_is_paid():
    # OrderShipped (fulfillment topic) can be handled before PaymentStarted/OrderPaid (payments topic).
    o = order()
    o.apply_connections({("p1", "v1"): connection()}, "test")
    o.mark_shipped(shipment("YT9"), "tracking")
    assert (o.status, o.shipment, o.early_shipment) == (Status.TO_ORDER, None, shipment("YT9"))
    with pytest.raises(IllegalTransition, match="shipped"):
        o.cancel("changed my mind", "merchant")  # it was paid and shipped: the payment is on its way
    o.start_payment("checkout")
    o.mark_paid(Money.of("4.20", "USD"), "checkout")
    assert (o.status, o.shipment, o.early_shipment) == (Status.SHIPPED, shipment("YT9"), None)
    assert [after for _, after, _ in o.status_changes][-3:] == [Status.PENDING, Status.PROCESSING, Status.SHIPPED]


def test_a_unit_of_work_announces_its_net_move_once():
    o = order()
    o.apply_connections({}, "test")  # a new order not connected: quoting
    assert [(e.event_type, e.payload.from_status, e.payload.to_status) for e in recorded_events(o)] == [
        ("OrderStatusChanged", None, "quoting")
    ]

    o = order()
    o.apply_connections({("p1", "v1"): connection()}, "test")  # connected on arrival: quoting, then To Order
    assert [e.event_type for e in recorded_events(o)] == ["OrderReadyForCheckout"]  # the move's one event

    o.status_changes = []  # as loaded in a later unit of work
    o.apply_connections({}, "test")  # disconnected and connected again: back where it was, with new content
    o.apply_connections({("p1", "v1"): connection(ratio=2)}, "test")
    assert [e.event_type for e in recorded_events(o)] == ["OrderReadyForCheckout"]
    o.status_changes = []
    o.apply_connections({}, "test")
    assert [(e.event_type, e.payload.from_status, e.payload.to_status) for e in recorded_events(o)] == [
        ("OrderStatusChanged", "to_order", "quoting")
    ]
