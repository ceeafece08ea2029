from sqlalchemy import Column, ForeignKey, Index, Table, Text, UniqueConstraint, func
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
    Column("name", Text, nullable=False),
    Column("credentials", Text, nullable=False, comment="Fernet-encrypted JSON"),
    Column("webhook_secret", Text, nullable=False, comment="Fernet-encrypted"),
    Column("status", Text, nullable=False, server_default="connected"),
    Column("status_reason", Text),
    Timestamp("created_at", nullable=False, server_default=func.now()),
    UniqueConstraint("platform", "shop_domain"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("store_id", Text, ForeignKey("sync.stores.id"), primary_key=True),
    Column("delivery_key", Text, primary_key=True, comment="X-Shopify-Webhook-Id, or Woo order id + modified time"),
    Column("topic", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Timestamp("received_at", nullable=False, server_default=func.now()),
)

store_orders = Table(
    "store_orders",
    metadata,
    Column("store_id", Text, ForeignKey("sync.stores.id"), primary_key=True),
    Column("external_order_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False, unique=True),
    Timestamp("store_updated_at", nullable=False),
    Column("financial_status", Text, nullable=False),
    Column("synced", Text, nullable=False, comment="'yes', or why the order was skipped"),
    Column("payload", JSONB, nullable=False, comment="the normalised order"),
    Timestamp("first_seen_at", nullable=False, server_default=func.now()),
    Index(None, "store_id", "store_updated_at"),
)

outbox, handled_events, idempotency_keys = common_tables(metadata)
