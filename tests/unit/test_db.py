"""What counts as the database being away (retried, 503) rather than the work failing (dead-lettered, 4xx/500)."""

from decimal import Decimal

import pytest
from sqlalchemy.exc import DBAPIError

from shared.db import _json_text, unavailable


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "away"),
    [
        ("57P03", True),  # the database system is shutting down / starting up
        ("57P01", True),  # terminating connection due to administrator command
        ("08006", True),  # connection failure
        ("23505", False),  # unique violation: the work's own fault
        ("40P01", False),  # deadlock: retried by the caller's own path, not an outage
    ],
)
def test_server_restarts_count_as_the_database_away(sqlstate, away):
    assert unavailable(DBAPIError("SELECT 1", {}, DriverError(sqlstate))) is away


def test_network_errors_count_as_the_database_away():
    assert unavailable(ConnectionRefusedError()) and unavailable(TimeoutError())
    assert not unavailable(ValueError("bad input"))


def test_json_columns_keep_decimals_exact():
    """Rows given to `records` travel as JSON: an amount must arrive as written, not as a binary float."""
    assert _json_text({"amount": Decimal("19.90"), "n": 1}) == '{"amount":"19.90","n":1}'
    with pytest.raises(TypeError):
        _json_text({"what": object()})
