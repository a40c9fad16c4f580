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
