"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-26 11:01:20.993364
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
        "fulfillments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column(
            "payment_id",
            sa.Text(),
            nullable=True,
            comment="one fulfillment per paid order: unique with order_id; null for a reshipment",
        ),
        sa.Column("reshipment_id", sa.Text(), nullable=True, comment="one fulfillment per approved reshipment"),
        sa.Column("reship_of", sa.Text(), nullable=True, comment="the order's first fulfillment"),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column(
            "order",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="lines, packaging, address, customer as paid",
        ),
        sa.Column(
            "shipping", postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment="the shipping choice paid for"
        ),
        sa.Column("shipping_method", sa.Text(), nullable=True),
        sa.Column("carrier", sa.Text(), nullable=True),
        sa.Column("tracking_number", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "paid_at", sa.DateTime(timezone=True), nullable=False, comment="for a reshipment: when it was approved"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["reship_of"], ["tracking.fulfillments.id"], name=op.f("fk_fulfillments_reship_of_fulfillments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillments")),
        sa.UniqueConstraint("reshipment_id", name=op.f("uq_fulfillments_reshipment_id")),
        schema="tracking",
    )
    op.create_index(
        op.f("ix_fulfillments_order_id_payment_id"),
        "fulfillments",
        ["order_id", "payment_id"],
        unique=True,
        schema="tracking",
    )
    op.create_index(
        op.f("ix_fulfillments_step_paid_at"), "fulfillments", ["step", "paid_at"], unique=False, schema="tracking"
    )
    op.create_table(
        "fulfillment_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fulfillment_id", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["fulfillment_id"],
            ["tracking.fulfillments.id"],
            name=op.f("fk_fulfillment_history_fulfillment_id_fulfillments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment_history")),
        schema="tracking",
    )
    op.create_index(
        op.f("ix_fulfillment_history_fulfillment_id"),
        "fulfillment_history",
        ["fulfillment_id"],
        unique=False,
        schema="tracking",
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("fulfillment_id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("reshipment_id", sa.Text(), nullable=True),
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("tracking_number", sa.Text(), nullable=False),
        sa.Column("tracking_url", sa.Text(), nullable=False),
        sa.Column("destination_country", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "items",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
            comment="sku, title, quantity per line",
        ),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status", sa.Text(), server_default="Pending", nullable=False, comment="the latest carrier scan's tag"
        ),
        sa.Column(
            "status_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the latest carrier scan's time; null until the first scan",
        ),
        sa.ForeignKeyConstraint(
            ["fulfillment_id"], ["tracking.fulfillments.id"], name=op.f("fk_shipments_fulfillment_id_fulfillments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("fulfillment_id", name=op.f("uq_shipments_fulfillment_id")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_shipments_tracking_number")),
        schema="tracking",
    )
    op.create_index(op.f("ix_shipments_order_id"), "shipments", ["order_id"], unique=False, schema="tracking")
    op.create_index(op.f("ix_shipments_shipped_at"), "shipments", ["shipped_at"], unique=False, schema="tracking")
    op.create_table(
        "carrier_events",
        sa.Column("event_id", sa.Text(), nullable=False, comment="the aggregator's id: a redelivery is a no-op"),
        sa.Column("tracking_number", sa.Text(), nullable=False),
        sa.Column("shipment_id", sa.Text(), nullable=True, comment="null: no shipment had the number"),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["tracking.shipments.id"], name=op.f("fk_carrier_events_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_carrier_events")),
        schema="tracking",
    )
    op.create_index(
        op.f("ix_carrier_events_shipment_id_received_at"),
        "carrier_events",
        ["shipment_id", "received_at"],
        unique=False,
        schema="tracking",
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shipment_id", sa.Text(), nullable=False),
        sa.Column("checkpoint_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("location", sa.Text(), server_default="", nullable=False),
        sa.Column("country", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["tracking.shipments.id"], name=op.f("fk_checkpoints_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        schema="tracking",
    )
    op.create_index(
        op.f("ix_checkpoints_shipment_id_checkpoint_at_status_message"),
        "checkpoints",
        ["shipment_id", "checkpoint_at", "status", "message"],
        unique=True,
        schema="tracking",
    )
    op.create_table(
        "emails",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("shipment_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("from_name", sa.Text(), server_default="", nullable=False, comment="the merchant's store name"),
        sa.Column("status", sa.Text(), nullable=False, comment="pending, sent, failed, skipped"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True, comment="why it failed, or why it was skipped"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["tracking.shipments.id"], name=op.f("fk_emails_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
        sa.UniqueConstraint("shipment_id", name=op.f("uq_emails_shipment_id")),
        schema="tracking",
    )
    op.create_index(
        op.f("ix_emails_merchant_id_created_at"),
        "emails",
        ["merchant_id", "created_at"],
        unique=False,
        schema="tracking",
    )
    op.create_index(
        op.f("ix_emails_status_next_attempt_at"),
        "emails",
        ["status", "next_attempt_at"],
        unique=False,
        schema="tracking",
    )
    create_messaging_tables("tracking")


def downgrade() -> None:
    drop_messaging_tables("tracking")
    op.drop_index(op.f("ix_emails_status_next_attempt_at"), table_name="emails", schema="tracking")
    op.drop_index(op.f("ix_emails_merchant_id_created_at"), table_name="emails", schema="tracking")
    op.drop_table("emails", schema="tracking")
    op.drop_index(
        op.f("ix_checkpoints_shipment_id_checkpoint_at_status_message"), table_name="checkpoints", schema="tracking"
    )
    op.drop_table("checkpoints", schema="tracking")
    op.drop_index(op.f("ix_carrier_events_shipment_id_received_at"), table_name="carrier_events", schema="tracking")
    op.drop_table("carrier_events", schema="tracking")
    op.drop_index(op.f("ix_shipments_shipped_at"), table_name="shipments", schema="tracking")
    op.drop_index(op.f("ix_shipments_order_id"), table_name="shipments", schema="tracking")
    op.drop_table("shipments", schema="tracking")
    op.drop_index(op.f("ix_fulfillment_history_fulfillment_id"), table_name="fulfillment_history", schema="tracking")
    op.drop_table("fulfillment_history", schema="tracking")
    op.drop_index(op.f("ix_fulfillments_step_paid_at"), table_name="fulfillments", schema="tracking")
    op.drop_index(op.f("ix_fulfillments_order_id_payment_id"), table_name="fulfillments", schema="tracking")
    op.drop_table("fulfillments", schema="tracking")
