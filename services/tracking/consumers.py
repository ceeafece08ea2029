"""The events the tracking service reacts to."""

from services.tracking import handlers
from shared import topics

CONSUMES = (topics.PAYMENTS, topics.AFTER_SALES)

HANDLERS = {
    "OrderPaid": handlers.on_order_paid,
    "ReshipmentApproved": handlers.on_reshipment_approved,
}
