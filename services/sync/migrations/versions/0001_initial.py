"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:59:14.957443
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.messaging.outbox import notify_trigger_ddl

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handled_events",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_handled_events")),
        schema="sync",
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text(), nullable=False, comment="merchant id and operation"),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True, comment="the first answer's body, replayed byte for byte"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
        schema="sync",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False, comment="the event as JSON, published byte for byte"),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("available_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        schema="sync",
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column(
            "shop_domain",
            sa.Text(),
            nullable=False,
            comment="name.myshopify.com, or the WooCommerce site host",
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False, comment="Fernet-encrypted JSON"),
        sa.Column("webhook_secret", sa.Text(), nullable=False, comment="Fernet-encrypted"),
        sa.Column("status", sa.Text(), server_default="connected", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
        sa.UniqueConstraint("platform", "shop_domain", name=op.f("uq_stores_platform")),
        schema="sync",
    )
    op.create_index(op.f("ix_stores_merchant_id"), "stores", ["merchant_id"], unique=False, schema="sync")
    op.create_table(
        "store_orders",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("external_order_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("store_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("financial_status", sa.Text(), nullable=False),
        sa.Column("synced", sa.Text(), nullable=False, comment="'yes', or why the order was skipped"),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment="the normalised order"),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["sync.stores.id"], name=op.f("fk_store_orders_store_id_stores")),
        sa.PrimaryKeyConstraint("store_id", "external_order_id", name=op.f("pk_store_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_store_orders_order_id")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_store_orders_store_id_store_updated_at"),
        "store_orders",
        ["store_id", "store_updated_at"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column(
            "delivery_key",
            sa.Text(),
            nullable=False,
            comment="X-Shopify-Webhook-Id, or Woo order id + modified time",
        ),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["sync.stores.id"], name=op.f("fk_webhook_deliveries_store_id_stores")),
        sa.PrimaryKeyConstraint("store_id", "delivery_key", name=op.f("pk_webhook_deliveries")),
        schema="sync",
    )
    for statement in notify_trigger_ddl("sync"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS sync.outbox_notify() CASCADE")
    op.drop_table("webhook_deliveries", schema="sync")
    op.drop_index(op.f("ix_store_orders_store_id_store_updated_at"), table_name="store_orders", schema="sync")
    op.drop_table("store_orders", schema="sync")
    op.drop_index(op.f("ix_stores_merchant_id"), table_name="stores", schema="sync")
    op.drop_table("stores", schema="sync")
    op.drop_table("outbox", schema="sync")
    op.drop_table("idempotency_keys", schema="sync")
    op.drop_table("handled_events", schema="sync")
