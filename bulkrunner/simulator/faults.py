"""Which fault, if any, a write (settings, schedule, status, email accounts) to the simulated
server suffers.

``FaultPicker`` is pure and driven by seeded randomness: the campaign's script first, then one
weighted random draw over the ``FaultPlan``'s probabilities.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Each fault a write may suffer (``bulkrunner simulate --fault-KIND P``): a 429 in the shape of
# the rate limit's, a 500 (JSON), a 503 (plain text), a slow answer, a dropped connection. The
# module imports nothing a command line's help would not: `simulate --help` lists them.
FAULT_KINDS = ("429", "500", "503", "slow", "drop")
FaultKind = str  # one of FAULT_KINDS
NO_FAULT = "ok"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults the simulator injects into writes (see the field comments)."""

    # FaultKind -> probability per write; at most one fault per request, so the total is <= 1.
    probabilities: Mapping[str, float] = field(default_factory=dict)
    # campaign_id -> faults for its successive writes of any operation, in order; "ok" means no
    # fault. After the list runs out there is no scripted fault (probabilities apply again).
    scripted: Mapping[int, Sequence[str]] = field(default_factory=dict)
    seed: int | None = None  # seeds the random.Random behind the probabilistic faults
    retry_after: float = 1.0  # seconds announced on an injected 429
    slow_seconds: float = 35.0  # how long a "slow" answer waits (past the client's timeout)
    slow_applies: bool = False  # whether a slow request still applies its write

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
    """Chooses the fault of each write according to a ``FaultPlan``."""

    def __init__(self, plan: FaultPlan) -> None:
        self._plan = plan
        self._random = random.Random(plan.seed)
        self._posts: Counter[int] = Counter()

    def choose(self, campaign_id: int | None) -> FaultKind | None:
        """The fault for the next write to ``campaign_id`` (None: no fault)."""
        if campaign_id is not None:
            script = self._plan.scripted.get(campaign_id, ())
            position = self._posts[campaign_id]
            self._posts[campaign_id] += 1
            if position < len(script):
                kind = script[position]
                return None if kind == NO_FAULT else kind
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
