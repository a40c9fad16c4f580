"""What ``bulkrunner export`` says it did: the campaigns written and, on the same line, how many
were left out and why; the requests it cost; the campaigns that would not read back as they are.
The log names each campaign left out; with ``-q``, which hides the log, the lines do."""

from __future__ import annotations

from collections.abc import Mapping, Sized
from typing import Protocol

from bulkrunner.model import RunStats, count

SHOWN = 10  # campaigns named one by one


class _Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def identity(self) -> str | None: ...  # a row per lead, not per campaign


class Exported(Protocol):
    """What an export read (``commands.export.Export``), as far as its summary needs it."""

    @property
    def frame(self) -> Sized: ...
    @property
    def operation(self) -> _Named: ...
    @property
    def stats(self) -> RunStats: ...
    @property
    def left_out(self) -> Mapping[int, str]: ...  # unreadable
    @property
    def unwritable(self) -> Mapping[int, str]: ...  # read, but no row can set it
    @property
    def differ(self) -> Mapping[int, str]: ...  # would not read back as it is


def export_lines(exported: Exported, where: str, quiet: bool) -> list[str]:
    """The summary of ``exported``, written to ``where`` (a path, "standard output")."""
    name = exported.operation.name
    noun = "row" if exported.operation.identity else "campaign"
    line = f"exported {count(len(exported.frame), noun)} ({name}) to {where}"
    why = [
        (exported.left_out, "unreadable"),
        (exported.unwritable, f"whose state no {name} row can set"),
    ]
    parts = [f"{len(found)} {said}{_named(found, quiet)}" for found, said in why if found]
    if parts:
        left = len(exported.left_out) + len(exported.unwritable)
        line += f"; {left} left out{'' if quiet else ' (named in the log)'}: {', '.join(parts)}"
    stats = exported.stats
    lines = [
        line,
        f"requests: {count(stats.requests, 'read')}, {count(stats.retries, 'retry', 'retries')}, "
        f"{stats.throttled} answered 429, in {stats.sending_seconds:.1f}s",
    ]
    if exported.differ:
        lines.append(
            f"{count(len(exported.differ), 'campaign')} would not read back as they are"
            + (_named(exported.differ, quiet) or " (named in the log)")
        )
    return lines


def _named(campaigns: Mapping[int, str], quiet: bool) -> str:
    """With ``-q`` (no log), which ``campaigns`` these are: `` (campaigns 5, 9)``."""
    if not quiet:
        return ""
    ids = sorted(campaigns)
    shown = ", ".join(map(str, ids[:SHOWN])) + (
        f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    )
    return f" ({'campaign' if len(ids) == 1 else 'campaigns'} {shown})"
