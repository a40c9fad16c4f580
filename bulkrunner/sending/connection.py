"""One account's way to SmartLead: every request of a run goes through it.

    request ──▶ pool (``--concurrency``) ──▶ limiter (the account's windows) ──▶ sender
       ▲                                                                          │ answer
       └──── sleep (the retry policy's delay) ◀── Policy.after ◀── counted, observed ◀┘

The writes (``engine``), the reads before sending (``reads``), ``--verify``'s read-backs
(``verify``) and ``export``'s reads all take a slot of the same pool and of the same limiter,
are counted in the same ``RunStats``, and are retried by the same ``Policy``: a 429 holds the
whole key back, Retry-After is a floor, ``--max-wait`` and ``--outage-timeout`` bound every
wait. A run has one connection per account (a run without an accounts file has one account).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from bulkrunner.config.accounts import Account
from bulkrunner.config.folders import account_id
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import WaitTooLong
from bulkrunner.limits.limiter import Grant, SlidingWindowLimiter
from bulkrunner.limits.rates import above_published
from bulkrunner.model import REAL_CLOCK, Answer, Clock, RunStats
from bulkrunner.records.budget import AccountBudget, Ledger
from bulkrunner.records.store import StateStore
from bulkrunner.sending.retry import Final, Next, Outage, Policy

if TYPE_CHECKING:  # a type only: aiohttp is imported by the commands that send
    from bulkrunner.sending.transport import Sender

log = logging.getLogger("bulkrunner")

Call = Callable[[], Awaitable[Answer]]


@dataclass
class Connection:
    """The sender, limiter, pool and retry policy of one account, and what its requests cost."""

    sender: Sender
    limiter: SlidingWindowLimiter
    policy: Policy = field(default_factory=Policy)
    concurrency: int = 4
    clock: Clock = REAL_CLOCK  # its sleep waits out the retries (the limiter has its own)
    rng: random.Random = field(default_factory=random.Random)
    stats: RunStats = field(default_factory=RunStats)
    account: Account | None = None
    pool: anyio.CapacityLimiter = field(init=False)
    outage: Outage = field(init=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        self.pool = anyio.CapacityLimiter(self.concurrency)
        self.phase()

    @property
    def name(self) -> str | None:
        """The account's name; None for the one key of a run without an accounts file."""
        return (self.account.name or None) if self.account is not None else None

    def phase(self) -> None:
        """A phase of requests begins (a batch's reads, its writes, its read-backs): the outage
        timeout counts from here."""
        self.outage = Outage(self.policy.outage_timeout, self.clock.monotonic())

    async def attempt(
        self,
        call: Call,
        *,
        read: bool,
        waiting: anyio.CancelScope | None = None,
        sending: Callable[[Grant], bool] | None = None,
    ) -> tuple[Grant, Answer] | None:
        """One try of ``call``: a slot of the pool and of the limiter, then the request,
        counted in ``stats`` (as sent before its answer: one abandoned in flight may have been
        applied). None when ``waiting`` was cancelled before a slot came, or ``sending(grant)``,
        told just before the request goes, says it must not. Raises WaitTooLong for a slot
        further off than --max-wait."""
        waiting = waiting or anyio.CancelScope()
        held = sent = False
        try:
            with waiting:
                await self.pool.acquire()
                held = True
                grant = await self.limiter.acquire(self.policy.max_wait)
            if waiting.cancelled_caught or (sending is not None and not sending(grant)):
                return None
            stats = self.stats
            stats.requests += 1
            stats.reads += read
            if stats.first_request is None or grant.at < stats.first_request:
                stats.first_request = grant.at
            sent = True
            answer = await call()
            stats.throttled += answer.status == 429
            if self.limiter.shared is not None:
                stats.others = self.limiter.shared.others_sent
            return grant, answer
        finally:
            if sent:  # answered, or cut off in flight: the run's time runs to then
                now = self.clock.monotonic()
                if self.stats.last_answer is None or now > self.stats.last_answer:
                    self.stats.last_answer = now
            if held:
                self.pool.release()

    def after(self, answer: Answer, grant: Grant, attempt: int, final: Final | None = None) -> Next:
        """What follows ``answer`` (to try ``attempt``, granted ``grant``; ``final``: the
        operation's word on a retryable answer): the server's word on its limits is taken, and
        a 429 holds the whole key back."""
        stopped: WaitTooLong | None = None
        try:
            self.limiter.observe(
                answer.limit, answer.remaining, answer.reset, grant, max_pause=self.policy.max_wait
            )
        except WaitTooLong as wait:  # a budget that renews later than --max-wait
            stopped = wait
        now = self.clock.monotonic()
        step = self.policy.after(answer, attempt, self.rng, self.outage, now, final)
        if stopped is not None:
            return Next(step.decision, stop=stopped)
        if step.pause:
            self.limiter.pause(step.pause)
            self.limiter.throttled()
        return step

    async def fetch(self, call: Call, what: str) -> Answer:
        """A read, retried as the policy says; returns its last answer. A refused connection is
        not retried (nothing listens there: the caller says so). Raises WaitTooLong or
        Unavailable (``errors``) when waiting would break --max-wait or --outage-timeout."""
        attempt = 0
        while True:
            tried = await self.attempt(call, read=True)
            assert tried is not None  # nothing cancels a read's wait but the run itself
            grant, answer = tried
            attempt += 1
            said = answer.status if answer.status is not None else answer.transport_error
            log.debug("%s: %s", what, said)  # -v: every read and its answer, as every write's
            if answer.refused:
                return answer
            step = self.after(answer, grant, attempt)
            if step.stop is not None:
                raise step.stop
            if step.delay is None:
                return answer
            self.stats.retries += 1
            log.info(
                "%s: retry in %.1fs (attempt %d of %d) after %s",
                what,
                step.delay,
                attempt + 1,
                self.policy.max_attempts,
                step.decision.message,
            )
            await self.clock.sleep(step.delay)


def policy(config: RunConfig) -> Policy:
    """The retry policy of ``config``'s run."""
    return Policy(config.max_attempts, config.max_wait, config.outage_timeout)


@contextlib.asynccontextmanager
async def connect(
    config: RunConfig,
    account: Account,
    clock: Clock = REAL_CLOCK,
    campaigns: Collection[int] = (),
    *,
    faults: bool = True,
    store: StateStore | None = None,
) -> AsyncIterator[Connection]:
    """The connection of ``account`` for the run of ``config``: its HTTP client, limiter and
    pool, open while entered (with --simulate, to an embedded simulator of ``campaigns``, a
    few of which answer 429 or 503 first, with ``faults``). With a ``store``, its limiter
    shares the account's budget with every process (``records.budget``); not a simulator's,
    which each run has its own of."""
    from bulkrunner.sending.transport import HttpSender, client_session

    async with contextlib.AsyncExitStack() as stack:
        base_url, key = account.base_url, account.key
        if config.simulate:
            from bulkrunner.sending.demo import DEMO_API_KEY, simulated

            simulator = simulated(config, campaigns, clock, faults=faults, account=account.name)
            base_url = await stack.enter_async_context(simulator)
            key = DEMO_API_KEY
        elif above := above_published(account.rates):
            log.warning("%s%s", f"account {account.name}: " if account.name else "", above)
        session = await stack.enter_async_context(client_session(config.concurrency))
        budget = None
        if store is not None and not config.simulate:
            budget = AccountBudget(Ledger(store), account_id(base_url, key), clock.offset)
        limiter = SlidingWindowLimiter(
            account.rates,
            guard=config.guard,
            clock=clock.monotonic,
            sleep=clock.sleep,
            budget=budget,
        )
        yield Connection(
            HttpSender(session, base_url, key, config.timeout),
            limiter,
            policy(config),
            config.concurrency,
            clock,
            account=account,
        )
