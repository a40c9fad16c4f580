"""Adaptive rate control for when the server's real limit is lower than the one configured.

The idea of AWS SDKs' "adaptive" retry mode (CUBIC, as in TCP congestion control):

- each 429 cuts the allowed rate to ``beta`` (0.7) times the rate that drew it;
- after a throttle the rate recovers along a cubic curve: quickly at first, then flattening as
  it nears the rate that was throttled (``last_max``), then probing above it;
- the rate never falls below ``floor``; once it climbs past ``ceiling`` (what the configured
  windows allow anyway) the controller stands aside until the next throttle.

A pure value with time passed in: tests move the clock by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

BETA = 0.7
SCALE = 0.4  # C of the cubic, in requests/s per s^3 (AWS's value)
FLOOR = 0.5  # requests/s


@dataclass(slots=True)
class AdaptiveRate:
    ceiling: float  # requests/s the configured limits allow; above it there is nothing to limit
    beta: float = BETA
    scale: float = SCALE
    floor: float = FLOOR
    last_max: float = 0.0  # the rate that drew the last throttle
    last_throttle: float | None = None  # clock time of the last throttle
    throttles: int = 0

    def on_throttle(self, now: float, sending_rate: float) -> None:
        """A 429: the rate that drew it becomes ``last_max``; the rate allowed drops to beta x."""
        current = self.rate(now)
        drawn = sending_rate if current is None else min(current, sending_rate)
        self.last_max = max(self.floor, min(drawn, self.ceiling))
        self.last_throttle = now
        self.throttles += 1

    def rate(self, now: float) -> float | None:
        """Requests per second allowed now; None when the controller does not limit."""
        if self.last_throttle is None:
            return None
        elapsed = max(0.0, now - self.last_throttle)
        k: float = (self.last_max * (1.0 - self.beta) / self.scale) ** (1.0 / 3.0)
        rate: float = self.scale * (elapsed - k) ** 3 + self.last_max
        if rate >= self.ceiling:
            return None
        return max(self.floor, rate)
