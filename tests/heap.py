"""The heap of the objects a test makes, apart from those the test process already holds."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def own_heap() -> Iterator[None]:
    """Within it, ``gc.collect`` and ``gc.get_objects`` see only the objects made since it began:
    the ones before (pandas, pyarrow, every module and test the process has loaded) are frozen,
    so a collection or a census costs what the test made, not the whole process's heap. An object
    a frozen one refers to counts as alive, as it is."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
