"""handled events by age, so that those older than the retention can be pruned

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 18:20:00
"""

from collections.abc import Sequence

from shared.migrations import drop_handled_events_by_age, index_handled_events_by_age

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_handled_events_by_age("checkout")


def downgrade() -> None:
    drop_handled_events_by_age("checkout")
