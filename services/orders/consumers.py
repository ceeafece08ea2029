"""The events the orders service reacts to."""

from services.orders import handlers
from shared import topics
from shared.messaging.consumer import Batch

CONSUMES = (topics.STORE_ORDERS, topics.PAYMENTS, topics.FULFILLMENT)

HANDLERS = {
    "OrderSynced": Batch(handlers.on_orders_synced),
    "StoreOrderCancelled": handlers.on_store_order_cancelled,
    "PaymentStarted": handlers.on_payment_started,
    "OrderPaid": handlers.on_order_paid,
    "PaymentFailed": handlers.on_payment_failed,
    "RefundCompleted": handlers.on_refund_completed,
    "RefundFailed": handlers.on_refund_failed,
    "OrderShipped": handlers.on_order_shipped,
    "ShipmentStatusChanged": handlers.on_shipment_status_changed,
}
