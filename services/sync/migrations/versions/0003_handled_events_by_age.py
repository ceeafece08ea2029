"""handled events by age, so that those older than the retention can be pruned

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 18:20:00
"""

from collections.abc import Sequence

from shared.migrations import drop_handled_events_by_age, index_handled_events_by_age

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    index_handled_events_by_age("sync")


def downgrade() -> None:
    drop_handled_events_by_age("sync")
