"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-26 10:59:14.957443
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
        sa.Column("api_url", sa.Text(), nullable=False, comment="where the store's admin API answers"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False, comment="Fernet-encrypted JSON"),
        sa.Column("webhook_secret", sa.Text(), nullable=False, comment="Fernet-encrypted"),
        sa.Column(
            "status",
            sa.Text(),
            server_default="connected",
            nullable=False,
            comment="connected, disconnected, removed",
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="StoreSettings",
        ),
        sa.Column(
            "sync_cursor",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the newest store updated_at a completed sync has seen",
        ),
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
        sa.Column("synced", sa.Text(), nullable=False, comment="'yes', 'cancelled', or why the order was skipped"),
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
    op.create_table(
        "sync_jobs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False, comment="manual or schedule"),
        sa.Column("status", sa.Text(), nullable=False, comment="running, succeeded, failed"),
        sa.Column("pages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("new", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancelled", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "skipped_reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="reason -> count",
        ),
        sa.Column(
            "errors", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["sync.stores.id"], name=op.f("fk_sync_jobs_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_jobs")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_sync_jobs_store_id_started_at"), "sync_jobs", ["store_id", "started_at"], unique=False, schema="sync"
    )
    op.create_index(
        "uq_sync_jobs_running_store",
        "sync_jobs",
        ["store_id"],
        unique=True,
        schema="sync",
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "tracking_pushes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("shipment_id", sa.Text(), nullable=False, comment="one push per shipment, ever"),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("external_order_id", sa.Text(), nullable=False),
        sa.Column("reshipment_id", sa.Text(), nullable=True),
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("tracking_number", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False, comment="pending, done, failed"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "attempt_log",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
            comment="[{at, status, error}]",
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("external_ref", sa.Text(), nullable=True, comment="the store's fulfillment or tracking id"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["store_id"], ["sync.stores.id"], name=op.f("fk_tracking_pushes_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_pushes")),
        sa.UniqueConstraint("shipment_id", name=op.f("uq_tracking_pushes_shipment_id")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_tracking_pushes_merchant_id_status"),
        "tracking_pushes",
        ["merchant_id", "status"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_tracking_pushes_status_next_attempt_at"),
        "tracking_pushes",
        ["status", "next_attempt_at"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "webhook_failures",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("store_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=False, comment="what the payload lacked"),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, comment="the raw body, kept so nothing is lost"),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["sync.stores.id"], name=op.f("fk_webhook_failures_store_id_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_failures")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_webhook_failures_merchant_id_received_at"),
        "webhook_failures",
        ["merchant_id", "received_at"],
        unique=False,
        schema="sync",
    )
    create_messaging_tables("sync")


def downgrade() -> None:
    drop_messaging_tables("sync")
    op.drop_table("webhook_failures", schema="sync")
    op.drop_table("tracking_pushes", schema="sync")
    op.drop_table("sync_jobs", schema="sync")
    op.drop_table("webhook_deliveries", schema="sync")
    op.drop_index(op.f("ix_store_orders_store_id_store_updated_at"), table_name="store_orders", schema="sync")
    op.drop_table("store_orders", schema="sync")
    op.drop_index(op.f("ix_stores_merchant_id"), table_name="stores", schema="sync")
    op.drop_table("stores", schema="sync")
