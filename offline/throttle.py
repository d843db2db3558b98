"""The stage throttle of the HTTP API: a token bucket, as API Gateway applies it.

API Gateway "throttles requests to your API using the token bucket algorithm, where a token
counts for a request": the burst limit is the bucket's size, the rate limit its refill a second,
and a request that finds it empty gets 429 Too Many Requests
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ThrottleLimits:
    """The stage's DefaultRouteSettings: steady requests a second and the burst."""

    rate_per_second: float
    burst: int


class ThrottleSettingError(ValueError):
    """A throttle limit that is not a positive number; the message names the setting."""


def stage_limits(template: Mapping[str, Any], environ: Mapping[str, str]) -> ThrottleLimits:
    """The template's ApiRateLimit and ApiBurstLimit defaults, or API_RATE_LIMIT and
    API_BURST_LIMIT from the environment."""
    parameters = template.get("Parameters", {})
    rate = _positive(environ.get("API_RATE_LIMIT"), parameters["ApiRateLimit"], "API_RATE_LIMIT")
    burst = _positive(
        environ.get("API_BURST_LIMIT"), parameters["ApiBurstLimit"], "API_BURST_LIMIT"
    )
    if burst != int(burst):
        raise ThrottleSettingError(f"API_BURST_LIMIT must be a whole number, not {burst:g}")
    return ThrottleLimits(rate_per_second=rate, burst=int(burst))


def _positive(text: str | None, parameter: Mapping[str, Any], name: str) -> float:
    value = text if text else str(parameter["Default"])
    try:
        number = float(value)
    except ValueError:
        raise ThrottleSettingError(f"{name} must be a positive number, not {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ThrottleSettingError(f"{name} must be a positive number, not {value!r}")
    return number


class TokenBucket:
    """Full at start; `take` spends a token if there is one. Safe across threads."""

    def __init__(self, limits: ThrottleLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._tokens = float(limits.burst)
        self._refilled_at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(
                float(self.limits.burst), self._tokens + elapsed * self.limits.rate_per_second
            )
            self._refilled_at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
