"""The account's current settings as GET shows them, and what each row would change.

One ``GET /campaigns/`` call snapshots every campaign. SmartLead's GET spells enums in the
documented vocabulary while POST may be set to the long one, so values are compared in a
canonical form: documented names (long where a value has no documented name), lists as sets.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping
from typing import Any

from bulkrunner.model import Answer, remembered
from bulkrunner.operations.answers import parse_json, whole
from bulkrunner.operations.fields import ENUMS, FIELDS_BY_NAME
from bulkrunner.operations.syntax import list_items, truth

# Where GET names a setting differently from POST.
_GET_ALIASES = {
    "sending_limit": ("max_leads_per_day",),
    "min_time_btwn_emails": ("min_time_between_emails",),
}
GET_KEYS = (*FIELDS_BY_NAME, *(alias for names in _GET_ALIASES.values() for alias in names))


def slim(campaign: Mapping[str, Any], keys: Collection[str] = GET_KEYS) -> Campaign:
    """Of a campaign as GET shows it, only what a run compares, backs up or reports: its id,
    status and the ``keys`` its operation reads (a 100,000-campaign account need not be held
    whole), as a compact :class:`Campaign`.

    Its plain values (text, numbers, lists of them) are shared with every other campaign that
    has the same (see :func:`shared`): JSON parsing gives each campaign its own copy of every
    key and value, ~1 KB a campaign, where most campaigns hold the same few values. Shared
    values must not be changed in place."""
    return Campaign(
        (name, value if name == "id" else shared(value))  # an id is the campaign's alone
        for name, value in campaign.items()
        if name in keys or name == "id" or name == "status"
    )


class Campaign(Mapping[str, Any]):
    """A campaign's values as a run keeps them: a read-only mapping that holds its values in a
    tuple, and its keys once for every campaign with the same keys in the same order (a dict
    of a dozen keys is ~460 bytes; this ~200)."""

    __slots__ = ("_index", "_values")

    _index: Mapping[str, int]
    _values: tuple[Any, ...]

    def __init__(self, items: Iterable[tuple[str, Any]] = ()) -> None:
        pairs = list(items)
        self._index = _layout(tuple(name for name, _ in pairs))
        self._values = tuple(value for _, value in pairs)

    def __getitem__(self, key: str) -> Any:
        return self._values[self._index[key]]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Campaign({dict(self)!r})"


_LAYOUTS_MOST = 1_000  # distinct key orders remembered (an API answers with one or two)
_layouts: dict[tuple[str, ...], dict[str, int]] = {}


def _layout(names: tuple[str, ...]) -> dict[str, int]:
    """Each key's place among ``names``: one dict for every campaign with these keys."""
    return remembered(
        _layouts,
        names,
        lambda: {sys.intern(name): place for place, name in enumerate(names)},
        _LAYOUTS_MOST,
    )


_SHARED_MOST = 10_000  # distinct values remembered: enough for the few values most fields take
_shared: dict[Hashable, Any] = {}


def shared(value: Any) -> Any:
    """The one object held for every value equal to ``value`` (of the same type, so True is
    not 1) read so far: a string, whole number, bool or None, or a list of those; any other value,
    or any once ``_SHARED_MOST`` are held, is ``value`` itself."""
    key = _shared_key(value)
    return value if key is None else remembered(_shared, key, lambda: value, _SHARED_MOST)


_SCALARS = (str, int, bool, type(None))  # not floats: -0.0 == 0.0, but they read differently


def _shared_key(value: Any) -> Hashable | None:
    if type(value) in _SCALARS:
        return (type(value), value)
    if type(value) is list and all(type(item) in _SCALARS for item in value):
        return (list, tuple((type(item), item) for item in value))
    return None


def parse_campaigns(
    answer: Answer, wanted: Collection[int] | None = None, keys: Collection[str] = GET_KEYS
) -> dict[int, Mapping[str, Any]] | None:
    """The campaigns of a ``GET /campaigns/`` answer, by id; None if it is not such an answer.
    Given ``wanted``, only those campaigns, each :func:`slim`.

    An id may come as a number or as a string of digits ("123"); an item without a usable id
    is left out (its rows are sent, as for a campaign the list does not show). A campaign the
    list shows twice, with another status or other values of ``keys``, is shown by its id
    alone (``shows_only_its_id``): which of the two is it? A run reads it on its own, an
    export names it as not exported."""
    if answer.status is None or not 200 <= answer.status < 300:
        return None
    data = parse_json(answer.body)
    if isinstance(data, dict):
        data = data.get("data", data.get("campaigns"))
    if not isinstance(data, list):
        return None
    campaigns: dict[int, Mapping[str, Any]] = {}
    unclear: set[int] = set()
    for item in data:
        if isinstance(item, dict) and (campaign_id := whole(item.get("id"))) is not None:
            if wanted is not None and campaign_id not in wanted:
                continue
            earlier = campaigns.get(campaign_id)
            if earlier is None:
                campaigns[campaign_id] = item if wanted is None else slim(item, keys)
            elif _compared(earlier, keys) != _compared(item, keys):
                unclear.add(campaign_id)
    for campaign_id in unclear:
        campaigns[campaign_id] = {"id": campaign_id}
    return campaigns


def _compared(item: Mapping[str, Any], keys: Collection[str]) -> dict[str, Any]:
    """What of a list's entry tells two entries of one campaign apart: its status and
    ``keys``, not its id (7 and "7" alike) nor its name."""
    return {name: value for name, value in slim(item, keys).items() if name != "id"}


def shows_only_its_id(campaign: Mapping[str, Any]) -> bool:
    """Whether a list's entry shows a campaign by its id alone (``parse_campaigns``)."""
    return set(campaign) <= {"id"}


def current_value(campaign: Mapping[str, Any], setting: str) -> tuple[bool, Any]:
    """(known, value) of ``setting`` in a campaign as GET shows it."""
    for name in (setting, *_GET_ALIASES.get(setting, ())):
        if name in campaign:
            return True, campaign[name]
    return False, None


def canonical(setting: str, value: Any) -> Any:
    """A value in a form that compares equal across vocabularies and spellings."""
    spec = FIELDS_BY_NAME.get(setting)
    if spec is None or value is None:
        return value
    if spec.kind == "enum_list":
        items = value if isinstance(value, list | tuple) else list_items(str(value))
        return frozenset(_enum(setting, str(item)) for item in items if str(item).strip())
    if spec.kind == "enum":
        return _enum(setting, str(value))
    if spec.kind == "int" and not isinstance(value, bool):
        try:
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError, OverflowError):
            return value
    if spec.kind == "bool" and isinstance(value, str | int) and not isinstance(value, bool):
        said = truth(str(value))
        return value if said is None else said
    if spec.kind == "text":
        return str(value)
    return value


def _enum(setting: str, name: str) -> str:
    name = name.strip().upper()
    value = ENUMS[setting].get(name)
    if value is None:
        return name
    return value.documented or value.long or name
