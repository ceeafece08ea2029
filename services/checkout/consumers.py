"""The events the checkout service reacts to."""

from services.checkout import handlers
from shared import topics
from shared.messaging.consumer import Batch

CONSUMES = (topics.ORDERS, topics.AFTER_SALES)

# One Batch for both: the orders service publishes them interleaved, order after order.
ORDER_EVENTS = Batch(handlers.on_order_events)

HANDLERS = {
    "OrderReadyForCheckout": ORDER_EVENTS,
    "OrderStatusChanged": ORDER_EVENTS,
    "RefundApproved": handlers.on_refund_approved,
}
