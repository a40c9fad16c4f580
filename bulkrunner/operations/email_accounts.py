"""``email-accounts``: attach sending accounts to campaigns, or detach them.

``POST /campaigns/{id}/email-accounts`` adds and ``DELETE`` on the same path removes, both with
``{"email_account_ids": [1, 2]}``. A row has an ``add`` and/or a ``remove`` column, each a list
of email account ids (``3;4``, ``3,4``, ``[3, 4]``, one whole number, or a Parquet list). A row
with both sends two requests, the add first, so that a campaign is never left without a sending
account between them. An id in both columns makes the row invalid.

The requests carry the ids as the row names them: they depend on the row alone (a dry run shows
exactly what a run sends, a resumed run recognises the row), and SmartLead takes adding an
attached account or removing an absent one as a no-op. What the row *changes* is only the ids
not attached yet that it adds and the attached ids it removes: a row whose adds are all attached
and whose removes are all absent is ``unchanged`` and not sent.

The current state is the campaign's ``status`` (from the list) and its attached accounts
(``GET /campaigns/{id}/email-accounts``, merged into the campaign under ``email-accounts``). Its
change is shown as the attached ids before and after (``{"email_accounts": [1, 2]}`` ->
``{"email_accounts": [2, 3]}``); undoing it removes what was added and adds back what was
removed. The undo lists are changes: a resumed run's are merged with the earlier runs' id by id
(:meth:`EmailAccounts.merge_undo`), so that a rollback puts back the set as it was before the
first run. Removing the last accounts of an ``ACTIVE`` campaign (which SmartLead refuses) is
refused before sending.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from bulkrunner.model import Change
from bulkrunner.operations.base import Operation, Request, Undo, Wire
from bulkrunner.operations.cells import PROBLEMS_APART, quoted
from bulkrunner.operations.fields import Field
from bulkrunner.operations.syntax import list_items

ADD = "add"
REMOVE = "remove"
DETAIL = "email-accounts"  # the per-campaign read, and the key its answer is merged under
ATTACHED = "email_accounts"  # the key of a change: the campaign's attached account ids
BODY_KEY = "email_account_ids"
_MAX_ID = 2**63 - 1


def parse_ids(cell: Any) -> tuple[list[int] | None, str | None]:
    """A cell naming email account ids: ``3;4``, ``3,4``, ``[3, 4]``, one whole number, or a
    list (Parquet). The ids in the order given, each once; or why the cell is not such a list."""
    items: list[Any]
    if isinstance(cell, bool):
        return None, f"{quoted(cell)} is a boolean, not an email account id"
    if isinstance(cell, numbers.Real | str):
        items = _split(cell)
    elif isinstance(cell, Iterable) and not isinstance(cell, bytes | bytearray | Mapping):
        items = list(cell)  # a list, tuple or numpy array from Parquet
    else:
        return None, f"{type(cell).__name__} is not a list of email account ids"
    ids: list[int] = []
    errors: list[str] = []
    for item in items:
        number, error = _account_id(item)
        if error:
            errors.append(error)
        elif number is not None and number not in ids:
            ids.append(number)
    if errors:
        return None, PROBLEMS_APART.join(dict.fromkeys(errors))
    if not ids:
        return None, "names no email account id (leave the cell blank to change nothing)"
    return ids, None


def _split(cell: numbers.Real | str) -> list[Any]:
    return list_items(cell) if isinstance(cell, str) else [cell]


def _account_id(item: Any) -> tuple[int | None, str | None]:
    """One id of a list: a whole number from 1 (a digit string, an int, an integral float)."""
    if isinstance(item, bool) or item is None:
        return None, f"{quoted(item)} is not an email account id (a whole number)"
    if isinstance(item, numbers.Real) and not isinstance(item, numbers.Integral):
        value = float(item)
        if value != value:  # NaN: a missing element of a Parquet list
            return None, "a list element is missing"
        if not value.is_integer():
            return None, f"{value:g} is not an email account id (a whole number)"
        item = int(value)
    if not isinstance(item, numbers.Integral):
        text = str(item).strip().strip("\"'")
        if "@" in text:
            return None, (
                f"{quoted(text)} is an email address: name the account by its id "
                "(GET /email-accounts lists them)"
            )
        if not (text.isascii() and text.isdigit()):
            return None, f"{quoted(text)} is not an email account id (a whole number)"
        item = int(text)
    number = int(item)  # numpy integers too
    if number < 1:
        return None, f"{number} is not an email account id (ids are whole numbers from 1)"
    if number > _MAX_ID:
        return None, f"{number} is too large for an email account id"
    return number, None


def attached_ids(campaign: Mapping[str, Any] | None) -> list[int] | None:
    """The ids of the campaign's attached email accounts, sorted; None when they are not known
    (not read, or not a list of accounts)."""
    if campaign is None:
        return None
    accounts = campaign.get(DETAIL)
    if not isinstance(accounts, list):
        return None
    found: set[int] = set()
    for account in accounts:
        value = account
        if isinstance(account, Mapping):
            value = account.get("id", account.get("email_account_id"))
        number, error = _account_id(value)
        if error or number is None:
            return None  # an answer we do not understand: the state is unknown, not empty
        found.add(number)
    return sorted(found)


def _ids(payload: Mapping[str, Any], column: str) -> list[int]:
    return [int(i) for i in payload.get(column) or ()]


def _listed(ids: Iterable[int]) -> str:
    words = [str(i) for i in ids]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class EmailAccounts(Operation):
    name = "email-accounts"
    summary = "add or remove a campaign's sending accounts (/campaigns/{id}/email-accounts)"
    fields = (
        Field(ADD, "custom", parse=parse_ids, arrow="list<int64>"),
        Field(REMOVE, "custom", parse=parse_ids, arrow="list<int64>"),
    )
    reads_list = True  # the campaign's status, to refuse removing an active one's last account
    detail = DETAIL
    compared = (ADD, REMOVE)
    reads = ()  # of the list, only the id and status (kept by ``slim``)

    def requests(self, campaign_id: int, payload: Mapping[str, Any], wire: Wire) -> list[Request]:
        path = self.path(campaign_id)
        found = []
        for method, column in (("POST", ADD), ("DELETE", REMOVE)):  # add first: never empty
            ids = _ids(payload, column)
            if ids:
                found.append(Request(method, path, {BODY_KEY: ids}))
        return found

    def check(self, payload: Mapping[str, Any], wire: Wire) -> str:
        both = [i for i in _ids(payload, ADD) if i in set(_ids(payload, REMOVE))]
        if both:
            which = "account" if len(both) == 1 else "accounts"
            verb = "is" if len(both) == 1 else "are"
            return (
                f"{ADD}, {REMOVE}: email {which} {_listed(both)} {verb} in both "
                "(an account is either added or removed)"
            )
        return ""

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        attached = attached_ids(campaign)
        return {} if attached is None else {ADD: attached}

    def readable(self, campaign: Mapping[str, Any]) -> bool:
        """Its accounts were read as a list (an empty one too); a list of what are not
        accounts is the campaign's to refuse (``refuse``), with why."""
        return isinstance(campaign.get(DETAIL), list)

    def changes(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> dict[str, Change]:
        attached = attached_ids(campaign)
        if attached is None:  # not known: the row as it is sent
            sent = (ADD, REMOVE)
            return {name: Change(None, _ids(payload, name)) for name in sent if name in payload}
        after = _after(attached, payload)
        return {} if after == attached else {ATTACHED: Change(attached, after)}

    def refuse(self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None) -> str:
        attached = attached_ids(campaign)
        if attached is None and campaign is not None and DETAIL in campaign:
            return (
                "its email accounts were read but are not a list of accounts with numeric ids, "
                "so the change could neither be checked nor backed up"
            )
        status = str((campaign or {}).get("status") or "").strip().upper()
        if attached is None or status != "ACTIVE":
            return ""
        removed = [i for i in attached if i in set(_ids(payload, REMOVE))]
        if not removed or _after(attached, payload):
            return ""
        which = "account" if len(removed) == 1 else "accounts"
        return (
            f"removing email {which} {_listed(removed)} would leave the ACTIVE campaign with no "
            "sending account, which SmartLead refuses (add another in the same row, or pause "
            "the campaign first)"
        )

    def on_the_way(self, name: str, now: Any, since: Any, payload: Mapping[str, Any]) -> bool:
        """Some of the row's accounts added, not all removed (``requests``: adds first): every
        account attached since is one the row adds, every one detached one it removes."""
        if name != ATTACHED or not (isinstance(now, list) and isinstance(since, list)):
            return False
        now_set, since_set = set(now), set(since)
        return now_set - since_set <= set(_ids(payload, ADD)) and since_set - now_set <= set(
            _ids(payload, REMOVE)
        )

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        change = changes.get(ATTACHED)
        if change is None or change.before is None or change.after is None:
            unknown = (
                "the campaign's email accounts were not known before the run" if changes else ""
            )
            return Undo({}, unknown)
        before, after = set(change.before), set(change.after)
        values: dict[str, Any] = {}
        if before - after:
            values[ADD] = sorted(before - after)  # removed by the run: add them back
        if after - before:
            values[REMOVE] = sorted(after - before)  # added by the run: remove them
        return Undo(values)

    def applied_changes(
        self,
        payload: Mapping[str, Any],
        undo: Mapping[str, Any],
        campaign: Mapping[str, Any] | None,
    ) -> dict[str, Change]:
        """The row's change from the accounts attached before: those attached now, less the
        ones the backup would remove, with the ones it would add back."""
        attached = attached_ids(campaign)
        if attached is None:
            return {}
        before = (set(attached) - set(_ids(undo, REMOVE))) | set(_ids(undo, ADD))
        return self.changes(payload, {DETAIL: sorted(before)})

    def merge_undo(self, recorded: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
        """The undo lists are changes, not values: an id an earlier run added or removed keeps
        the direction it was first recorded with (its state before the first run), and an id
        only a later run touched (an edited input, resumed) is added in its own direction."""
        first = {i: ADD for i in recorded.get(ADD) or ()}
        first.update({i: REMOVE for i in recorded.get(REMOVE) or ()})
        for column in (ADD, REMOVE):
            for i in later.get(column) or ():
                first.setdefault(i, column)
        merged = {name: value for name, value in recorded.items() if name not in (ADD, REMOVE)}
        for column in (ADD, REMOVE):
            ids = sorted(i for i, direction in first.items() if direction == column)
            if ids:
                merged[column] = ids
        return merged

    def export(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        attached = attached_ids(campaign)
        return {ADD: attached} if attached else {}  # no account: nothing an input row can say


def _after(attached: list[int], payload: Mapping[str, Any]) -> list[int]:
    """The attached ids once the row is applied: its adds joined, then its removes taken out."""
    removed = set(_ids(payload, REMOVE))
    return sorted(i for i in {*attached, *_ids(payload, ADD)} if i not in removed)


EMAIL_ACCOUNTS = EmailAccounts()
