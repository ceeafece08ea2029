"""initial

Revision ID: 0001
Revises:
Create Date: 2026-11-26 11:01:20.993364
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
        "fulfillments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column(
            "payment_id", sa.Text(), nullable=False, comment="one fulfillment per paid order: unique with order_id"
        ),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column(
            "order",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="lines, packaging, address as paid",
        ),
        sa.Column("shipping_method", sa.Text(), nullable=True),
        sa.Column("carrier", sa.Text(), nullable=True),
        sa.Column("tracking_number", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillments")),
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
        "handled_events",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_handled_events")),
        schema="tracking",
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
        schema="tracking",
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
        schema="tracking",
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
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("tracking_number", sa.Text(), nullable=False),
        sa.Column("tracking_url", sa.Text(), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["fulfillment_id"], ["tracking.fulfillments.id"], name=op.f("fk_shipments_fulfillment_id_fulfillments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("fulfillment_id", name=op.f("uq_shipments_fulfillment_id")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_shipments_tracking_number")),
        schema="tracking",
    )
    op.create_index(op.f("ix_shipments_order_id"), "shipments", ["order_id"], unique=False, schema="tracking")
    for statement in notify_trigger_ddl("tracking"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS tracking.outbox_notify() CASCADE")
    op.drop_index(op.f("ix_shipments_order_id"), table_name="shipments", schema="tracking")
    op.drop_table("shipments", schema="tracking")
    op.drop_index(op.f("ix_fulfillment_history_fulfillment_id"), table_name="fulfillment_history", schema="tracking")
    op.drop_table("fulfillment_history", schema="tracking")
    op.drop_table("outbox", schema="tracking")
    op.drop_table("idempotency_keys", schema="tracking")
    op.drop_table("handled_events", schema="tracking")
    op.drop_index(op.f("ix_fulfillments_step_paid_at"), table_name="fulfillments", schema="tracking")
    op.drop_index(op.f("ix_fulfillments_order_id_payment_id"), table_name="fulfillments", schema="tracking")
    op.drop_table("fulfillments", schema="tracking")
