"""Aware UTC time, in one place so that no naive datetime slips in."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
