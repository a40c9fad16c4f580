"""The same lead twice in one file: the rows after the first of a campaign and an address.

An operation with an ``identity`` column (a lead's ``email``) sends each campaign's lead once:
a later row with the same campaign and the same address (compared as SmartLead compares them:
without surrounding spaces, in any case) is not sent, and is ``unchanged``, naming the row that
is. Found from the two columns alone, before anything is sent, in one pass over them; each row
costs 8 bytes (a hash of its campaign and address), and only repeated rows are kept in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.input.loading import InputFile
from bulkrunner.input.validation import campaign_ids
from bulkrunner.model import Numbering
from bulkrunner.operations.fields import CAMPAIGN_ID

Keys = npt.NDArray[np.int64]


def lead_keys(ids: npt.NDArray[Any], addresses: pd.Series[Any]) -> Keys:
    """Each row's key: a hash of its campaign id (``campaign_ids``) and its address; 0 for a
    row without either (never the same lead as another). Python's own hash of the pair: the
    keys are compared within one process only, and two leads share one with odds of 2**-64."""
    return np.fromiter(
        (
            (hash((campaign, cell.strip().lower())) or 1)
            if campaign and isinstance(cell, str) and cell.strip()
            else 0
            for campaign, cell in zip(ids.tolist(), addresses.tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(addresses),
    )


def first_rows(keys: Keys, numbering: Numbering) -> dict[int, int]:
    """The number of each row whose key an earlier row has, with that earlier row's number."""
    order = np.argsort(keys, kind="stable")  # equal keys keep their row order
    ordered = keys[order]
    same = (ordered[1:] == ordered[:-1]) & (ordered[1:] != 0)
    if not same.any():
        return {}
    new = np.ones(len(ordered), dtype=bool)  # where a run of equal keys starts
    new[1:] = ~same
    first = order[np.flatnonzero(new)][np.cumsum(new) - 1]  # each position's run's first row
    return {
        numbering(int(order[at]) + 1): numbering(int(first[at]) + 1)
        for at in np.flatnonzero(~new).tolist()
    }


def repeated_leads(
    source: InputFile, identity: str, numbering: Numbering
) -> tuple[dict[int, int], npt.NDArray[Any]]:
    """The rows of ``source`` whose campaign and ``identity`` (an address) an earlier row has,
    each with the number of the first such row; and every row's campaign id (0: none)."""
    chunks: Iterable[pd.DataFrame] = source.chunks(columns=[CAMPAIGN_ID, identity])
    ids: list[npt.NDArray[Any]] = []
    keys: list[Keys] = []
    for chunk in chunks:
        ids.append(campaign_ids(chunk[CAMPAIGN_ID]))
        keys.append(lead_keys(ids[-1], chunk[identity]))
    if not keys:
        return {}, np.zeros(0, np.int64)
    return first_rows(np.concatenate(keys), numbering), np.concatenate(ids)


def same_lead(first: int) -> str:
    """The note of a row that repeats the lead of row ``first``."""
    return f"the same lead as row {first} (its campaign and address): sent once, as row {first}"
