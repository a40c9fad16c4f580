"""What a simulated account is configured with, holds, and has been asked."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate, count
from bulkrunner.operations.fields import ScheduleShape, Vocabulary
from bulkrunner.simulator.faults import FaultPlan
from bulkrunner.simulator.leads import LeadStore
from bulkrunner.simulator.operations import Schedule

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# The two forms of a lead upload's answer: counts with details, or added_count and skipped_count.
LeadAnswer = Literal["detailed", "counts"]
LEAD_ANSWERS: tuple[LeadAnswer, ...] = get_args(LeadAnswer)
# Which field of the detailed answer counts the leads added (the other counts the leads sent).
AddedField = Literal["upload_count", "total_leads"]
ADDED_FIELDS: tuple[AddedField, ...] = get_args(AddedField)


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
    # --- leads (see bulkrunner.simulator.lead_writes) ---
    lead_answer: LeadAnswer = "detailed"  # the form of an upload's answer
    lead_added_field: AddedField = "upload_count"  # the detailed field counting leads added
    leads_per_request: int = 400  # the most leads one upload may carry (documented: 100/350/400)
    lead_capacity: int | None = None  # the most leads the account holds in all; None: no limit
    # Leads each campaign starts with: a number for every campaign of ``campaigns``, or
    # campaign -> number. Computed from the campaign's id and the lead's position.
    seeded_leads: int | Mapping[int, int] = 0
    # Leads each campaign starts with, by address (after the seeded ones): campaign ->
    # addresses, each STARTED or, one in seven, PAUSED, as seeded leads are.
    named_leads: Mapping[int, Collection[str]] = field(default_factory=dict)
    # Addresses ("a@x.com") and domains ("x.com" or "@x.com") refused unless an upload says
    # ignore_global_block_list: the global list blocks in every campaign, a client's list only
    # in the campaigns whose client_id is that client.
    block_list: Collection[str] = ()
    client_block_lists: Mapping[int, Collection[str]] = field(default_factory=dict)
    bounced: Collection[str] = ()  # addresses that bounced before: never added
    unsubscribed: Collection[str] = ()  # addresses unsubscribed account-wide
    last_step_leads: Collection[str] = ()  # addresses on their last sequence step everywhere

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
        self._check_leads()

    def _check_leads(self) -> None:
        if self.lead_answer not in LEAD_ANSWERS:
            forms = ", ".join(LEAD_ANSWERS)
            raise ValueError(f"lead_answer must be one of {forms}, got {self.lead_answer!r}")
        if self.lead_added_field not in ADDED_FIELDS:
            names = ", ".join(ADDED_FIELDS)
            raise ValueError(
                f"lead_added_field must be one of {names}, got {self.lead_added_field!r}"
            )
        if self.leads_per_request < 1:
            raise ValueError(f"leads_per_request must be >= 1, got {self.leads_per_request}")
        if self.lead_capacity is not None and self.lead_capacity < 0:
            raise ValueError(f"lead_capacity must be >= 0, got {self.lead_capacity}")
        seeds = self.seeded_leads
        if isinstance(seeds, int):
            if seeds < 0:
                raise ValueError(f"seeded_leads must be >= 0, got {seeds}")
            if seeds and self.campaigns is None:
                raise ValueError(
                    "seeded_leads as a number needs the campaigns listed; "
                    "give campaign -> number instead"
                )
            return
        for campaign_id, number in seeds.items():
            if number < 0:
                raise ValueError(f"seeded_leads of campaign {campaign_id} must be >= 0")
            if campaign_id < 1 or (
                self.campaigns is not None and campaign_id not in self.campaigns
            ):
                raise ValueError(f"seeded_leads names campaign {campaign_id}, which does not exist")

    def lead_seeds(self) -> dict[int, int]:
        """How many leads each seeded campaign starts with."""
        seeds = self.seeded_leads
        if isinstance(seeds, int):
            return dict.fromkeys(sorted(self.campaigns or ()), seeds) if seeds else {}
        return {campaign_id: n for campaign_id, n in sorted(seeds.items()) if n}


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
    leads: int = 0  # leads an applied upload carried
    added: int = 0  # leads of them the account added

    @property
    def operation(self) -> str | None:
        """The write operation this request is ("settings", "schedule", "status",
        "email-accounts", "leads" for an upload, "lead-status" for a lead's pause, resume,
        unsubscribe or removal), or None for a read."""
        parts = self.path.rstrip("/").split("/")
        name = parts[-1]
        if parts[-3:-2] == ["leads"] and name in LEAD_ACTIONS:
            return "lead-status" if self.method == "POST" else None
        if parts[-4:-3] == ["campaigns"] and parts[-2] == "leads":
            return "lead-status" if self.method == "DELETE" else None
        if name == "leads" and parts[-3:-2] != ["campaigns"]:
            return None  # /leads/ itself is the search
        return name if self.method in WRITE_METHODS.get(name, ()) else None

    @property
    def action(self) -> str | None:
        """A lead-status write's action: "pause", "resume", "unsubscribe" (from one campaign, or
        from every one when ``campaign_id`` is None) or "remove"; None for any other request."""
        if self.operation != "lead-status":
            return None
        return "remove" if self.method == "DELETE" else self.path.rstrip("/").rpartition("/")[2]


# Each write operation (the last segment of its path) and the methods that write with it.
WRITE_METHODS: dict[str, tuple[str, ...]] = {
    "settings": ("POST",),
    "schedule": ("POST",),
    "status": ("POST",),
    "email-accounts": ("POST", "DELETE"),
    "leads": ("POST",),
}
LEAD_ACTIONS = ("pause", "resume", "unsubscribe")  # POST .../leads/{lead_id}/<action>


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
        self.leads = LeadStore()

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
        uploads = self.writes("leads")
        if uploads:
            carried, added = sum(r.leads for r in uploads), sum(r.added for r in uploads)
            lines.append(
                f"lead uploads: {count(len(uploads), 'request')} carrying "
                f"{count(carried, 'lead')}, {added} added; the account holds {self.leads.held}"
            )
        arrivals = sorted(r.arrival for r in self.requests)
        for rate in rates:
            lines.append(
                f"limit {rate}: at most {max_in_window(arrivals, rate.seconds)} requests "
                f"arrived in any {rate.seconds:g}s window"
            )
        if len(arrivals) > 1 and (span := arrivals[-1] - arrivals[0]) > 0:
            lines.append(f"arrivals spanned {span:.2f}s ({(len(arrivals) - 1) / span:.2f}/s)")
        if rates and len(arrivals) > 2 * (burst := min(rates, key=lambda r: r.per_second).limit):
            # Request k*N can arrive k windows after the first at the earliest, so N requests per
            # window is the long-run rate, whatever the shape of the first burst.
            whole = (len(arrivals) - 1) // burst * burst
            if (elapsed := arrivals[whole] - arrivals[0]) > 0:
                steady = whole / elapsed
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
