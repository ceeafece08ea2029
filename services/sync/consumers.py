"""The events the sync service reacts to."""

from services.sync import handlers
from shared import topics

CONSUMES = (topics.FULFILLMENT,)

HANDLERS = {
    "OrderShipped": handlers.on_order_shipped,
}
