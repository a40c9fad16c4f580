"""Several accounts' sessions run together, in one event loop: one :class:`Sending` per account
(its own key, limits, preflight read, backup records and 429 pauses), so N accounts take about
the time of the slowest. The accounts file and what belongs to it are in ``bulkrunner.accounts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import anyio

from bulkrunner.accounts import Account
from bulkrunner.config import RunConfig
from bulkrunner.current import Change
from bulkrunner.engine import OutcomeHook, RunStats
from bulkrunner.interrupts import run_gracefully
from bulkrunner.outcomes import Outcome
from bulkrunner.sending import Sending, SharedBackup
from bulkrunner.validation import Row


@dataclass
class AccountsSending:
    """The sessions of several accounts run at once: ``asyncio.run(sending.run())``, then
    ``outcomes()``, ``stats`` and ``by_account`` after any end, as for one ``Sending``."""

    config: RunConfig
    accounts: Mapping[str, Account]
    keys: Mapping[str, str] = field(repr=False)
    rows: Sequence[Row]
    on_outcome: OutcomeHook | None = None
    signals: int = 0
    sessions: dict[str, Sending] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shared = SharedBackup()
        for name, account in self.accounts.items():
            mine = [row for row in self.rows if row.account == name]
            if not mine:
                continue
            config = replace(self.config, base_url=account.base_url, rates=account.rates)
            self.sessions[name] = Sending(
                config,
                self.keys[name],
                mine,
                on_outcome=self.on_outcome,
                account=name,
                shared_backup=shared,
                watch=False,
            )

    @property
    def by_account(self) -> dict[str, RunStats]:
        return {name: session.stats for name, session in self.sessions.items()}

    @property
    def stats(self) -> RunStats:
        """Every account's requests together; the run aborted if any account did."""
        every = list(self.by_account.items())
        firsts = [s.first_request for _, s in every if s.first_request is not None]
        lasts = [s.last_answer for _, s in every if s.last_answer is not None]
        aborted = [f"account {name}: {s.aborted}" for name, s in every if s.aborted]
        return RunStats(
            requests=sum(s.requests for _, s in every),
            throttled=sum(s.throttled for _, s in every),
            retries=sum(s.retries for _, s in every),
            first_request=min(firsts) if firsts else None,
            last_answer=max(lasts) if lasts else None,
            aborted="; ".join(aborted) or None,
        )

    def outcomes(self) -> dict[int, Outcome]:
        result: dict[int, Outcome] = {}
        for session in self.sessions.values():
            result.update(session.outcomes())
        return result

    def changes(self) -> dict[int, dict[str, Change]]:
        result: dict[int, dict[str, Change]] = {}
        for session in self.sessions.values():
            if session.plan is not None:
                result.update({n: dict(c) for n, c in session.plan.changes.items()})
        return result

    def stop(self, reason: str) -> None:
        for session in self.sessions.values():
            if session.engine is not None:
                session.engine.stop(reason)

    def halt(self, reason: str) -> bool:
        self.stop(reason)
        return True

    async def run(self) -> None:
        await run_gracefully(self, self._send_all, self.config.grace)

    async def _send_all(self) -> None:
        async with anyio.create_task_group() as group:
            for session in self.sessions.values():
                group.start_soon(session.send)
