"""A merchant's quote request for a store product nobody connected yet: to_claim -> processing -> finished, or
declined with a reason. Answering it (finished) connects the product."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import IllegalTransition


class QuoteStatus(StrEnum):
    TO_CLAIM = "to_claim"
    PROCESSING = "processing"
    FINISHED = "finished"
    DECLINED = "declined"


_MOVES = {
    "claim": ({QuoteStatus.TO_CLAIM}, QuoteStatus.PROCESSING),
    "answer": ({QuoteStatus.TO_CLAIM, QuoteStatus.PROCESSING}, QuoteStatus.FINISHED),
    "decline": ({QuoteStatus.TO_CLAIM, QuoteStatus.PROCESSING}, QuoteStatus.DECLINED),
}


def move(current: QuoteStatus, action: str) -> QuoteStatus:
    """The status after `action`; raises IllegalTransition when the current status forbids it."""
    allowed, to = _MOVES[action]
    if current not in allowed:
        raise IllegalTransition("quote", current, f"{action} the quote")
    return to
