"""``bulkrunner doctor``: one cheap read of each account, to know before a run (or from cron)
whether its key is accepted, what limits its server announces and how long it takes to answer.

The accounts are those of the accounts file (``--accounts``, a job file's ``accounts``, or the
file given in place of a job file), or, without one, the one key of ``SMARTLEAD_API_KEY`` at
``--base-url``. Each is read once, all at once: the list of its campaigns (``GET /campaigns/``,
the read every run makes first), through the account's connection as a run's reads go (its
limits, ``--timeout``, the retry policy: ``--max-attempts``, ``--max-wait``). An account is named
by its name, the variable holding its key and its server: the key itself is never shown. Exit 0
when every account answered with its list, 1 when one did not (its line says why).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

from bulkrunner.config.accounts import Account, read_accounts
from bulkrunner.config.baseurl import shown
from bulkrunner.config.environment import API_KEY_ENV, key_not_set, read_key
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import BulkrunnerError, ExitCode, Unavailable, UsageError
from bulkrunner.model import REAL_CLOCK, Answer, Clock, count
from bulkrunner.output.events import show

log = logging.getLogger("bulkrunner")


@dataclass(frozen=True, slots=True)
class Checked:
    """What one account's read found."""

    account: Account
    where: str  # the server, as shown (credentials hidden), or "the simulator"
    fine: bool
    verdict: str  # "key accepted", "key rejected", "no answer"...
    answer: Answer | None = None  # the last answer (None: no request was made)
    latency: float | None = None  # seconds the last request took, from sent to answered
    attempts: int = 0
    campaigns: int | None = None  # campaigns listed

    def line(self) -> str:
        account = self.account
        who = f"account {account.name} ({account.key_env})" if account.name else account.key_env
        line = f"{who} at {self.where}: {self.verdict}"
        if self.latency is not None:
            tries = f" after {count(self.attempts, 'attempt')}" if self.attempts > 1 else ""
            line += f", answered in {self.latency * 1000:.0f} ms{tries}"
        if self.fine:
            line += f"; {_announced(self.answer)}; limits held {_rates(account)}"
        return line

    def fields(self) -> dict[str, Any]:
        answer = self.answer
        return {
            "account": self.account.name or None,
            "key_env": self.account.key_env,
            "base_url": self.where,
            "ok": self.fine,
            "verdict": self.verdict,
            "http_status": answer.status if answer is not None else None,
            "latency_ms": round(self.latency * 1000) if self.latency is not None else None,
            "attempts": self.attempts,
            "campaigns": self.campaigns,
            "limit": answer.limit if answer is not None else None,
            "remaining": answer.remaining if answer is not None else None,
            "reset": answer.reset if answer is not None else None,
            "limits": [str(rate) for rate in self.account.rates],
        }


def doctor_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
) -> ExitCode:
    """Read each account of ``config`` once and say what was found; raises UsageError when
    there is no account to check (no accounts file, no key)."""
    import anyio

    accounts = _accounts(config, environ)
    found = anyio.run(_check_all, config, accounts, clock, backend="asyncio")
    failing = sum(not each.fine for each in found)
    lines = [each.line() for each in found]
    lines.append(
        f"{count(len(found), 'account')} checked: "
        + (f"{failing} failing" if failing else "every key accepted")
    )
    show(out, "doctor", lines, accounts=[each.fields() for each in found], failing=failing)
    return ExitCode.ROWS_FAILED if failing else ExitCode.OK


def _accounts(config: RunConfig, environ: Mapping[str, str]) -> list[Account]:
    """Every account to check, each with its key ("" when its variable is not set: that
    account fails, the others are checked)."""
    if config.accounts is not None:
        accounts = list(read_accounts(config.accounts, config).values())
    else:
        if not (read_key(environ) or config.simulate):
            raise UsageError(
                f"{key_not_set()} (or give an accounts file, or --simulate to check the "
                "embedded simulator)"
            )
        accounts = [Account("", API_KEY_ENV, config.rates, config.base_url)]
    keyed = []
    for account in accounts:
        key = read_key(environ, account.key_env)
        keyed.append(replace(account, key=key))
    return keyed


async def _check_all(config: RunConfig, accounts: Sequence[Account], clock: Clock) -> list[Checked]:
    import anyio

    found: dict[int, Checked] = {}
    errors: list[BulkrunnerError] = []

    async def check(index: int, account: Account) -> None:
        try:
            found[index] = await _check(config, account, clock)
        except BulkrunnerError as error:  # raised as it is, not inside the task group's group
            errors.append(error)

    async with anyio.create_task_group() as group:
        for index, account in enumerate(accounts):
            group.start_soon(check, index, account)
    if errors:
        raise errors[0]
    return [found[index] for index in range(len(accounts))]


async def _check(config: RunConfig, account: Account, clock: Clock) -> Checked:
    """The one read of ``account``, and what it says."""
    from bulkrunner.errors import WaitTooLong
    from bulkrunner.sending.connection import connect
    from bulkrunner.sending.retry import too_long

    where = "the embedded simulator" if config.simulate else shown(account.base_url)
    if not (account.key or config.simulate):
        whose = "that account's" if account.name else "your"
        return Checked(account, where, False, key_not_set(account.key_env, whose))
    took: list[float] = []
    from bulkrunner.sending.demo import DEMO_CAMPAIGNS

    # with --simulate, the account export --simulate reads: its demo campaigns and those kept
    async with connect(config, account, clock, DEMO_CAMPAIGNS, faults=False) as connection:
        sender = connection.sender

        async def listed() -> Answer:
            start = clock.monotonic()
            answer = await sender.list_campaigns()
            took.append(clock.monotonic() - start)
            return answer

        try:
            answer = await connection.fetch(listed, f"{_who(account)}reading the list of campaigns")
        except WaitTooLong as wait:
            return Checked(account, where, False, f"no answer: {too_long(wait, config.max_wait)}")
        except Unavailable as exc:
            return Checked(account, where, False, f"no answer: {exc}", attempts=len(took))
    return _judged(Checked(account, where, True, "", answer, took[-1] if took else None, len(took)))


def _judged(read: Checked) -> Checked:
    """What the last ``answer`` of ``read`` says of its account."""
    from bulkrunner.operations.state import parse_campaigns
    from bulkrunner.sending.retry import Verdict, classify

    answer = read.answer
    assert answer is not None
    if answer.refused:
        why = f"no answer: {answer.transport_error} (is the base URL right?)"
        return replace(read, fine=False, verdict=why, latency=None)
    decision = classify(answer)
    if decision.verdict is Verdict.ABORT:
        return replace(read, fine=False, verdict=f"key rejected: {decision.message}")
    if decision.verdict is Verdict.RETRY:
        tries = count(read.attempts, "attempt")
        return replace(read, fine=False, verdict=f"no answer after {tries}: {decision.message}")
    listed = parse_campaigns(answer) if decision.verdict is Verdict.SUCCEEDED else None
    if listed is None:
        why = decision.message or "the answer is not a list of campaigns"
        verdict = f"cannot list the campaigns: {why} (is the base URL right?)"
        return replace(read, fine=False, verdict=verdict)
    verdict = f"key accepted, {count(len(listed), 'campaign')} listed"
    return replace(read, verdict=verdict, campaigns=len(listed))


def _who(account: Account) -> str:
    return f"account {account.name}: " if account.name else ""


def _announced(answer: Answer | None) -> str:
    """What the server's ``X-RateLimit-*`` headers said, if any."""
    if answer is None or (answer.limit is None and answer.remaining is None):
        return "no rate-limit headers"
    parts = [f"{answer.limit} requests" if answer.limit is not None else "a limit"]
    if answer.remaining is not None:
        parts.append(f"{answer.remaining} left")
    if answer.reset is not None:
        parts.append(f"renewing in {answer.reset:g}s")
    return f"the server announces {parts[0]}" + (f" ({', '.join(parts[1:])})" if parts[1:] else "")


def _rates(account: Account) -> str:
    return ", ".join(map(str, account.rates))
