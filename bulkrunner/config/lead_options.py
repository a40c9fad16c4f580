"""The declarations of the ``leads`` operation's options, used by ``run_config.RunConfig``'s
fields of those names (one helper a field), and what they make of the wire (``lead_wire``).

The settings booleans of an upload are options named after the API's fields
(``--ignore-global-block-list``, job-file key ``ignore_global_block_list``), off unless given;
``--leads-per-request`` is how many leads one upload carries; ``--suppress`` names a list of
addresses and domains never sent; ``export --campaign-id`` chooses the campaigns whose leads an
export reads.
"""

from __future__ import annotations

import dataclasses

from bulkrunner.config.options import (
    CHECKING,
    EXPORTING,
    READING,
    option,
    optional_path,
    switch,
    whole,
)
from bulkrunner.operations.fields import (
    LEADS_PER_REQUEST,
    MOST_PER_REQUEST,
    UPLOAD_SETTINGS,
    column_key,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class RunConfig(Protocol):
        """The options of ``run_config.RunConfig`` these read (which imports this module)."""

        @property
        def operation(self) -> str: ...
        @property
        def keep_columns(self) -> tuple[str, ...]: ...
        @property
        def skip_unchanged(self) -> bool: ...
        @property
        def no_backup(self) -> bool: ...
        @property
        def leads_per_request(self) -> int: ...


# the commands that build leads' requests: a run (and its dry run), a retry, a plan
LEADS = (READING | CHECKING) - {"rollback", "validate"}
_SETTINGS = dict(  # each setting, with what it does when on
    zip(
        UPLOAD_SETTINGS,
        (
            "add leads on the global block list (and the client's) anyway",
            "add leads unsubscribed from the account anyway",
            "add leads that another campaign holds anyway",
        ),
        strict=True,
    )
)


def upload_setting(name: str) -> Any:
    """A field: the upload's settings boolean ``name`` (``--ignore-global-block-list``)."""
    return dataclasses.field(
        default=False,
        metadata=switch(f"leads: {_SETTINGS[name]} (the upload's {name} setting)", LEADS),
    )


def leads_per_request() -> Any:
    """A field: ``--leads-per-request N``."""
    return dataclasses.field(
        default=LEADS_PER_REQUEST,
        metadata=whole(
            f"leads: the most leads one upload carries (default {{default}}, at most "
            f"{MOST_PER_REQUEST}: SmartLead's pages say 100, 350 and {MOST_PER_REQUEST})",
            LEADS,
        ),
    )


def suppression_list() -> Any:
    """A field: ``--suppress FILE``."""
    return optional_path(
        "leads: never send a lead whose address, or its domain, is in this file (a CSV with an "
        "email and/or domain column, or one address or domain a line): such rows are "
        "'suppressed'",
        LEADS,
        "FILE",
    )


def export_campaigns() -> Any:
    """A field: ``export --campaign-id 5,6``: the campaigns an export reads."""
    return dataclasses.field(
        default=(),
        metadata=option(
            "export only these campaigns, comma-separated (by default every campaign, or those "
            "of --client-id and --status); a leads export reads each one's leads",
            EXPORTING,
            key="campaign_id",
            accepts=(list, str, int),
            metavar="IDS",
            convert=as_campaign_ids,
        ),
    )


def as_campaign_ids(value: Any) -> tuple[int, ...]:
    """Campaign ids: a list (a job file's), a whole number, or a text of them comma-separated."""
    items = str(value).split(",") if isinstance(value, str | int) else list(value)
    found: list[int] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if isinstance(item, bool) or not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise ValueError(f"campaign id: {item!r} is not a campaign id (a whole number)")
        found.append(int(text))
    return tuple(dict.fromkeys(found))


def check_leads(config: RunConfig) -> str:
    """Why the leads options of ``config`` cannot be used ("" when they can)."""
    if not 1 <= config.leads_per_request <= MOST_PER_REQUEST:
        return (
            f"leads per request must be between 1 and {MOST_PER_REQUEST}, "
            f"got {config.leads_per_request}"
        )
    return ""


def lead_wire(config: RunConfig) -> dict[str, Any]:
    """What ``config``'s options make of a leads run's requests (``Wire``'s fields)."""
    return {
        "lead_settings": tuple((name, bool(getattr(config, name))) for name in UPLOAD_SETTINGS),
        "leads_per_request": config.leads_per_request,
        "kept": frozenset(column_key(name) for name in config.keep_columns),
        # each campaign is read first: every lead sent was not in it (a lead it holds is never
        # sent, even with --no-skip-unchanged: SmartLead would only count it as there already)
        "read_first": config.skip_unchanged or not config.no_backup,
    }
