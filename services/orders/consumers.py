"""The events the orders service reacts to."""

from services.orders import handlers
from shared import topics

CONSUMES = (topics.STORE_ORDERS, topics.PAYMENTS, topics.FULFILLMENT)

HANDLERS = {
    "OrderSynced": handlers.on_order_synced,
    "PaymentStarted": handlers.on_payment_started,
    "OrderPaid": handlers.on_order_paid,
    "PaymentFailed": handlers.on_payment_failed,
    "OrderShipped": handlers.on_order_shipped,
}
