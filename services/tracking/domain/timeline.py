"""A shipment's carrier timeline: checkpoints ordered by when the carrier scanned them, not by when the webhook
arrived, so the current status is the latest scan's even when events come out of order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Statuses others must hear about (orders shows them, the store may react).
ANNOUNCED = frozenset({"Delivered", "Exception"})


@dataclass(frozen=True)
class Checkpoint:
    at: datetime
    status: str
    message: str = ""
    location: str = ""
    country: str = ""


def ordered(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    return sorted(checkpoints, key=lambda c: c.at)


def current(checkpoints: list[Checkpoint]) -> Checkpoint | None:
    """The latest scan; on a tie the one listed last wins (carriers list a scan's outcome after its arrival)."""
    return max(reversed(checkpoints), key=lambda c: c.at, default=None)


def announcement(before: str | None, after: Checkpoint | None) -> Checkpoint | None:
    """The checkpoint to publish when the current status became one others must hear about."""
    if after is not None and after.status in ANNOUNCED and after.status != before:
        return after
    return None
