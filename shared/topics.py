"""Every Kafka topic, in one place. Each topic carries the events of one producing service, keyed by order id,
so all events about one order from one service stay in order on one partition."""

STORE_ORDERS = "store-orders"  # sync -> OrderSynced, StoreOrderCancelled
ORDERS = "orders"  # orders -> OrderStatusChanged, OrderReadyForCheckout
# orders -> RefundApproved, ReshipmentApproved: a few a day, on a topic of their own, so that tracking does not read
# every order's events to find them
AFTER_SALES = "after-sales"
PAYMENTS = "payments"  # checkout -> PaymentStarted, OrderPaid, PaymentFailed, RefundCompleted, RefundFailed
FULFILLMENT = "fulfillment"  # tracking -> OrderShipped, ShipmentStatusChanged

ALL = (STORE_ORDERS, ORDERS, AFTER_SALES, PAYMENTS, FULFILLMENT)


def dead_letter(consumer_group: str) -> str:
    """Messages a consumer group gave up on, with the error in their headers."""
    return f"dead-letter.{consumer_group}"
