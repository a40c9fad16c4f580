"""The back-up stage: record the values a batch is about to change before any is sent.

A run keeps one backup beside its report, whatever number of accounts it sends with (each
campaign's row names its account, so that a rollback restores it with that account's key). The
accounts' batches write it one at a time, in a worker thread, so that the other accounts'
requests are not held up meanwhile. A run that continues an interrupted one (``--resume``,
``--fresh``) adds to the backup of that run, which keeps the values from before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio

from bulkrunner.config.paths import backup_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.model import Changes, Outcome, Row, count
from bulkrunner.operations.base import Operation, Target, campaign_of, named
from bulkrunner.output.hints import rollback_command
from bulkrunner.records import lead_ledger
from bulkrunner.records.backup import BackupError, read_held, read_unrestorable, record_backup
from bulkrunner.records.journal import APPLIED_EARLIER
from bulkrunner.sending.plan import Plan

log = logging.getLogger("bulkrunner")
T = TypeVar("T")


@dataclass
class Backup:
    """The one backup of a run: ``started`` once a batch wrote to it (or kept the backup of the
    run it continues); ``lock`` lets one batch write it at a time."""

    path: Path
    keep: bool  # the run continues an interrupted one: keep what its backup recorded
    started: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    @classmethod
    def of(cls, config: RunConfig) -> Backup | None:
        """The backup of ``config``'s run, None when it writes none (no report, --no-backup)."""
        if config.report is None or config.no_backup:
            return None
        return cls(backup_path(config.report), keep=config.resume or config.fresh)


async def back_up(
    backup: Backup,
    planned: Plan,
    operation: Operation,
    account: str | None,
    first: bool,
    rollback: str,
) -> str | None:
    """Record what ``planned`` is about to change (``account``'s rows: None for the one key of
    a run without an accounts file); why nothing may be sent, if it cannot be recorded."""
    if operation.ledger == "leads":
        return await _record_leads(backup, planned, account, first, rollback)
    by_campaign = {
        operation.target(row.campaign_id, row.payload): planned.changes[row.number]
        for row in planned.send
        if planned.changes[row.number]
    }
    whose = f"account {account}: " if account is not None else ""
    noun = "campaign" if operation.key is None else "lead"  # what a row of the backup restores
    write = partial(record_backup, backup.path, by_campaign, account=account, operation=operation)
    recorded, aborted = await _written(backup, write, whose)
    if recorded is None:
        return aborted
    if recorded.unknown:
        log.warning(
            "%s about to change: no readable current value to back up",
            count(recorded.unknown, noun),
        )
    _say_unrestorable(recorded.unrestorable, whose)
    if not first:  # a later batch of a streamed run
        log.info(
            "%sbackup: %s about to change (%d in all): %s",
            whose,
            count(recorded.campaigns, f"more {noun}"),
            recorded.total,
            backup.path,
        )
        return None
    earlier = recorded.total - recorded.campaigns
    log.info(
        "%sbackup of the %s about to change%s: %s (undo with: %s)",
        whose,
        count(recorded.campaigns, noun),
        f" (and {earlier} more from the run it continues)"
        if earlier > 0 and account is None  # of several accounts, the others' are counted
        else "",
        backup.path,
        rollback,
    )
    return None


async def _written(backup: Backup, write: Callable[..., T], whose: str) -> tuple[T | None, str]:
    """``write(keep=...)`` of the backup, one batch at a time (the ledger kept once a batch
    started it): what it recorded, or None and why the run stops, nothing sent."""
    async with backup.lock:
        try:
            recorded = await anyio.to_thread.run_sync(
                partial(write, keep=backup.keep or backup.started)
            )
        except BackupError as exc:
            log.error("%srun aborted: %s; nothing was sent", whose, exc)
            return None, f"run aborted: {exc}"
        backup.started = True
    return recorded, ""


async def _record_leads(
    backup: Backup, planned: Plan, account: str | None, first: bool, rollback: str
) -> str | None:
    """Record the leads ``planned`` is about to add, before any is sent: only those their
    campaign was read as not holding, so that a rollback never removes a lead that was there."""
    whose = f"account {account}: " if account is not None else ""
    adding = [row for row in planned.send if planned.changes.get(row.number)]
    write = partial(lead_ledger.record_intended, backup.path, adding, account=account)
    recorded, aborted = await _written(backup, write, whose)
    if recorded is None:
        return aborted
    log.info(
        "%sbackup of the %s about to be added (%d in all)%s: %s",
        whose,
        count(recorded.leads, "lead"),
        recorded.total,
        f" (undo with: {rollback})" if first else "",
        backup.path,
    )
    return None


async def settle(
    backup: Backup,
    rows: Sequence[Row],
    outcomes: Mapping[int, Outcome],
    campaigns: Mapping[int, Mapping[str, Any]],
    operation: Operation,
) -> None:
    """Once ``rows`` were sent, a backup of leads keeps only the leads that went in (or may
    have), with the ids read back (``lead_ledger.settle``)."""
    if operation.ledger != "leads" or not rows or not backup.started:
        return
    async with backup.lock:
        write = partial(lead_ledger.settle, backup.path, rows, outcomes, campaigns)
        try:
            await anyio.to_thread.run_sync(write)
        except BackupError as exc:  # it still names every lead the batch may have added
            log.warning("%s (it may name leads that were not added)", exc)


def rollback_hint(config: RunConfig) -> str:
    """The command that undoes ``config``'s run."""
    assert config.report is not None
    return rollback_command(config, backup_path(config.report))


_NAMED_MOST = 20  # the campaigns (leads) a line names, of those it counts


def _say_unrestorable(reasons: Mapping[Target, str], whose: str) -> None:
    """Which campaigns (leads) about to change a rollback could not put back, and why: one
    line per reason, naming its campaigns (the first few of many)."""
    by_reason: dict[str, list[Target]] = {}
    for target, reason in sorted(reasons.items()):
        by_reason.setdefault(reason, []).append(target)
    for reason, targets in by_reason.items():
        listed = ", ".join(named(target) for target in targets[:_NAMED_MOST])
        more = len(targets) - _NAMED_MOST
        noun = "campaign" if isinstance(targets[0], int) else "lead"
        log.warning(
            "%sa rollback could not restore %s (%s%s): %s",
            whose,
            count(len(targets), noun),
            listed,
            f" and {more} more" if more > 0 else "",
            reason,
        )


def adopt_applied(
    config: RunConfig,
    rows: Sequence[Row],
    planned: Plan,
    campaigns: Mapping[int, Mapping[str, object]],
    operation: Operation,
    whose: str,
) -> int:
    """A run that continues an interrupted one (``--resume``, ``--fresh``): the rows found as
    wanted that the interrupted run applied without journaling them (its backup holds values
    they change) are ``succeeded``, with what they changed, not ``unchanged``. How many."""
    continues = (config.resume or config.fresh) and not config.no_backup
    if config.report is None or not continues:
        return 0
    backup = backup_path(config.report)
    try:
        if operation.ledger == "leads":
            found = lead_ledger.applied_earlier(backup, rows, planned.unchanged)
        else:
            found = applied_earlier(backup, rows, planned.unchanged, campaigns, operation)
        if operation.key is not None:
            found.update(made_final(backup, rows, planned, campaigns, operation))
    except BackupError as exc:
        log.warning("%s%s: the rows found as wanted are reported unchanged", whose, exc)
        return 0
    adopted = lead_ledger.APPLIED_EARLIER if operation.ledger == "leads" else APPLIED_EARLIER
    for number, changes in found.items():
        planned.refused.pop(number, None)
        planned.unchanged[number] = adopted  # not sent: as the unchanged
        planned.changes[number] = changes
    if found:
        log.info(
            "%s%s found as the interrupted run left them, though it did not record them: "
            "succeeded, not sent again",
            whose,
            count(len(found), "row"),
        )
    return len(found)


def applied_earlier(
    backup: Path,
    rows: Sequence[Row],
    unchanged: Collection[int],
    campaigns: Mapping[int, Mapping[str, Any]],
    operation: Operation,
) -> dict[int, Changes]:
    """Of ``rows``, those found ``unchanged`` (by number) as a run continues an interrupted one
    that the interrupted run applied: the backup it wrote before sending holds values the row
    changes. What each changed, from those values to the campaign as read now (``campaigns``),
    by row number. Raises BackupError when the backup cannot be read."""
    if not unchanged or not backup.exists():
        return {}
    found = {
        operation.target(row.campaign_id, row.payload): row
        for row in rows
        if row.number in unchanged
    }
    changed: dict[int, Changes] = {}
    for target, undo in read_held(backup, found, operation.key).items():
        row = found[target]
        change = operation.applied_changes(row.payload, undo, campaigns.get(campaign_of(target)))
        if change:
            changed[row.number] = Changes(change)
    return changed


def made_final(
    backup: Path,
    rows: Sequence[Row],
    planned: Plan,
    campaigns: Mapping[int, Mapping[str, Any]],
    operation: Operation,
) -> dict[int, Changes]:
    """Of ``rows`` not to send (unchanged, or refused: a removed lead is no longer found), those
    whose change no rollback undoes that the interrupted run made: its backup lists their
    target as one it cannot restore, and each is now as the row wants it. What each changed
    (from an unknown state: the backup keeps none), by row number."""
    numbers = {*planned.unchanged, *planned.refused}
    if not numbers or not backup.exists():
        return {}
    final = read_unrestorable(backup)
    changed: dict[int, Changes] = {}
    for row in rows:
        if row.number not in numbers or row.number in planned.missing:
            continue
        if operation.target(row.campaign_id, row.payload) not in final:
            continue
        if not operation.changes(row.payload, campaigns.get(row.campaign_id)):
            changed[row.number] = Changes(operation.changes(row.payload, None))
    return changed
