from sqlalchemy import Column, ForeignKey, Index, Integer, Table, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB

from services.sync.settings import SyncSettings
from shared.db import Timestamp, common_tables, service_metadata

metadata = service_metadata(SyncSettings.model_fields["db_schema"].default)

stores = Table(
    "stores",
    metadata,
    Column("id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False, index=True),
    Column("platform", Text, nullable=False),
    Column("shop_domain", Text, nullable=False, comment="name.myshopify.com, or the WooCommerce site host"),
    Column("api_url", Text, nullable=False, comment="where the store's admin API answers"),
    Column("name", Text, nullable=False),
    Column("credentials", Text, nullable=False, comment="Fernet-encrypted JSON"),
    Column("webhook_secret", Text, nullable=False, comment="Fernet-encrypted"),
    Column("status", Text, nullable=False, server_default="connected", comment="connected, disconnected, removed"),
    Column("status_reason", Text),
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment="StoreSettings"),
    Timestamp("sync_cursor", comment="the newest store updated_at a completed sync has seen"),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    UniqueConstraint("platform", "shop_domain"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("store_id", Text, ForeignKey("sync.stores.id"), primary_key=True),
    Column("delivery_key", Text, primary_key=True, comment="X-Shopify-Webhook-Id, or Woo order id + modified time"),
    Column("topic", Text, nullable=False),
    Column("outcome", Text, comment="what applying it did; null while it waits to be applied"),
    Column("payload", JSONB, comment="the normalised order or cancellation, until applied"),
    Column("external_order_id", Text),
    Timestamp("received_at", nullable=False, server_default=func.now()),
    Timestamp("applied_at"),
    # The inbox: deliveries accepted (committed, answered 200) and not yet applied to store_orders.
    Index("ix_webhook_deliveries_pending", "received_at", postgresql_where=text("applied_at IS NULL")),
    Index(None, "store_id", "received_at"),
    Index("ix_webhook_deliveries_received_at", "received_at", postgresql_using="brin"),  # pruning by age
)

webhook_failures = Table(
    "webhook_failures",
    metadata,
    Column("id", Text, primary_key=True),
    Column("store_id", Text, ForeignKey("sync.stores.id"), nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("field", Text, nullable=False, comment="what the payload lacked"),
    Column("error", Text, nullable=False),
    Column("payload", Text, nullable=False, comment="the raw body, kept so nothing is lost"),
    Timestamp("received_at", nullable=False, server_default=func.now()),
    Index(None, "merchant_id", "received_at"),
    Index("ix_webhook_failures_received_at", "received_at", postgresql_using="brin"),  # pruning by age
)

store_orders = Table(
    "store_orders",
    metadata,
    Column("store_id", Text, ForeignKey("sync.stores.id"), primary_key=True),
    Column("external_order_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False, unique=True),
    Timestamp("store_updated_at", nullable=False),
    Column("financial_status", Text, nullable=False),
    Column("synced", Text, nullable=False, comment="'yes', 'cancelled', or why the order was skipped"),
    Column("payload", JSONB, nullable=False, comment="the normalised order"),
    Timestamp("first_seen_at", nullable=False, server_default=func.now()),
    Index(None, "store_id", "store_updated_at"),
)

sync_jobs = Table(
    "sync_jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("store_id", Text, ForeignKey("sync.stores.id"), nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("trigger", Text, nullable=False, comment="manual or schedule"),
    Column("status", Text, nullable=False, comment="running, succeeded, failed"),
    Column("pages", Integer, nullable=False, server_default="0"),
    Column("new", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("cancelled", Integer, nullable=False, server_default="0"),
    Column("skipped_reasons", JSONB, nullable=False, server_default=text("'{}'::jsonb"), comment="reason -> count"),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Timestamp("started_at", nullable=False, server_default=func.now()),
    Timestamp("heartbeat_at", nullable=False, server_default=func.now()),
    Timestamp("finished_at"),
    # One running job per store: the second insert fails, whichever instance tries it.
    Index("uq_sync_jobs_running_store", "store_id", unique=True, postgresql_where=text("status = 'running'")),
    Index(None, "store_id", "started_at"),
)

tracking_pushes = Table(
    "tracking_pushes",
    metadata,
    Column("id", Text, primary_key=True),
    Column("shipment_id", Text, nullable=False, unique=True, comment="one push per shipment, ever"),
    Column("store_id", Text, ForeignKey("sync.stores.id"), nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("external_order_id", Text, nullable=False),
    Column("reshipment_id", Text),
    Column("carrier", Text, nullable=False),
    Column("tracking_number", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending", comment="pending, done, failed"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("attempt_log", JSONB, nullable=False, server_default=text("'[]'::jsonb"), comment="[{at, status, error}]"),
    Column("last_error", Text),
    Column("external_ref", Text, comment="the store's fulfillment or tracking id"),
    Timestamp("next_attempt_at", nullable=False, server_default=func.now()),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    Timestamp("done_at"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "merchant_id", "status"),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)
