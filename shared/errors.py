"""Errors that the HTTP layer turns into RFC 9457 problem documents."""

from __future__ import annotations


class ProblemError(Exception):
    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict] | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class Unauthorized(ProblemError):
    status, title = 401, "Unauthorized"


class Forbidden(ProblemError):
    status, title = 403, "Forbidden"


class NotFound(ProblemError):
    status, title = 404, "Not found"


class Conflict(ProblemError):
    """The resource's state forbids the action; the detail names the state."""

    status, title = 409, "Conflict"


class Unprocessable(ProblemError):
    status, title = 422, "Unprocessable content"


class PaymentRequired(ProblemError):
    status, title = 402, "Payment required"


class DomainError(Exception):
    """Raised by domain code (no I/O, no HTTP); handlers or routes translate it."""


class IllegalTransition(DomainError):
    """An aggregate was asked for a move its current state forbids."""

    def __init__(self, entity: str, current: str, action: str) -> None:
        super().__init__(f"cannot {action}: {entity} is {current}")
        self.current = current
        self.action = action
