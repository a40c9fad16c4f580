"""``--simulate``: the embedded SmartLead simulator a run or an export talks to instead of
SmartLead, with the run's campaigns, and a few of them answering 429 or 503 first.

The simulated account outlives the command: what its writes changed is kept in the state folder
(``paths.simulated_accounts_path``, see ``simulator.saved``), so that export, edit, run, export
again shows the edit, and a rollback printed after a run undoes it. ``bulkrunner simulate
--reset`` forgets it; with ``--no-state`` each command has a new account."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bulkrunner.config.folders import (
    private_folder_problem,
    set_aside_path,
    simulated_accounts_path,
)
from bulkrunner.config.run_config import RunConfig
from bulkrunner.model import Clock

if TYPE_CHECKING:
    from bulkrunner.simulator import FaultPlan
    from bulkrunner.simulator.saved import SavedAccount

log = logging.getLogger("bulkrunner")

DEMO_API_KEY = "demo-key-for-the-simulator"
DEMO_FAULT_SHARE = 0.07  # of rows whose first request the --simulate demo answers 429 or 503
DEMO_SEED = 2024
# The campaigns an ``export --simulate`` reads (seeded from their ids: mostly ACTIVE, some
# PAUSED and DRAFTED).
DEMO_CAMPAIGNS = tuple(range(1480601, 1480621))
DEMO_LEADS = 5  # the leads each campaign starts with, in a leads run or export


@contextlib.asynccontextmanager
async def simulated(
    config: RunConfig,
    campaigns: Collection[int],
    clock: Clock,
    *,
    faults: bool = True,
    account: str = "",
) -> AsyncIterator[str]:
    """The embedded simulator with ``campaigns`` listed (so that the backup has real values)
    and, with ``faults``, a few of them answering 429 or 503 first; its base URL. It serves the
    simulated ``account`` as earlier ``--simulate`` commands left it, kept in the state folder
    (none with ``--no-state``: a new account each time), and keeps it as this one leaves it."""
    from bulkrunner.operations import operation
    from bulkrunner.simulator import FaultPlan, Simulator, SimulatorConfig
    from bulkrunner.simulator.saved import SavedAccount

    kept = None if config.no_state else simulated_accounts_path(config.state_dir)
    saved = _load(kept, account) if kept is not None else SavedAccount()
    leads = operation(config.operation).paged is not None
    simulated = SimulatorConfig(
        api_key=DEMO_API_KEY,
        vocabulary=config.vocabulary,
        rates=config.rates,
        campaigns=saved.campaigns | set(campaigns),
        faults=demo_faults(list(campaigns)) if faults else FaultPlan(),
        seeded_leads=DEMO_LEADS if leads and campaigns else 0,
        named_leads=input_leads(config),
    )
    try:
        async with Simulator(
            simulated, clock=clock.monotonic, sleep=clock.sleep, state=saved.state
        ) as simulator:
            injected = " (with injected 429 and 503 answers)" if faults else ""
            log.info("simulating SmartLead at %s%s", simulator.base_url, injected)
            if saved.campaigns:
                log.info(
                    "the simulated account is as earlier --simulate commands left it (kept in "
                    "%s; `bulkrunner simulate --reset` starts it afresh)",
                    kept,
                )
            yield simulator.base_url
    finally:
        if kept is not None and saved.changed():
            saved.campaigns |= set(simulated.campaigns or ())
            _save(kept, account, saved)


def _load(path: Path, account: str) -> SavedAccount:
    """The account kept in ``path``; a new one, said in a warning, when the file cannot be read
    as one (it is set aside, not lost: a demo account is not worth stopping a command for)."""
    from bulkrunner.simulator.saved import SavedAccount, Unreadable, load

    try:
        return load(path, account)
    except (Unreadable, OSError) as exc:
        why = (exc.strerror or exc) if isinstance(exc, OSError) else exc
        aside = set_aside_path(path)
        try:
            path.replace(aside)
            kept = f"; it was moved to {aside}"
        except OSError:
            kept = ""
        log.warning(
            "cannot read the simulated account in %s (%s)%s: the simulated account starts afresh",
            path,
            why,
            kept,
        )
        return SavedAccount()


def _save(path: Path, account: str, saved: SavedAccount) -> None:
    """Keep the simulated account for the next --simulate command; a run's results do not
    depend on it: when it cannot be kept, say so and go on."""
    from bulkrunner.simulator.saved import Unreadable, save

    try:
        problem = private_folder_problem(path.parent)
        if problem:
            raise OSError(f"{path.parent} {problem}")
        save(path, account, saved)
    except (Unreadable, OSError) as exc:
        log.warning("cannot keep the simulated account in %s (%s)", path, exc)


def demo_faults(campaign_ids: Sequence[int], seed: int = DEMO_SEED) -> FaultPlan:
    """The --simulate demo's faults: a few campaigns' first request answered 429 or 503."""
    from bulkrunner.simulator import FaultPlan

    count = min(len(campaign_ids), max(2, round(DEMO_FAULT_SHARE * len(campaign_ids))))
    chosen = random.Random(seed).sample(sorted(campaign_ids), count)
    scripted = {cid: ["429" if i % 2 == 0 else "503"] for i, cid in enumerate(chosen)}
    return FaultPlan(scripted=scripted, retry_after=2.0)


def input_leads(config: RunConfig) -> dict[int, list[str]]:
    """For an operation on leads named by address: each campaign's addresses in the input,
    which the demo's campaigns hold (a real account would), so that the run finds them."""
    from bulkrunner.config.run_config import for_config

    operation = for_config(config)[0]
    key = operation.key
    if not operation.reads_leads or key is None or not config.input.is_file():
        return {}
    from bulkrunner.input.loading import open_input
    from bulkrunner.input.validation import campaign_ids
    from bulkrunner.operations.addresses import parse_address
    from bulkrunner.operations.fields import CAMPAIGN_ID

    found: dict[int, list[str]] = {}
    source = open_input(config.input, operation=operation, keep=config.keep_columns)
    if key not in source.columns:
        return {}
    for chunk in source.chunks(columns=[CAMPAIGN_ID, key]):
        ids = campaign_ids(chunk[CAMPAIGN_ID]).tolist()
        for campaign, cell in zip(ids, chunk[key].tolist(), strict=True):
            address, error = parse_address(cell)
            if campaign and address is not None and error is None:
                found.setdefault(int(campaign), []).append(address)
    return found
