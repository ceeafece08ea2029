"""Opaque keyset cursors: the position of the last item of a page, base64url-encoded."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from shared.errors import Unprocessable


def encode_cursor(*position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode()


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The position a cursor holds, checked against the kinds it must have (str, int or an aware datetime), so
    that a cursor this API did not issue is a 422 and never reaches the database."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(value, list) or len(value) != len(kinds):
            raise ValueError("wrong shape")
        return tuple(_as(kind, item) for kind, item in zip(kinds, value, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Unprocessable("the cursor is not one this API issued", errors=[{"field": "cursor"}]) from exc


def _as(kind: type, item: object) -> object:
    if kind is datetime:
        if not isinstance(item, str):
            raise TypeError("not a time")
        moment = datetime.fromisoformat(item)
        if moment.tzinfo is None:
            raise ValueError("not an aware time")
        return moment
    if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
        raise TypeError("not an integer")
    if kind is str and not isinstance(item, str):
        raise TypeError("not a string")
    return item
