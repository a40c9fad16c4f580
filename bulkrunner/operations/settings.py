"""``settings``: ``POST /campaigns/{id}/settings``, the operation bulkrunner started with.

Its fields and their two enum vocabularies are in ``bulkrunner.operations.fields``; how GET shows
them and how values compare (enum spellings, lists as sets) in ``bulkrunner.operations.state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import FIELDS
from bulkrunner.operations.state import GET_KEYS, canonical, current_value


class Settings(Operation):
    name = "settings"
    summary = "update campaign settings (POST /campaigns/{id}/settings)"
    fields = FIELDS
    vocabularies = True
    reads = GET_KEYS

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field in self.fields:
            known, value = current_value(campaign, field.name)
            if known:
                found[field.name] = value
        return found

    def same(self, name: str, before: Any, after: Any) -> bool:
        return bool(canonical(name, before) == canonical(name, after))


SETTINGS = Settings()
