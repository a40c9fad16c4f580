from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bulkrunner.input.validation import validate
from bulkrunner.operations.fields import Vocabulary

DOC = Vocabulary.DOCUMENTED
LONG = Vocabulary.LONG


def one_row(column: str, cell: Any, vocabulary: Vocabulary = DOC) -> tuple[Any, str | None]:
    """Validate a single row {campaign_id: 7, column: cell}; (payload value, error)."""
    frame = pd.DataFrame({"campaign_id": ["7"], column: [cell]}, dtype=object)
    result = validate(frame, vocabulary)
    if result.rows:
        return result.rows[0].payload.get(column), None
    return None, result.rejections[0].error


@pytest.mark.parametrize(
    ("column", "cell", "vocabulary", "sent"),
    [
        (
            "track_settings",
            "DONT_EMAIL_OPEN;DONT_LINK_CLICK",
            DOC,
            ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"],
        ),
        ("track_settings", " dont_email_open ; ", DOC, ["DONT_EMAIL_OPEN"]),
        ("track_settings", "DONT_TRACK_EMAIL_OPEN", DOC, ["DONT_EMAIL_OPEN"]),
        ("track_settings", "DONT_EMAIL_OPEN", LONG, ["DONT_TRACK_EMAIL_OPEN"]),
        ("track_settings", "DONT_TRACK_REPLY_TO_AN_EMAIL", LONG, ["DONT_TRACK_REPLY_TO_AN_EMAIL"]),
        ("track_settings", "[]", DOC, []),
        ("track_settings", "None", DOC, []),
        ("track_settings", '["DONT_LINK_CLICK"]', DOC, ["DONT_LINK_CLICK"]),
        ("track_settings", "DONT_LINK_CLICK;DONT_LINK_CLICK", DOC, ["DONT_LINK_CLICK"]),
        ("track_settings", np.array(["DONT_LINK_CLICK"]), DOC, ["DONT_LINK_CLICK"]),
        ("track_settings", np.array([], dtype=object), DOC, []),
        ("stop_lead_settings", "OPENED_EMAIL", DOC, "OPENED_EMAIL"),
        ("stop_lead_settings", "OPEN_AN_EMAIL", DOC, "OPENED_EMAIL"),
        ("stop_lead_settings", "CLICKED_LINK", LONG, "CLICK_ON_A_LINK"),
        ("stop_lead_settings", "reply_to_an_email", LONG, "REPLY_TO_AN_EMAIL"),
        ("sending_limit", "100", DOC, 100),
        ("sending_limit", " 100 ", DOC, 100),
        ("sending_limit", "100.0", DOC, 100),
        ("sending_limit", 100, DOC, 100),
        ("sending_limit", 100.0, DOC, 100),
        ("sending_limit", np.int64(3), DOC, 3),
        ("sending_limit", "0", DOC, 0),
        ("follow_up_percentage", "100", DOC, 100),
        ("enable_ai_esp_matching", "TRUE", DOC, True),
        ("enable_ai_esp_matching", "yes", DOC, True),
        ("enable_ai_esp_matching", "1", DOC, True),
        ("send_as_plain_text", "No", DOC, False),
        ("send_as_plain_text", "0", DOC, False),
        ("send_as_plain_text", False, DOC, False),
        ("send_as_plain_text", np.True_, DOC, True),
        # free text is sent as written, its surrounding spaces and tabs included; the other
        # kinds of cell are read stripped
        ("unsubscribe_text", "  Reply STOP to opt out ", DOC, "  Reply STOP to opt out "),
        ("unsubscribe_text", "\tReply STOP\t", DOC, "\tReply STOP\t"),
        ("unsubscribe_text", ' "" ', DOC, ""),
        ("stop_lead_settings", " OPENED_EMAIL\t", DOC, "OPENED_EMAIL"),
        ("send_as_plain_text", " yes ", DOC, True),
        ("client_id", "\t42 ", DOC, 42),
        ("unsubscribe_text", "=1+1", DOC, "=1+1"),
        ("client_id", "42", DOC, 42),
    ],
)
def test_valid_cells_become_the_wire_value(
    column: str, cell: Any, vocabulary: Vocabulary, sent: Any
) -> None:
    assert one_row(column, cell, vocabulary) == (sent, None)


@pytest.mark.parametrize(
    ("column", "cell", "vocabulary", "error"),
    [
        ("follow_up_percentage", "150", DOC, "follow_up_percentage: 150 is above 100"),
        ("follow_up_percentage", "-5", DOC, "follow_up_percentage: -5 is below 0"),
        ("sending_limit", "50.5", DOC, "sending_limit: '50.5' is not a whole number"),
        ("sending_limit", 50.5, DOC, "sending_limit: 50.5 is not a whole number"),
        ("sending_limit", "ten", DOC, "sending_limit: 'ten' is not a whole number"),
        ("sending_limit", "1,000", DOC, "sending_limit: '1,000' is not a whole number"),
        (
            "sending_limit",
            "\u0665\u0660",
            DOC,
            "sending_limit: '\u0665\u0660' is not a whole number",
        ),
        ("sending_limit", True, DOC, "sending_limit: True is a boolean, not a whole number"),
        ("client_id", "0", DOC, "client_id: 0 is below 1"),
        ("send_as_plain_text", "maybe", DOC, "send_as_plain_text: 'maybe' is not true or false"),
        (
            "stop_lead_settings",
            "OPENED",
            DOC,
            "stop_lead_settings: 'OPENED' is not a valid value (did you mean OPENED_EMAIL?)",
        ),
        (
            "stop_lead_settings",
            "XYZ",
            DOC,
            "(valid: REPLY_TO_AN_EMAIL, OPENED_EMAIL, CLICKED_LINK)",
        ),
        ("track_settings", "DONT_EMAIL_OPN", DOC, "did you mean DONT_EMAIL_OPEN?"),
        (
            "track_settings",
            "DONT_TRACK_REPLY_TO_AN_EMAIL",
            DOC,
            "exists only in the long vocabulary",
        ),
        ("track_settings", "DONT_TRACK_REPLY_TO_AN_EMAIL", DOC, "--vocabulary long"),
    ],
)
def test_invalid_cells_name_the_field_and_the_reason(
    column: str, cell: Any, vocabulary: Vocabulary, error: str
) -> None:
    sent, message = one_row(column, cell, vocabulary)
    assert sent is None
    assert message is not None
    assert error in message


@pytest.mark.parametrize("blank", ["", "   ", None, float("nan"), pd.NA])
def test_a_blank_cell_leaves_the_setting_unchanged(blank: Any) -> None:
    frame = pd.DataFrame(
        {"campaign_id": ["7"], "sending_limit": [blank], "send_as_plain_text": ["true"]},
        dtype=object,
    )
    (row,) = validate(frame, DOC).rows
    assert dict(row.payload) == {"send_as_plain_text": True}


def test_a_row_with_nothing_to_send_is_invalid() -> None:
    frame = pd.DataFrame({"campaign_id": ["7"], "sending_limit": [""]}, dtype=object)
    (rejection,) = validate(frame, DOC).rejections
    assert rejection.error == "nothing to send: every field is blank"
    assert rejection.campaign_id == 7


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ("", "campaign_id: missing"),
        ("abc", "campaign_id: 'abc' is not a whole number"),
        ("0", "campaign_id: 0 is below 1"),
        ("-3", "campaign_id: -3 is below 1"),
        ("12.5", "campaign_id: '12.5' is not a whole number"),
        ("\u0663", "campaign_id: '\u0663' is not a whole number"),  # an Arabic-Indic 3
        ("\uff11\uff12", "campaign_id: '\uff11\uff12' is not a whole number"),  # fullwidth
    ],
)
def test_campaign_id_must_be_a_positive_integer(cell: str, error: str) -> None:
    frame = pd.DataFrame({"campaign_id": [cell], "sending_limit": ["5"]}, dtype=object)
    (rejection,) = validate(frame, DOC).rejections
    assert rejection.error == error
    assert rejection.campaign_id is None


def test_every_offending_field_is_named_in_one_error() -> None:
    frame = pd.DataFrame(
        {"campaign_id": ["7"], "sending_limit": ["x"], "follow_up_percentage": ["150"]},
        dtype=object,
    )
    (rejection,) = validate(frame, DOC).rejections
    assert rejection.error == (
        "sending_limit: 'x' is not a whole number; follow_up_percentage: 150 is above 100"
    )


def test_a_repeated_campaign_makes_every_one_of_its_rows_invalid() -> None:
    frame = pd.DataFrame(
        {"campaign_id": ["5", "7", "5", "9", "5"], "sending_limit": ["1", "2", "3", "4", "5"]},
        dtype=object,
    )
    result = validate(frame, DOC)
    assert [row.number for row in result.rows] == [2, 4]
    assert [(r.number, r.error) for r in result.rejections] == [
        (n, "campaign_id: 5 appears in rows 1, 3 and 5") for n in (1, 3, 5)
    ]


def test_valid_rows_still_run_beside_invalid_ones() -> None:
    frame = pd.DataFrame(
        {"campaign_id": ["1", "2", "3"], "follow_up_percentage": ["10", "500", "30"]},
        dtype=object,
    )
    result = validate(frame, DOC)
    assert [(r.number, r.campaign_id, dict(r.payload)) for r in result.rows] == [
        (1, 1, {"follow_up_percentage": 10}),
        (3, 3, {"follow_up_percentage": 30}),
    ]
    assert result.total == 3


def test_equal_looking_cells_of_different_types_are_judged_apart() -> None:
    # 1, 1.0 and True are equal as dict keys; the per-value cache must not merge them.
    frame = pd.DataFrame({"campaign_id": [1, 2, 3], "sending_limit": [1, True, 1.0]}, dtype=object)
    result = validate(frame, DOC)
    assert [r.number for r in result.rows] == [1, 3]
    assert "boolean" in result.rejections[0].error


def test_parquet_native_types_validate(tmp_path: Any) -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": pd.array([11, 12], dtype="int64"),
            "track_settings": [["DONT_EMAIL_OPEN"], []],
            "send_as_plain_text": [True, None],
            "sending_limit": [100.0, float("nan")],
        }
    )
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    from bulkrunner.input.loading import load_input

    rows = validate(load_input(path), DOC).rows
    assert [dict(r.payload) for r in rows] == [
        {"track_settings": ["DONT_EMAIL_OPEN"], "send_as_plain_text": True, "sending_limit": 100},
        {"track_settings": []},
    ]


def test_a_parquet_list_in_a_text_column_is_refused_not_sent_as_its_repr(tmp_path: Any) -> None:
    """A list column for unsubscribe_text was sent as the text "['a']"."""
    frame = pd.DataFrame({"campaign_id": [11, 12], "unsubscribe_text": [["a"], ["b", "c"]]})
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    from bulkrunner.input.loading import load_input

    result = validate(load_input(path), DOC)
    assert result.rows == ()
    assert [r.number for r in result.rejections] == [1, 2]
    assert "unsubscribe_text: a list is not a text" in result.rejections[0].error


def test_a_number_beyond_64_bits_or_a_long_cell_is_an_invalid_row_with_a_short_message() -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": ["1", "2", "3"],
            "sending_limit": [str(2**64), "9" * 5000, "10"],
            "unsubscribe_text": ["a", "b", "c"],
        }
    )
    result = validate(frame, Vocabulary.DOCUMENTED)
    assert [row.number for row in result.rows] == [3]
    first, second = (rejection.error for rejection in result.rejections)
    assert first == f"sending_limit: {2**64} is above 9223372036854775807"
    assert second == (
        f"sending_limit: '{'9' * 39}... (5,002 characters) is beyond a 64-bit whole number"
    )
