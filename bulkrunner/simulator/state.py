"""What a simulated account is configured with, holds, and has been asked."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate, count
from bulkrunner.operations.fields import ScheduleShape, Vocabulary
from bulkrunner.simulator.faults import FaultPlan
from bulkrunner.simulator.operations import Schedule

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    api_key: str = "sim-key"
    vocabulary: Vocabulary | None = Vocabulary.DOCUMENTED  # enum names POST accepts; None: both
    rates: Sequence[Rate] = ()  # the server's true sliding-window limits; empty = unlimited
    campaigns: Collection[int] | None = None  # campaigns that exist; None = every positive id
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency: float = 0.0  # seconds every answer waits before being sent
    # Inbound network jitter: each request waits uniform(0, jitter) seconds, drawn from a
    # random.Random(jitter_seed), before the server counts it (and reads its clock for it).
    jitter: float = 0.0
    jitter_seed: int | None = None
    # Retry-After (seconds) announced by the rate limit's own 429s; None: the whole seconds
    # until the window has room. SmartLead's documented 429 says "retry after 30 seconds".
    limit_retry_after: float | None = None
    # The schedule body shape POST /campaigns/{id}/schedule accepts; None: both.
    schedule_shape: ScheduleShape | None = None
    # Read scheduler_cron_value back as a string holding its JSON instead of an object.
    cron_as_string: bool = False
    sending_accounts: int = 50  # the account's sending accounts: email account ids 1..N
    bare_campaigns: Collection[int] = ()  # seeded as fresh drafts: no schedule, no accounts

    def __post_init__(self) -> None:
        if self.schedule_shape is not None and self.schedule_shape not in tuple(ScheduleShape):
            shapes = " or ".join(ScheduleShape)
            raise ValueError(
                f"schedule_shape must be {shapes} (None: both), got {self.schedule_shape!r}"
            )
        if self.sending_accounts < 0:
            raise ValueError(f"sending_accounts must be >= 0, got {self.sending_accounts}")
        if not (self.latency >= 0 and math.isfinite(self.latency)):
            raise ValueError(f"latency must be a finite number >= 0, got {self.latency}")
        if not (self.jitter >= 0 and math.isfinite(self.jitter)):
            raise ValueError(f"jitter must be a finite number >= 0, got {self.jitter}")
        after = self.limit_retry_after
        if after is not None and not (after >= 0 and math.isfinite(after)):
            raise ValueError(f"limit_retry_after must be a finite number >= 0, got {after}")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    arrival: float  # server clock when counted: after inbound jitter, before latency or faults
    method: str
    path: str  # the URL path only: the key is in the query string
    campaign_id: int | None
    status: int | None  # status answered (even if the client had left); None: dropped
    fault: str | None  # the injected fault kind, or None
    applied: bool  # whether this request was a write the account applied
    jitter: float = 0.0  # seconds of inbound jitter it waited before being counted at arrival

    @property
    def operation(self) -> str | None:
        """The write operation this request is ("settings", "schedule", "status",
        "email-accounts"), or None for a read."""
        name = self.path.rstrip("/").rpartition("/")[2]
        return name if self.method in WRITE_METHODS.get(name, ()) else None


# Each write operation (the last segment of its path) and the methods that write with it.
WRITE_METHODS: dict[str, tuple[str, ...]] = {
    "settings": ("POST",),
    "schedule": ("POST",),
    "status": ("POST",),
    "email-accounts": ("POST", "DELETE"),
}


class SimulatorState:
    """What the simulated account holds and everything it has been asked, readable by tests."""

    def __init__(self) -> None:
        # Only what writes have touched; an untouched campaign reads back its seed.
        self.settings: dict[int, dict[str, Any]] = {}
        self.schedules: dict[int, Schedule] = {}
        self.statuses: dict[int, str] = {}
        self.email_accounts: dict[int, list[int]] = {}
        self.requests: list[RequestRecord] = []
        self.applied: Counter[int] = Counter()  # campaign -> writes applied, of any operation

    def posts(self) -> list[RequestRecord]:
        """The settings POSTs, in arrival order."""
        return self.writes("settings")

    def writes(
        self, operation: str | None = None, method: str | None = None
    ) -> list[RequestRecord]:
        """The writes of ``operation`` (every operation if None), in arrival order; only those
        made with ``method`` if given (``email-accounts`` adds with POST, removes with DELETE)."""
        return [
            r
            for r in self.requests
            if r.operation is not None
            and (operation is None or r.operation == operation)
            and (method is None or r.method == method)
        ]

    def max_in_window(self, seconds: float) -> int:
        """The most request arrivals (any route, any status) in any window of ``seconds``."""
        return max_in_window(sorted(r.arrival for r in self.requests), seconds)

    def summary(self, rates: Sequence[Rate]) -> list[str]:
        """What the server saw, in a few lines: counts, 429s, and the fullest window per limit."""
        statuses = Counter(r.status for r in self.requests)
        limited = sum(1 for r in self.requests if r.status == 429 and r.fault is None)
        lines = [
            f"served {len(self.requests)} requests: "
            + ", ".join(
                f"{n} x {s if s is not None else 'dropped'}"
                for s, n in sorted(statuses.items(), key=lambda i: str(i[0]))
            ),
            f"429s: {limited} from the rate limit, {statuses[429] - limited} injected; "
            f"{count(len(self.applied), 'campaign')} applied, "
            f"{count(sum(self.applied.values()), 'time')} in all",
        ]
        arrivals = sorted(r.arrival for r in self.requests)
        for rate in rates:
            lines.append(
                f"limit {rate}: at most {max_in_window(arrivals, rate.seconds)} requests "
                f"arrived in any {rate.seconds:g}s window"
            )
        if len(arrivals) > 1:
            span = arrivals[-1] - arrivals[0]
            lines.append(f"arrivals spanned {span:.2f}s ({(len(arrivals) - 1) / span:.2f}/s)")
        if rates and len(arrivals) > 2 * (burst := min(rates, key=lambda r: r.per_second).limit):
            # Request k*N can arrive k windows after the first at the earliest, so N requests per
            # window is the long-run rate, whatever the shape of the first burst.
            whole = (len(arrivals) - 1) // burst * burst
            steady = whole / (arrivals[whole] - arrivals[0])
            ceiling = min(rate.per_second for rate in rates)
            lines.append(
                f"long-run rate: {steady:.2f}/s over {whole} requests, "
                f"{steady / ceiling:.1%} of the {ceiling:g}/s ceiling"
            )
        return lines

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
