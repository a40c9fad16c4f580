"""``--simulate``: the embedded SmartLead simulator a run or an export talks to instead of
SmartLead, with the run's campaigns, and a few of them answering 429 or 503 first."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Collection, Sequence
from typing import TYPE_CHECKING

from bulkrunner.config.run_config import RunConfig
from bulkrunner.model import Clock

if TYPE_CHECKING:
    from bulkrunner.simulator import FaultPlan

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
    config: RunConfig, campaigns: Collection[int], clock: Clock, *, faults: bool = True
) -> AsyncIterator[str]:
    """The embedded simulator with ``campaigns`` listed (so that the backup has real values)
    and, with ``faults``, a few of them answering 429 or 503 first; its base URL."""
    from bulkrunner.operations import operation
    from bulkrunner.simulator import FaultPlan, Simulator, SimulatorConfig

    leads = operation(config.operation).paged is not None
    simulated = SimulatorConfig(
        api_key=DEMO_API_KEY,
        vocabulary=config.vocabulary,
        rates=config.rates,
        campaigns=campaigns,
        faults=demo_faults(list(campaigns)) if faults else FaultPlan(),
        seeded_leads=DEMO_LEADS if leads and campaigns else 0,
        named_leads=input_leads(config),
    )
    async with Simulator(simulated, clock=clock.monotonic, sleep=clock.sleep) as simulator:
        injected = " (with injected 429 and 503 answers)" if faults else ""
        log.info("simulating SmartLead at %s%s", simulator.base_url, injected)
        yield simulator.base_url


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
