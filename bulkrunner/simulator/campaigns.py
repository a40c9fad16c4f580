"""The simulated account's campaigns: how each is seeded, how it reads back, and the writes that
change it (settings, schedule, status, email accounts).

A campaign no write has touched reads back its seed, computed from its id: the settings of
``default_settings``, a schedule, a status (mostly ``ACTIVE``, some ``PAUSED`` and ``DRAFTED``) and
one or two of the account's sending accounts, so that a normal START succeeds. The campaigns of
``SimulatorConfig.bare_campaigns`` are fresh drafts instead: ``DRAFTED``, no schedule, no email
accounts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bulkrunner.simulator.operations import (
    Schedule,
    email_account,
    merge_schedule,
    removal_refusal,
    status_refusal,
    validate_account_ids,
    validate_schedule,
    validate_status,
)
from bulkrunner.simulator.state import SimulatorConfig, SimulatorState, default_settings
from bulkrunner.simulator.validation import BodyRejection, validate_settings

_ZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Bratislava",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Australia/Sydney",
)


def default_schedule(campaign_id: int) -> Schedule:
    """A seeded campaign's schedule: weekdays (Sunday to Thursday for every fifth), office hours."""
    days = (0, 1, 2, 3, 4) if campaign_id % 5 == 0 else (1, 2, 3, 4, 5)
    return Schedule(
        timezone=_ZONES[campaign_id % len(_ZONES)],
        days=days,
        start_hour=f"{8 + campaign_id % 3:02d}:00",
        end_hour=f"{17 + campaign_id % 2:02d}:00",
        start_time=f"2026-{1 + campaign_id % 12:02d}-01T09:00:00Z",
    )


def default_status(campaign_id: int) -> str:
    return {3: "PAUSED", 5: "DRAFTED"}.get(campaign_id % 7, "ACTIVE")


def default_email_accounts(campaign_id: int, pool_size: int) -> list[int]:
    """One of the account's sending accounts, two for every third campaign."""
    if pool_size < 1:
        return []
    ids = {1 + campaign_id % pool_size}
    if campaign_id % 3 == 0:
        ids.add(1 + (campaign_id + 17) % pool_size)
    return sorted(ids)


class Campaigns:
    """The campaigns of one simulated account over its ``SimulatorState``. Each write method
    applies a valid body and returns None, or returns why the body is refused."""

    def __init__(self, config: SimulatorConfig, state: SimulatorState) -> None:
        self.config = config
        self.state = state
        self.pool = range(1, config.sending_accounts + 1)

    def exists(self, campaign_id: int | None) -> bool:
        campaigns = self.config.campaigns
        return (
            campaign_id is not None
            and campaign_id > 0
            and (campaigns is None or campaign_id in campaigns)
        )

    def listed(self) -> list[int]:
        """Every campaign the account lists: the configured ones and every touched one."""
        state = self.state
        touched = set(state.settings) | set(state.schedules) | set(state.statuses)
        ids = touched | set(state.email_accounts) | set(self.config.campaigns or ())
        ids |= set(state.leads.campaigns)
        return [i for i in sorted(ids) if self.exists(i)]

    def settings(self, campaign_id: int) -> dict[str, Any]:
        return self.state.settings.setdefault(campaign_id, default_settings(campaign_id))

    def client_id(self, campaign_id: int) -> int | None:
        """The agency client the campaign belongs to (its setting ``client_id``)."""
        settings = self.state.settings.get(campaign_id) or default_settings(campaign_id)
        client: int | None = settings["client_id"]
        return client

    def schedule(self, campaign_id: int) -> Schedule | None:
        if campaign_id in self.state.schedules:
            return self.state.schedules[campaign_id]
        return None if campaign_id in self.config.bare_campaigns else default_schedule(campaign_id)

    def status(self, campaign_id: int) -> str:
        if campaign_id in self.state.statuses:
            return self.state.statuses[campaign_id]
        if campaign_id in self.config.bare_campaigns:
            return "DRAFTED"
        return default_status(campaign_id)

    def accounts(self, campaign_id: int) -> list[int]:
        if campaign_id in self.state.email_accounts:
            return self.state.email_accounts[campaign_id]
        if campaign_id in self.config.bare_campaigns:
            return []
        return default_email_accounts(campaign_id, self.config.sending_accounts)

    def view(self, campaign_id: int) -> dict[str, Any]:
        """The campaign as ``GET /campaigns/`` and ``GET /campaigns/{id}`` show it."""
        settings = self.state.settings.get(campaign_id) or default_settings(campaign_id)
        schedule = self.schedule(campaign_id)
        cron: object = None
        if schedule is not None:
            cron = schedule.cron()
            if self.config.cron_as_string:
                cron = json.dumps(cron, separators=(",", ":"))
        return {
            "id": campaign_id,
            "name": f"Campaign {campaign_id}",
            "status": self.status(campaign_id),
            **settings,
            "max_leads_per_day": settings["sending_limit"],
            "scheduler_cron_value": cron,
            "schedule_start_time": schedule.start_time if schedule is not None else None,
        }

    def email_account_views(self, campaign_id: int) -> list[Mapping[str, Any]]:
        return [email_account(i) for i in self.accounts(campaign_id)]

    def change_settings(self, campaign_id: int, body: object) -> BodyRejection | None:
        changes = validate_settings(body, self.config.vocabulary)
        if isinstance(changes, BodyRejection):
            return changes
        self.settings(campaign_id).update(changes)
        return None

    def change_schedule(self, campaign_id: int, body: object) -> BodyRejection | None:
        write = validate_schedule(body, self.config.schedule_shape)
        if isinstance(write, BodyRejection):
            return write
        schedule = merge_schedule(self.schedule(campaign_id), write)
        if isinstance(schedule, BodyRejection):
            return schedule
        self.state.schedules[campaign_id] = schedule
        if write.settings:
            self.settings(campaign_id).update(write.settings)
        return None

    def change_status(self, campaign_id: int, body: object) -> BodyRejection | None:
        wanted = validate_status(body)
        if isinstance(wanted, BodyRejection):
            return wanted
        current = self.status(campaign_id)
        refusal = status_refusal(
            current, wanted, self.schedule(campaign_id), self.accounts(campaign_id)
        )
        if refusal is not None:
            return refusal
        self.state.statuses[campaign_id] = wanted
        return None

    def add_accounts(self, campaign_id: int, body: object) -> BodyRejection | None:
        ids = validate_account_ids(body, self.pool)
        if isinstance(ids, BodyRejection):
            return ids
        attached = self.accounts(campaign_id)
        self.state.email_accounts[campaign_id] = sorted({*attached, *ids})
        return None

    def remove_accounts(self, campaign_id: int, body: object) -> BodyRejection | None:
        ids = validate_account_ids(body, self.pool)
        if isinstance(ids, BodyRejection):
            return ids
        remaining = [i for i in self.accounts(campaign_id) if i not in ids]
        refusal = removal_refusal(self.status(campaign_id), remaining)
        if refusal is not None:
            return refusal
        self.state.email_accounts[campaign_id] = remaining
        return None
