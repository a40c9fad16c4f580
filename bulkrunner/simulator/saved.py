"""A simulated account kept between processes: what ``--simulate`` commands leave for the next.

One JSON file holds the simulated accounts of a state folder, by name (``""``: the account of a
run without an accounts file). Each keeps only what writes changed and what cannot be computed
again: the campaigns it lists (as ranges of ids), the settings, schedules, statuses and email
accounts that writes touched (an untouched campaign reads back its seed, computed from its
id), and its leads. The record of requests is not kept: each command's server starts counting
afresh.

    {"version": 1, "accounts": {"": {"campaigns": [[1480601, 1480620]],
        "settings": {"1480601": {...}}, "schedules": {...}, "statuses": {...},
        "email_accounts": {...}, "leads": {"seeded": [1480601], "named": [[1480601, "a@x.com"]],
        "next_map": 9000000003,
        "leads": [[email, fields or null, custom fields or null, unsubscribed], ...],
        "campaigns": {"1480601": [[lead index, map id, status, last step], ...]}}}}}
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bulkrunner.config.paths import replace_atomically
from bulkrunner.simulator.leads import FIRST_LEAD_ID, LeadStore
from bulkrunner.simulator.operations import Schedule
from bulkrunner.simulator.state import SimulatorState

VERSION = 1


class Unreadable(ValueError):
    """The file is not a simulated account this version can read; the text says why."""


@dataclass
class SavedAccount:
    """A simulated account as kept: its state, and the campaigns it lists."""

    state: SimulatorState = field(default_factory=SimulatorState)
    campaigns: set[int] = field(default_factory=set)

    def changed(self) -> bool:
        """Whether a write was applied since it was loaded (then it is worth saving)."""
        return any(record.applied for record in self.state.requests)


def load(path: Path, name: str) -> SavedAccount:
    """The account ``name`` kept in ``path``; a fresh one if the file or the account is not
    there. Raises Unreadable for a file that cannot be read as one, OSError for one that cannot
    be read at all."""
    accounts = _accounts(path)
    entry = accounts.get(name)
    if entry is None:
        return SavedAccount()
    try:
        return _account(entry)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise Unreadable(f"account {name!r} is not as this version keeps it ({exc!r})") from None


def save(path: Path, name: str, account: SavedAccount) -> None:
    """Keep ``account`` as ``name`` in ``path`` (the other accounts there as they are), replacing
    the file at once: a crash leaves the old file or the new one."""
    accounts = dict(_accounts(path)) if path.exists() else {}
    accounts[name] = _entry(account)
    text = json.dumps({"version": VERSION, "accounts": accounts}, separators=(",", ":"))
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _accounts(path: Path) -> Mapping[str, Any]:
    if not path.exists():
        return {}
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unreadable(f"not JSON ({exc})") from None
    if not isinstance(kept, dict) or kept.get("version") != VERSION:
        version = kept.get("version") if isinstance(kept, dict) else None
        raise Unreadable(f"not a simulated account of version {VERSION} (version {version!r})")
    accounts = kept.get("accounts")
    if not isinstance(accounts, dict):
        raise Unreadable("no accounts in it")
    return accounts


# --- to JSON and back -----------------------------------------------------------------------------


def _entry(account: SavedAccount) -> dict[str, Any]:
    state = account.state
    return {
        "campaigns": _ranges(account.campaigns),
        "settings": _by_id(state.settings),
        "schedules": {str(cid): asdict(schedule) for cid, schedule in state.schedules.items()},
        "statuses": _by_id(state.statuses),
        "email_accounts": _by_id(state.email_accounts),
        "leads": _leads(state.leads),
    }


def _account(entry: Mapping[str, Any]) -> SavedAccount:
    state = SimulatorState()
    state.settings = {int(cid): dict(values) for cid, values in entry["settings"].items()}
    state.schedules = {
        int(cid): Schedule(**{**kept, "days": tuple(kept["days"])})
        for cid, kept in entry["schedules"].items()
    }
    state.statuses = {int(cid): str(status) for cid, status in entry["statuses"].items()}
    state.email_accounts = {
        int(cid): [int(i) for i in ids] for cid, ids in entry["email_accounts"].items()
    }
    state.leads = _lead_store(entry["leads"])
    campaigns = {n for low, high in entry["campaigns"] for n in range(int(low), int(high) + 1)}
    return SavedAccount(state, campaigns)


def _by_id(values: Mapping[int, Any]) -> dict[str, Any]:
    return {str(campaign_id): value for campaign_id, value in sorted(values.items())}


def _ranges(ids: Collection[int]) -> list[list[int]]:
    """``{1, 2, 3, 7}`` as ``[[1, 3], [7, 7]]``: a run of ten thousand campaigns in a few bytes."""
    ranges: list[list[int]] = []
    for n in sorted(ids):
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ranges


def _leads(store: LeadStore) -> dict[str, Any]:
    # (a lead's index in the store is its id less FIRST_LEAD_ID: ids are given in order)
    leads: list[list[Any]] = []
    lead_id = FIRST_LEAD_ID
    while (lead := store.by_id(lead_id)) is not None:
        values = list(lead.values) if lead.values is not None else None
        leads.append([lead.email, values, lead.custom_fields, lead.is_unsubscribed])
        lead_id += 1
    campaigns = {
        str(campaign_id): [
            [member.lead.id - FIRST_LEAD_ID, member.map_id, member.status, member.last_step]
            for member in store.campaigns[campaign_id].ordered()
        ]
        for campaign_id in sorted(store.campaigns)
    }
    return {
        "seeded": sorted(store.seeded),
        "named": sorted([campaign, key] for campaign, key in store.named),
        "next_map": store._next_map,  # (removed memberships' ids are not given again)
        "leads": leads,
        "campaigns": campaigns,
    }


def _lead_store(kept: Mapping[str, Any]) -> LeadStore:
    store = LeadStore()
    leads = []
    for email, values, custom, unsubscribed in kept["leads"]:
        found = tuple(values) if values is not None else None
        leads.append(store.lead(email, found, custom, unsubscribed=bool(unsubscribed)))
    for campaign_id, members in kept["campaigns"].items():
        for index, map_id, status, last_step in members:
            store._next_map = int(map_id)  # each membership keeps the id it was given
            store.join(int(campaign_id), leads[index], str(status), last_step=bool(last_step))
    store._next_map = int(kept["next_map"])
    seeded = kept["seeded"]
    if isinstance(seeded, list):
        store.seeded = {int(campaign) for campaign in seeded}
    elif seeded:  # kept before the campaigns seeded were named: every campaign it held
        store.seeded = set(store.campaigns)
    store.named = {(int(campaign), str(key)) for campaign, key in kept.get("named", [])}
    return store
