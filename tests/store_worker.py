"""A process of its own on a state store, for the tests of several processes sharing one
(``tests/e2e/test_store_processes.py``): ``python -m tests.store_worker JOB`` where JOB is JSON.

It opens the store, says ``ready``, waits for a line on its stdin (so that every worker of a test
starts at once), then works and prints one line for each thing it did, flushed as it is done:

- ``{"kind": "claim", ...}``: claim a request at each of ``times`` (wall-clock seconds given,
  never read): prints ``granted NOW UNTIL COUNT`` for each grant (``most``/``lease``: reserve
  up to ``most`` requests to be sent until NOW + ``lease``);
- ``{"kind": "write", ...}``: write without end, printing each write once it is committed:
  ``run ID``, ``changes ID COUNT`` (a batch of changes of run ID), ``claim T``, ``finish ID``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger
from bulkrunner.records.history import ChangeRecord, History, RunAccount
from bulkrunner.records.store import StateStore


def claim(store: StateStore, job: dict[str, Any]) -> None:
    ledger = Ledger(store)
    rates = [Rate.parse(text) for text in job["rates"]]
    most, lease = job.get("most", 1), job.get("lease", 0.0)
    for now in job["times"]:
        got = ledger.reserve(job["account"], rates, now, job["guard"], most, now + lease)
        if got.granted:
            print(f"granted {now!r} {got.until!r} {got.granted}", flush=True)


def write(store: StateStore, job: dict[str, Any]) -> None:
    """Runs, each with batches of changes and claims, one after another, without end."""
    history, ledger = History(store), Ledger(store)
    account = job["account"]
    rates = [Rate(1_000_000, 1)]  # every claim granted: what is checked is that it stays
    at = job["start"]
    while True:
        run = history.start_run("run", at, operation="settings", accounts=[RunAccount("", account)])
        print(f"run {run}", flush=True)
        for batch in range(3):
            changes = [
                ChangeRecord(run, at, account, 1000 + n, "sending_limit", n, n + batch + 1)
                for n in range(200)
            ]
            history.record_changes(changes)
            print(f"changes {run} {len(changes)}", flush=True)
            for _ in range(20):
                at += 0.001
                assert ledger.claim(account, rates, at) == 0.0
                print(f"claim {at!r}", flush=True)
        history.finish_run(run, at, 0, {"succeeded": 200})
        print(f"finish {run}", flush=True)


def main() -> None:
    job = json.loads(sys.argv[1])
    with StateStore.open(Path(job["folder"])) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        if job["kind"] == "claim":
            claim(store, job)
        else:
            write(store, job)


if __name__ == "__main__":
    main()
