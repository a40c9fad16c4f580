"""What a simulated account is configured with, holds, and has been asked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bulkrunner.fields import Vocabulary
from bulkrunner.rates import Rate, max_in_window
from bulkrunner.simulator.faults import FaultPlan

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    api_key: str = "sim-key"
    vocabulary: Vocabulary | None = Vocabulary.DOCUMENTED  # enum names POST accepts; None: both
    rates: Sequence[Rate] = ()  # the server's true sliding-window limits; empty = unlimited
    campaigns: Collection[int] | None = None  # campaigns that exist; None = every positive id
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency: float = 0.0  # seconds every answer waits before being sent


@dataclass(frozen=True, slots=True)
class RequestRecord:
    arrival: float  # server clock at arrival, before any latency or fault sleep
    method: str
    path: str  # the URL path only: the key is in the query string
    campaign_id: int | None
    status: int | None  # status answered (even if the client had left); None: dropped
    fault: str | None  # the injected fault kind, or None
    applied: bool  # whether this request changed the stored settings


class SimulatorState:
    """What the simulated account holds and everything it has been asked, readable by tests."""

    def __init__(self) -> None:
        self.settings: dict[int, dict[str, Any]] = {}
        self.requests: list[RequestRecord] = []
        self.applied: Counter[int] = Counter()

    def posts(self) -> list[RequestRecord]:
        """The settings POSTs, in arrival order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/settings")]

    def max_in_window(self, seconds: float) -> int:
        """The most request arrivals (any route, any status) in any window of ``seconds``."""
        return max_in_window(sorted(r.arrival for r in self.requests), seconds)

    def _arrive(self, record: RequestRecord) -> int:
        self.requests.append(record)
        return len(self.requests) - 1

    def _update(self, ticket: int, **changes: Any) -> None:
        self.requests[ticket] = replace(self.requests[ticket], **changes)


def default_settings(campaign_id: int) -> dict[str, Any]:
    """Deterministic, realistic starting settings of a campaign (documented vocabulary)."""
    return {
        "track_settings": [],
        "stop_lead_settings": "REPLY_TO_AN_EMAIL",
        "sending_limit": 20 + (campaign_id * 7) % 81,
        "min_time_btwn_emails": 5 + campaign_id % 11,
        "follow_up_percentage": 40 + (campaign_id * 3) % 61,
        "unsubscribe_text": "",
        "enable_ai_esp_matching": False,
        "send_as_plain_text": False,
        "client_id": None,
    }
