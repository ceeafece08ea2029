"""Reading store payloads: what both platforms' normalisers share. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class UnusableOrder(ValueError):
    """The payload parses but lacks what we need; `field` names what is missing or wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def require(data: dict[str, Any], field: str, path: str = "") -> Any:
    value = data.get(field)
    if value is None or value == "":
        raise UnusableOrder(path + field, "is required")
    return value


def decimal(value: Any, field: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise UnusableOrder(field, f"is not a decimal number: {value!r}") from exc


def aware_time(value: Any, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnusableOrder(field, f"is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise UnusableOrder(field, "has no UTC offset")
    return parsed


def parse_time(value: Any) -> datetime | None:
    """A lenient reading for optional times: None when absent or unreadable."""
    try:
        return None if value in (None, "") else aware_time(value, "time")
    except UnusableOrder:
        return None


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Cancellation:
    external_order_id: str
    reason: str | None
    cancelled_at: datetime | None
