"""The events the checkout service reacts to."""

from services.checkout import handlers
from shared import topics

CONSUMES = (topics.ORDERS,)

HANDLERS = {
    "OrderReadyForCheckout": handlers.on_order_ready,
    "OrderStatusChanged": handlers.on_order_status_changed,
    "RefundApproved": handlers.on_refund_approved,
}
