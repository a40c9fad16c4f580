"""The declarations of the options of what bulkrunner keeps between commands, fields of
``run_config.RunConfig`` declared here as a group: the state store every process of the user
shares (``--state-dir``, ``--no-state``) and the run folders of a job (``--keep``)."""

from __future__ import annotations

import dataclasses

from bulkrunner.config.environment import STATE_DIR_ENV
from bulkrunner.config.folders import STATE_FOLDER
from bulkrunner.config.options import CONNECTING, HISTORY, READING, optional_path, switch, whole
from bulkrunner.config.paths import REPORTS

STATE_DIR = optional_path(
    f"the folder of the state store that every bulkrunner process of yours shares (rate "
    f"budgets, run history): default ${STATE_DIR_ENV}, else {STATE_FOLDER}",
    CONNECTING | HISTORY,
    "FOLDER",
)
NO_STATE = dataclasses.field(
    default=False,
    metadata=switch(
        "run without the state store: no rate budget shared with other commands, no history",
        CONNECTING,
    ),
)
KEEP = dataclasses.field(
    default=None,
    metadata=whole(
        f"after the command, remove this job's older run folders in {REPORTS}/, "
        "keeping its N newest runs (and apart, its N newest plans and dry runs); never an "
        "unfinished run's (default: keep all)",
        READING,
    ),
)
