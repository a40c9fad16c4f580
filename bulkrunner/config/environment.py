"""The environment variables a run reads its account from, named where importing costs nothing:
``bulkrunner --help`` names the first."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping  # (loaded with os, at any interpreter's start)

API_KEY_ENV = "SMARTLEAD_API_KEY"  # a secret: see bulkrunner/redaction.py
BASE_URL_ENV = "SMARTLEAD_BASE_URL"
LOCK_DIR_ENV = "BULKRUNNER_LOCK_DIR"  # where the locks of inputs and accounts are (see locking)
STATE_DIR_ENV = "BULKRUNNER_STATE_DIR"  # where the state store is (bulkrunner.records.store)
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"  # Arrow's allocator, read as pyarrow is imported

VARIABLES = {  # each variable bulkrunner reads, and what for (the reference docs list them)
    API_KEY_ENV: "the API key (required unless `--dry-run`, `--simulate` or `--accounts`; "
    "without it, `plan` is the offline dry run); never a flag, never printed",
    BASE_URL_ENV: "the API base URL when `--base-url` is not given (else SmartLead's)",
    LOCK_DIR_ENV: "where the locks of inputs and accounts are (default "
    "`~/.local/state/bulkrunner/locks`; see [Recovery](../how-to/recovery.md))",
    STATE_DIR_ENV: "the folder of the state store, `state.sqlite3` (default "
    "`~/.local/state/bulkrunner`; see [The state store](../design/state-store.md))",
    ARROW_POOL_ENV: "Arrow's allocator (`mimalloc`, `jemalloc` or `system`); unset, `run`, "
    "`retry` and `rollback` choose `jemalloc` on Linux",
}


def choose_arrow_allocator(environ: MutableMapping[str, str]) -> None:
    """Before pyarrow is imported, for a real run: have all of Arrow allocate through jemalloc
    (unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise), which a run then has release freed
    pages at once (``bulkrunner.records.backup.return_freed_memory``). pyarrow's default, mimalloc,
    keeps them, and Parquet's reader and writer allocate from the allocator chosen at import
    whatever pyarrow is told later: see return_freed_memory for what that cost. (Linux only:
    pyarrow's wheels for other systems may lack jemalloc, and Arrow warns of a missing one.)
    """
    if sys.platform.startswith("linux") and "pyarrow" not in sys.modules:
        environ.setdefault(ARROW_POOL_ENV, "jemalloc")
