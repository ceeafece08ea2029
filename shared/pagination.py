"""Opaque keyset cursors: the position of the last item of a page, base64url-encoded."""

from __future__ import annotations

import base64
import json

from shared.errors import Unprocessable


def encode_cursor(*position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode()


def decode_cursor(cursor: str) -> list:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("the cursor is not one this API issued", errors=[{"field": "cursor"}]) from exc
    if not isinstance(value, list):
        raise Unprocessable("the cursor is not one this API issued", errors=[{"field": "cursor"}])
    return value
