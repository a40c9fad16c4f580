"""Comparing wanted settings with the account's current ones, across vocabularies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from bulkrunner.model import Answer, Change
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import canonical, parse_campaigns

CURRENT: dict[str, Any] = {
    "id": 7,
    "track_settings": ["DONT_EMAIL_OPEN"],
    "stop_lead_settings": "REPLY_TO_AN_EMAIL",
    "max_leads_per_day": 100,
    "follow_up_percentage": 40,
    "unsubscribe_text": "",
    "send_as_plain_text": False,
}


@pytest.mark.parametrize(
    ("field", "wanted"),
    [
        ("track_settings", ["DONT_TRACK_EMAIL_OPEN"]),  # the long name of the same value
        ("track_settings", ["DONT_EMAIL_OPEN"]),
        ("stop_lead_settings", "REPLY_TO_AN_EMAIL"),
        ("sending_limit", 100),  # GET calls it max_leads_per_day
        ("follow_up_percentage", 40),
        ("unsubscribe_text", ""),
        ("send_as_plain_text", False),
    ],
)
def test_equal_values_are_unchanged(field: str, wanted: Any) -> None:
    assert SETTINGS.changes({field: wanted}, CURRENT) == {}


@pytest.mark.parametrize(
    ("field", "wanted", "before"),
    [
        ("track_settings", [], ["DONT_EMAIL_OPEN"]),
        ("track_settings", ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"], ["DONT_EMAIL_OPEN"]),
        ("stop_lead_settings", "OPEN_AN_EMAIL", "REPLY_TO_AN_EMAIL"),
        ("sending_limit", 101, 100),
        ("send_as_plain_text", True, False),
        ("unsubscribe_text", "Reply STOP", ""),
        ("client_id", 3, None),  # not shown by GET: unknown, so it is sent
    ],
)
def test_different_or_unknown_values_change(field: str, wanted: Any, before: Any) -> None:
    assert SETTINGS.changes({field: wanted}, CURRENT) == {field: Change(before, wanted)}


def test_a_campaign_missing_from_the_list_changes_everything() -> None:
    assert SETTINGS.changes({"sending_limit": 5}, None) == {"sending_limit": Change(None, 5)}


def test_track_settings_as_a_string_and_in_any_order() -> None:
    assert canonical("track_settings", "DONT_LINK_CLICK,DONT_TRACK_EMAIL_OPEN") == canonical(
        "track_settings", ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"]
    )


@pytest.mark.parametrize(
    ("answer", "ids"),
    [
        (Answer(200, '[{"id": 1}, {"id": 2, "name": "x"}]'), [1, 2]),
        (Answer(200, '{"data": [{"id": 3}]}'), [3]),
        (Answer(200, "[]"), []),
        (Answer(500, "[]"), None),
        (Answer(None, transport_error="timed out"), None),
        (Answer(200, "not json"), None),
    ],
)
def test_parse_campaigns(answer: Answer, ids: list[int] | None) -> None:
    parsed = parse_campaigns(answer)
    assert (None if parsed is None else sorted(parsed)) == ids


def test_a_run_keeps_only_its_own_campaigns_and_what_it_compares_of_them() -> None:
    body = json.dumps(
        [
            {"id": 1, "name": "One", "status": "ACTIVE", "sending_limit": 5, "leads": [1] * 50},
            {"id": "2", "max_leads_per_day": 7, "scheduler_cron_value": {"tz": "UTC"}},
            {"id": 3, "sending_limit": 9},
        ]
    )
    campaigns = parse_campaigns(Answer(200, body), wanted={1, 2})
    assert campaigns == {
        1: {"id": 1, "status": "ACTIVE", "sending_limit": 5},
        2: {"id": "2", "max_leads_per_day": 7},
    }
    assert parse_campaigns(Answer(200, body))[3] == {"id": 3, "sending_limit": 9}  # type: ignore[index]


def test_a_campaign_the_list_shows_twice_differently_is_shown_by_its_id_alone() -> None:
    """Which of the two is it? The last one won: a row wanting its values was ``unchanged``,
    never sent. Shown by its id alone, a run reads it on its own."""
    body = json.dumps(
        [
            {"id": 1, "sending_limit": 5},
            {"id": 2, "sending_limit": 6, "name": "Two"},
            {"id": 3, "sending_limit": 7, "status": "ACTIVE"},
            {"id": "1", "sending_limit": 50},
            {"id": "2", "sending_limit": 6, "name": "Two, renamed"},  # no doubt: the same
            {"id": 3, "sending_limit": 7, "status": "PAUSED"},
        ]
    )
    for wanted in (None, {1, 2, 3}):
        campaigns = parse_campaigns(Answer(200, body), wanted=wanted)
        assert campaigns is not None
        assert (campaigns[1], campaigns[3]) == ({"id": 1}, {"id": 3})
        assert campaigns[2]["sending_limit"] == 6


def test_campaigns_read_share_equal_keys_and_values_across_answers() -> None:
    """Each answer is parsed on its own, so each campaign would hold its own copy of every key
    and value: a run keeps one of each (100,000 campaigns held ~1 KB each)."""

    def read(campaign_id: int, **fields: Any) -> Mapping[str, Any]:
        body = json.dumps([{"id": campaign_id, "status": "ACTIVE", **fields}])
        found = parse_campaigns(Answer(200, body), wanted={campaign_id})
        assert found is not None
        return found[campaign_id]

    same = {"track_settings": ["DONT_EMAIL_OPEN"], "stop_lead_settings": "REPLY_TO_AN_EMAIL"}
    one, two = read(1, **same, sending_limit=300), read(2, **same, sending_limit=300)
    assert one == {"id": 1, "status": "ACTIVE", **same, "sending_limit": 300}
    for name in one.keys() - {"id"}:
        assert one[name] is two[name], name
    assert [id(key) for key in one] == [id(key) for key in two]
    with pytest.raises(TypeError):  # held read-only, in a tuple: a dict of a dozen keys is 460 B
        one["status"] = "PAUSED"  # type: ignore[index]
    # equal but of another type is another value: True is not 1, nor "1" 1
    three = read(3, send_as_plain_text=True, sending_limit=1, unsubscribe_text="1")
    assert three["send_as_plain_text"] is True
    assert type(three["sending_limit"]) is int
    assert type(three["unsubscribe_text"]) is str
