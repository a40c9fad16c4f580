"""The retry policy and answer parsing as tables: pure functions, no I/O, no clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from bulkrunner.errors import WaitTooLong
from bulkrunner.model import Answer
from bulkrunner.operations.answers import body_retry_after, error_message, header_retry_after
from bulkrunner.sending.retry import Outage, Verdict, backoff, classify, retry_delay, too_long

S, R, F, A = Verdict.SUCCEEDED, Verdict.RETRY, Verdict.FAILED, Verdict.ABORT


@pytest.mark.parametrize(
    ("answer", "verdict", "message"),
    [
        (Answer(200, '{"success": true, "data": {}}'), S, ""),
        (Answer(200, '{"ok": true}'), S, ""),
        (Answer(200, "success"), S, ""),
        (Answer(201, ""), S, ""),
        (Answer(204, ""), S, ""),
        (
            Answer(200, '{"success": false, "message": "campaign locked"}'),
            F,
            "HTTP 200: campaign locked",
        ),
        (Answer(200, '{"ok": false, "error": "nope"}'), F, "HTTP 200: nope"),
        (
            Answer(429, '{"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}}'),
            R,
            "HTTP 429: RATE_LIMIT_EXCEEDED: slow down",
        ),
        (Answer(500, '{"error": "boom"}'), R, "HTTP 500: boom"),
        (Answer(502, "<html>Bad Gateway</html>"), R, "HTTP 502: <html>Bad Gateway</html>"),
        (Answer(503, "Service Unavailable"), R, "HTTP 503: Service Unavailable"),
        (Answer(504, ""), R, "HTTP 504"),
        (Answer(408, ""), R, "HTTP 408"),
        (
            Answer(None, transport_error="timed out after 30s", outcome_unknown=True),
            R,
            "timed out after 30s",
        ),
        (
            Answer(None, transport_error="connection dropped by the server"),
            R,
            "connection dropped by the server",
        ),
        (
            Answer(400, '{"error": "Invalid track_settings value - X"}'),
            F,
            "HTTP 400: Invalid track_settings value - X",
        ),
        (Answer(404, '{"error": "Campaign not found"}'), F, "HTTP 404: Campaign not found"),
        (
            Answer(422, '{"error": {"code": "VALIDATION_ERROR", "message": "bad", "details": {}}}'),
            F,
            "HTTP 422: VALIDATION_ERROR: bad",
        ),
        (Answer(405, ""), F, "HTTP 405"),
        (Answer(501, "Not Implemented"), F, "HTTP 501: Not Implemented"),
        (Answer(401, '{"message": "Invalid API Key"}'), A, "HTTP 401: Invalid API Key"),
        (Answer(403, "Forbidden"), A, "HTTP 403: Forbidden"),
    ],
)
def test_classify(answer: Answer, verdict: Verdict, message: str) -> None:
    decision = classify(answer)
    assert (decision.verdict, decision.message) == (verdict, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": "Invalid track_settings value - X"}', "Invalid track_settings value - X"),
        ('{"error": {"code": "E", "message": "went wrong", "details": [1]}}', "E: went wrong"),
        ('{"error": {"message": "E went wrong", "code": "E"}}', "E went wrong"),
        ('{"message": "Invalid API Key"}', "Invalid API Key"),
        ('{"errors": [{"field": "x"}]}', '[{"field":"x"}]'),
        ('{"weird": 1}', '{"weird":1}'),
        ('"just a string"', "just a string"),
        ("plain text\nover two lines", "plain text over two lines"),
        ("", ""),
        ("{not json", "{not json"),
        ("x" * 1000, "x" * 299 + "…"),
    ],
)
def test_error_message_from_any_body_shape(body: str, message: str) -> None:
    assert error_message(body) == message


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        ('{"error": {"code": "RATE_LIMIT_EXCEEDED", "retry_after": 30}}', 30.0),
        ('{"retry_after": "2.5"}', 2.5),
        ('{"error": {"retry_after": -1}}', None),
        ('{"error": {"retry_after": true}}', None),
        ("Too Many Requests", None),
        ("[]", None),
    ],
)
def test_retry_after_in_the_body(body: str, seconds: float | None) -> None:
    assert body_retry_after(body) == seconds


def test_retry_after_header_as_seconds_or_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert header_retry_after("30", now) == 30.0
    assert header_retry_after(" 1.5 ", now) == 1.5
    assert header_retry_after("Thu, 26 Nov 2026 12:00:45 GMT", now) == 45.0
    assert header_retry_after("Thu, 26 Nov 2026 11:59:00 GMT", now) == 0.0
    assert header_retry_after("soon", now) is None
    assert header_retry_after(None, now) is None


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_is_full_jitter_capped_at_60(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [backoff(attempt, rng) for _ in range(2000)]
    cap = min(60.0, 2.0**attempt)
    assert all(0.0 <= d <= cap for d in delays)
    assert max(delays) > 0.9 * cap  # uses the whole range, not a fixed delay
    assert min(delays) < 0.1 * cap


def test_retry_after_is_a_floor_under_the_backoff() -> None:
    rng = random.Random(1)
    delays = [retry_delay(1, 30.0, rng) for _ in range(100)]
    assert delays == [30.0] * 100  # backoff after 1 attempt is at most 2 s
    expected = backoff(8, random.Random(1))
    assert retry_delay(8, 0.5, random.Random(1)) == max(0.5, expected)


def test_no_retry_after_means_backoff_alone() -> None:
    assert retry_delay(3, None, random.Random(5)) == backoff(3, random.Random(5))


@pytest.mark.parametrize(
    ("answers", "now", "wait", "reached"),
    [
        ([], 100.0, 599.0, None),  # the phase began at 100: its first wait ends short of it
        ([], 100.0, 600.0, 600.0),  # the wait to come counts
        ([(R, 300.0)], 500.0, 200.0, 600.0),  # retryable errors do not reset it
        ([(R, 300.0), (F, 400.0)], 500.0, 200.0, None),  # any other answer does
        ([(S, 400.0)], 1000.0, 0.0, 600.0),
    ],
)
def test_an_outage_is_only_retryable_errors_for_the_timeout_waits_included(
    answers: list[tuple[Verdict, float]], now: float, wait: float, reached: float | None
) -> None:
    outage = Outage(600.0, alive=100.0)
    for verdict, at in answers:
        outage.answered(verdict, at)
    assert outage.reached(now, wait) == reached
    assert Outage(None, alive=0.0).reached(1e9, 1e9) is None  # no timeout: never


@pytest.mark.parametrize(
    ("seconds", "said"), [(86400, "86400s"), (1e300, "1e+300s"), (float("inf"), "infs")]
)
def test_a_wait_too_long_is_said_in_a_few_digits(seconds: float, said: str) -> None:
    """A server's ``retry_after: 1e300`` printed 301 digits in the line that stopped the run."""
    assert too_long(WaitTooLong(seconds, "Retry-After"), 300) == (
        f"the server asked to wait {said} (Retry-After), more than --max-wait 300"
    )
