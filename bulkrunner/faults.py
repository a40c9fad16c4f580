"""How the simulated SmartLead server refuses or mangles a request.

Two sources, both pure and driven by the caller's clock and seeded randomness:

* ``ServerRateLimit`` enforces the server's true limits, "at most N requests in any window
  of S seconds", with a log of admitted arrival times. A rejected request is not admitted, so it
  does not consume budget.
* ``FaultPicker`` decides which fault, if any, a settings POST suffers: the campaign's script
  first, then one weighted random draw.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from bulkrunner.rates import Rate

FaultKind = Literal["429", "500", "503", "slow", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
NO_FAULT = "ok"


def whole_seconds(seconds: float) -> int:
    """``seconds`` as announced in ``Retry-After``: rounded up to whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults the simulator injects into settings POSTs (see the field comments)."""

    # FaultKind -> probability per POST; at most one fault per request, so the total is <= 1.
    probabilities: Mapping[str, float] = field(default_factory=dict)
    # campaign_id -> faults for its successive POSTs, in order; "ok" means no fault. After the
    # list runs out there is no scripted fault (probabilities apply again).
    scripted: Mapping[int, Sequence[str]] = field(default_factory=dict)
    seed: int | None = None  # seeds the random.Random behind the probabilistic faults
    retry_after: float = 1.0  # seconds announced on an injected 429
    slow_seconds: float = 35.0  # how long a "slow" answer waits (past the client's timeout)
    slow_applies: bool = False  # whether a slow request still applies the settings

    def __post_init__(self) -> None:
        for kind, probability in self.probabilities.items():
            _check_kind(kind, allow_ok=False)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"fault probability for {kind!r} must be in [0, 1]")
        if sum(self.probabilities.values()) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must add up to at most 1")
        for faults in self.scripted.values():
            for kind in faults:
                _check_kind(kind, allow_ok=True)
        if not (self.retry_after >= 0 and math.isfinite(self.retry_after)):
            raise ValueError(f"retry_after must be a finite number >= 0, got {self.retry_after}")
        if not self.slow_seconds >= 0:
            raise ValueError(f"slow_seconds must be >= 0, got {self.slow_seconds}")


def _check_kind(kind: str, *, allow_ok: bool) -> None:
    allowed = (*FAULT_KINDS, NO_FAULT) if allow_ok else FAULT_KINDS
    if kind not in allowed:
        raise ValueError(f"unknown fault {kind!r}: expected one of {', '.join(allowed)}")


class FaultPicker:
    """Chooses the fault of each settings POST according to a ``FaultPlan``."""

    def __init__(self, plan: FaultPlan) -> None:
        self._plan = plan
        self._random = random.Random(plan.seed)
        self._posts: Counter[int] = Counter()

    def choose(self, campaign_id: int | None) -> FaultKind | None:
        """The fault for the next POST to ``campaign_id`` (None: no fault)."""
        if campaign_id is not None:
            script = self._plan.scripted.get(campaign_id, ())
            position = self._posts[campaign_id]
            self._posts[campaign_id] += 1
            if position < len(script):
                kind = script[position]
                return None if kind == NO_FAULT else cast(FaultKind, kind)
        return self._draw()

    def _draw(self) -> FaultKind | None:
        if not self._plan.probabilities:
            return None
        draw = self._random.random()
        total = 0.0
        for kind in FAULT_KINDS:
            total += self._plan.probabilities.get(kind, 0.0)
            if draw < total:
                return kind
        return None


@dataclass(frozen=True, slots=True)
class Admission:
    """The limiter's verdict on one arrival, with the ``X-RateLimit-*`` numbers to announce."""

    admitted: bool
    retry_after: int = 0  # whole seconds until a retry would be admitted; 0 when admitted
    limit: int | None = None  # the tightest rate's limit; None when unlimited
    remaining: int = 0
    reset: int = 0  # whole seconds until the oldest request in that window expires

    def headers(self) -> dict[str, str]:
        if self.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class ServerRateLimit:
    """A sliding-window log over admitted arrivals; a window of S seconds ending at ``now`` holds
    the arrivals in ``(now - S, now]``, matching ``rates.max_in_window``'s half-open windows."""

    def __init__(self, rates: Sequence[Rate]) -> None:
        self._rates = tuple(rates)
        self._horizon = max((rate.seconds for rate in self._rates), default=0.0)
        self._log: list[float] = []

    def admit(self, now: float) -> Admission:
        if not self._rates:
            return Admission(admitted=True)
        del self._log[: bisect.bisect_right(self._log, now - self._horizon)]
        wait, rate = max(
            ((self._wait(rate, now), rate) for rate in self._rates), key=lambda item: item[0]
        )
        if wait > 0:
            retry = whole_seconds(wait)
            return Admission(False, retry, rate.limit, remaining=0, reset=retry)
        bisect.insort(self._log, now)
        return self._tightest(now)

    def _window(self, rate: Rate, now: float) -> list[float]:
        return self._log[bisect.bisect_right(self._log, now - rate.seconds) :]

    def _wait(self, rate: Rate, now: float) -> float:
        """Seconds until one more arrival fits ``rate`` (0 if it fits now)."""
        window = self._window(rate, now)
        if len(window) < rate.limit:
            return 0.0
        return max(window[len(window) - rate.limit] + rate.seconds - now, 1e-9)

    def _tightest(self, now: float) -> Admission:
        def remaining(rate: Rate) -> tuple[int, float]:
            return rate.limit - len(self._window(rate, now)), rate.per_second

        rate = min(self._rates, key=remaining)
        window = self._window(rate, now)
        reset = math.ceil(window[0] + rate.seconds - now) if window else 0
        return Admission(True, 0, rate.limit, remaining(rate)[0], reset)
