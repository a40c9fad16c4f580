"""What a run takes from its environment: the variables it reads (named where importing costs
nothing: ``bulkrunner --help`` names the first), and Arrow's allocator, chosen before pyarrow is
imported and told to give freed memory back after."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping  # (loaded with os, at start)

API_KEY_ENV = "SMARTLEAD_API_KEY"  # a secret: see bulkrunner/config/redaction.py
BASE_URL_ENV = "SMARTLEAD_BASE_URL"
LOCK_DIR_ENV = "BULKRUNNER_LOCK_DIR"  # where the locks of inputs and accounts are (see paths)
STATE_DIR_ENV = "BULKRUNNER_STATE_DIR"  # where the state store is (bulkrunner.records.store)
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"  # Arrow's allocator, read as pyarrow is imported

VARIABLES = {  # each variable bulkrunner reads, and what for (the reference docs list them)
    API_KEY_ENV: "the API key (required unless `--dry-run`, `--simulate` or `--accounts`, "
    "by `plan` too); never a flag, never printed",
    BASE_URL_ENV: "the API base URL when `--base-url` is not given (else SmartLead's)",
    LOCK_DIR_ENV: "where the locks of inputs and accounts are (default "
    "`~/.local/state/bulkrunner/locks`; see [Recovery](../how-to/recovery.md))",
    STATE_DIR_ENV: "the folder of the state store, `state.sqlite3` (default "
    "`~/.local/state/bulkrunner`; see [The state store](../design/state-store.md))",
    ARROW_POOL_ENV: "Arrow's allocator (`mimalloc`, `jemalloc` or `system`); unset, `run`, "
    "`retry` and `rollback` choose `jemalloc` on Linux",
}


def key_not_set(variable: str = API_KEY_ENV, whose: str = "your") -> str:
    """What to say when the variable of a key is empty or unset: ``SMARTLEAD_API_KEY is not
    set: export your SmartLead API key in it`` (an accounts file's: ``whose`` is "that
    account's"); each command adds what it can do without one."""
    return f"{variable} is not set: export {whose} SmartLead API key in it"


def key_in(environ: Mapping[str, str] = os.environ, variable: str = API_KEY_ENV) -> str:
    """The key in ``variable`` as a run sends it, without the whitespace around it; unchecked
    (``read_key`` checks it): for what must hide it whatever it holds."""
    return environ.get(variable, "").strip()


def read_key(environ: Mapping[str, str], variable: str = API_KEY_ENV) -> str:
    """The key in ``variable`` ("" when it is unset or blank), without the whitespace around it
    (a line ending copied with it, from a file saved on Windows), remembered so that no output
    shows it (``redaction.remember``). A UsageError naming the variable, never the key, when
    what is left holds a control character (a tab, a line ending), or bytes that are not UTF-8
    text."""
    from bulkrunner.config.redaction import remember
    from bulkrunner.errors import UsageError

    key = key_in(environ, variable)
    if any("\ud800" <= char <= "\udfff" for char in key):  # undecodable bytes (surrogateescape)
        raise UsageError(f"{variable} holds bytes that are not UTF-8 text: set it to the key alone")
    if not key.isprintable():
        raise UsageError(
            f"{variable} holds a control character (a tab, a line ending) within the key: set "
            "it to the key alone"
        )
    remember(key)  # whatever a server echoes back, the key is redacted from every output
    return key


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM taken as Ctrl-C (KeyboardInterrupt) within: a scheduler stopping the job then
    stops what is waited for the way Ctrl-C does, its clean-up included (SIGTERM's own action
    ends the process at once, 143: a temporary file left, a run's exit code lost)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # (a signal comes to the main thread only)
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def choose_arrow_allocator(environ: MutableMapping[str, str]) -> None:
    """Before pyarrow is imported, for a real run: have all of Arrow allocate through jemalloc
    (unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise), which a run then has release freed
    pages at once (``return_freed_memory``). pyarrow's default, mimalloc,
    keeps them, and Parquet's reader and writer allocate from the allocator chosen at import
    whatever pyarrow is told later: see return_freed_memory for what that cost. (Linux only:
    pyarrow's wheels for other systems may lack jemalloc, and Arrow warns of a missing one.)
    """
    if sys.platform.startswith("linux") and "pyarrow" not in sys.modules:
        environ.setdefault(ARROW_POOL_ENV, "jemalloc")


def return_freed_memory(environ: Mapping[str, str] = os.environ) -> None:
    """Have jemalloc give the memory Arrow frees back to the system at once, and Arrow use it
    where pyarrow lets it be chosen after import (unless ``ARROW_DEFAULT_MEMORY_POOL`` chose an
    allocator: the command line chooses jemalloc before pyarrow is imported, see
    ``choose_arrow_allocator``). Without jemalloc: the C library's.

    pyarrow's wheels allocate through mimalloc, which keeps freed pages to reuse them. A
    streamed run rewrites the ledger every batch, a row group at a time, and what the rewrites
    freed stayed with the process. In batches of 10,000 rows, after a 200,000-row run's first
    batch, the process grew by 81 MB with mimalloc, 26 MB with the C library's allocator, and
    by 10 MB with jemalloc (its peak by 28 MB: by default it releases pages after a second, and
    a rewrite's peak grew with the ledger); releasing at once, by 9 MB, its peak by 20 MB and
    not at all after the 100,000th row. Parquet's reader and writer take the allocator chosen
    as pyarrow is imported, whatever it is told later: chosen only here, a million-row file
    grew from 231 to 251 MB over its first 40,000 rows (chosen at import, 216 to 218 MB).
    """
    import pyarrow as pa

    try:
        pa.jemalloc_set_decay_ms(0)  # first: it holds only for arenas made after it
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = pa.system_memory_pool()
    if not environ.get(ARROW_POOL_ENV):
        pa.set_memory_pool(pool)
