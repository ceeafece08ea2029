from datetime import UTC, datetime

import pytest

from shared.errors import Unprocessable
from shared.pagination import decode_cursor, encode_cursor


def test_a_cursor_gives_back_its_position():
    at = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at.isoformat(), "o1"), datetime, str) == (at, "o1")
    assert decode_cursor(encode_cursor(3, "r1"), int, str) == (3, "r1")


@pytest.mark.parametrize(
    ("cursor", "kinds"),
    [
        ("not base64 at all!", (datetime, str)),
        (encode_cursor("o1"), (datetime, str)),  # too short
        (encode_cursor("2026-11-26T12:00:00", "o1"), (datetime, str)),  # a naive time
        (encode_cursor("yesterday", "o1"), (datetime, str)),
        (encode_cursor(1, 2), (int, str)),  # wrong kind
        (encode_cursor(True, "r1"), (int, str)),  # a bool is no integer
        ("WyJ4Il0", (str,)),  # ["x"] without its padding
    ],
)
def test_a_cursor_this_api_did_not_issue_is_refused(cursor, kinds):
    with pytest.raises(Unprocessable):
        decode_cursor(cursor, *kinds)
