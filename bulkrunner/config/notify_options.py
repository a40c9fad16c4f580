"""The declarations of the options that say how a run's end is told (``--notify``,
``--notify-on``, ``--heartbeat``), used by ``run_config.RunConfig``'s fields of those names: one
helper a field, so that the configuration stays one screen of fields."""

from __future__ import annotations

import dataclasses

from bulkrunner.config.options import DOING, SENDING, exit_codes, secret_url
from bulkrunner.errors import ExitCode

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any


def notify_url() -> Any:
    """``--notify URL``: the webhook told of a run's end."""
    return secret_url(
        "when the run ends with an exit code of --notify-on, POST a short JSON message (Slack-"
        "compatible: what happened, counts per status, exit code, report) to this webhook",
        SENDING,
    )


def notify_codes() -> Any:
    """``--notify-on CODES``: every failure but a run already in progress by default (every
    cron tick of a long run would say it), and a plan's "rows would change"."""
    return dataclasses.field(
        default=tuple(
            c for c in ExitCode if c not in (ExitCode.OK, ExitCode.IN_PROGRESS, ExitCode.CHANGES)
        ),
        metadata=exit_codes(
            "the exit codes --notify tells of, comma-separated (default {default}: every "
            f"failure but {ExitCode.IN_PROGRESS:d}, {ExitCode.IN_PROGRESS.brief})",
            SENDING,
        ),
    )


def heartbeat_url() -> Any:
    """``--heartbeat URL``: a dead-man switch told of each run that succeeded."""
    return secret_url(
        "when the run ends with exit 0, GET this URL: a dead-man switch (healthchecks.io, "
        "Cronitor...) then knows the job ran, and alerts when it did not",
        DOING,
    )
