"""The events the tracking service reacts to."""

from services.tracking import handlers
from shared import topics

CONSUMES = (topics.PAYMENTS,)

HANDLERS = {
    "OrderPaid": handlers.on_order_paid,
}
