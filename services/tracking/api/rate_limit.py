"""A token bucket per client, in process: enough to stop one client scraping the public tracking page. Several
instances each keep their own buckets, so the effective limit is per instance."""

from __future__ import annotations

import math
import time
from collections import OrderedDict


class TokenBuckets:
    def __init__(self, rate_per_second: float, burst: int, max_clients: int = 100_000) -> None:
        self._rate, self._burst, self._max = rate_per_second, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def take(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead; otherwise the seconds until it may (Retry-After)."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(client, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._max:  # forget the least recently seen client (its bucket was refilling)
            self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
