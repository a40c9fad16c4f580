"""The sender against a live loopback server: redirects never followed, bogus charsets, an
echoed key, answers beyond the cap."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from bulkrunner.config.redaction import REDACTED
from bulkrunner.model import Answer
from bulkrunner.operations.state import parse_campaigns
from bulkrunner.sending.retry import Decision, Verdict, classify
from bulkrunner.sending.transport import HttpSender
from tests.fakes import settings_request
from tests.hostile import ServerThread

KEY = "sk-hostile-SENTINEL+/=9f3a"  # characters a URL must encode, so both spellings are checked


def leaks(text: str) -> bool:
    return KEY in text or quote(KEY, safe="") in text or "SENTINEL" in text


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_the_sender_never_follows_a_redirect(
    session: aiohttp.ClientSession, status: int
) -> None:
    async def elsewhere(request: web.Request) -> web.Response:
        return web.json_response({"success": True})

    with ServerThread(elsewhere) as other:

        async def redirect(request: web.Request) -> web.Response:
            return web.Response(
                status=status, headers={"Location": other.url + request.path_qs}, text="Moved"
            )

        with ServerThread(redirect) as server:
            sender = HttpSender(session, server.url + "/api/v1", KEY, timeout=5)
            answer = await sender.send(settings_request(7, {"sending_limit": 5}))
            listed = await sender.list_campaigns()
    assert other.requests == []  # the key never went to the other host
    assert (answer.status, listed.status) == (status, status)
    assert answer.location == f"{other.url}/api/v1/campaigns/7/settings?api_key={REDACTED}"
    assert (
        classify(answer).message == f"HTTP {status}: redirected to {answer.location} (not followed)"
    )


@pytest.mark.parametrize("charset", ["bogus", "base64", "utf-8", "latin-1", "idna", "undefined"])
async def test_a_bogus_charset_is_read_as_utf8(
    session: aiohttp.ClientSession, charset: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"success": true, "note": "ok"}',
            headers={"Content-Type": f"application/json; charset={charset}"},
        )

    with ServerThread(answer) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5)
        got = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert got.status == 200
    assert json.loads(got.body) == {"success": True, "note": "ok"}
    assert classify(got).verdict is Verdict.SUCCEEDED


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("utf-7", b'{"error": "bad +2AA- value"}'),
        ("unicode_escape", b'{"error": "bad \\ud800 value"}'),
    ],
)
async def test_halves_of_characters_an_odd_charset_gives_are_replaced(
    session: aiohttp.ClientSession, charset: str, body: bytes
) -> None:
    """Such a charset decodes to text no file can hold (a lone surrogate), which made every
    writer of the report fail: the run ended with an internal error and no report."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(
            status=400,
            body=body,
            headers={"Content-Type": f"application/json; charset={charset}"},
        )

    with ServerThread(answer) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5)
        got = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert classify(got).message == "HTTP 400: bad \ufffd value"


async def test_a_server_echoing_the_key_has_it_redacted_from_the_answer(
    session: aiohttp.ClientSession,
) -> None:
    async def echo(request: web.Request) -> web.Response:
        text = f"Cannot POST {request.path_qs} (key {KEY})"
        return web.Response(status=404, text=text)

    with ServerThread(echo) as server:
        sender = HttpSender(session, server.url + "/api/v1", KEY, timeout=5)
        answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert answer.body == (
        f"Cannot POST /api/v1/campaigns/7/settings?api_key={REDACTED} (key {REDACTED})"
    )


async def flood(request: web.Request) -> web.StreamResponse:
    """An answer of 1 MB, streamed with no length announced (``/long``: announced as a
    gigabyte); ``/short``: a body of exactly 1,000 bytes."""
    if request.path.endswith("/short"):
        return web.Response(body=b"[" + b" " * 998 + b"]", content_type="application/json")
    announced = {"Content-Length": str(10**9)} if request.path.endswith("/long") else {}
    response = web.StreamResponse(headers=announced)
    await response.prepare(request)
    try:
        for _ in range(1024):
            await response.write(b"x" * 1024)
    except (ConnectionError, RuntimeError):  # the client hung up: what it should do
        pass
    return response


@pytest.mark.parametrize("path", ["/campaigns/", "/long", "/campaigns/7/settings"])
async def test_an_answer_longer_than_the_cap_is_left_unread_and_fails_without_retry(
    session: aiohttp.ClientSession, path: str
) -> None:
    with ServerThread(flood) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5, max_body=1000)
        if path.endswith("/settings"):
            answer = await sender.send(settings_request(7, {"sending_limit": 5}))
        else:
            answer = await sender.read(path)
        short = await sender.read("/short")  # the same sender goes on reading
    assert (answer.status, answer.body, answer.too_large) == (200, "", 1000)
    decision = classify(answer)
    assert decision == Decision(
        Verdict.FAILED,
        "HTTP 200: the answer is larger than 1,000 bytes, the most bulkrunner reads: left unread",
    )
    assert not leaks(decision.message)
    assert (short.status, len(short.body), short.too_large) == (200, 1000, None)
    assert classify(short).verdict is Verdict.SUCCEEDED


def test_the_cap_is_stated_in_megabytes() -> None:
    from bulkrunner.sending.transport import MAX_BODY

    answer = Answer(200, too_large=MAX_BODY)
    assert classify(answer).message == (
        "HTTP 200: the answer is larger than 64 MB, the most bulkrunner reads: left unread"
    )
    assert classify(Answer(503, too_large=MAX_BODY)).verdict is Verdict.RETRY  # as any 503
    assert classify(Answer(401, too_large=MAX_BODY)).verdict is Verdict.ABORT


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000])
async def test_an_answer_nested_deeper_than_the_parser_goes_is_a_failed_answer_not_a_crash(
    session: aiohttp.ClientSession, body: str
) -> None:
    """100 KB of ``[[[[``: Python's JSON parser gives up with RecursionError, which the sender
    let through (the command ended with an internal error, exit 3). It is taken as any answer
    that is not JSON, and the run goes on."""

    async def nested(request: web.Request) -> web.Response:
        return web.Response(status=200, text=body, content_type="application/json")

    with ServerThread(nested) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5)
        written = await sender.send(settings_request(7, {"sending_limit": 5}))
        listed = await sender.list_campaigns()
    assert (written.status, listed.status) == (200, 200)
    assert classify(written) == classify(Answer(200, "not JSON"))
    assert parse_campaigns(listed) is None


@pytest.mark.parametrize("status", [400, 200])
async def test_a_request_line_echoed_cut_short_shows_no_part_of_the_key(
    session: aiohttp.ClientSession, status: int
) -> None:
    """A server quoting the request line only so far (60 characters) quoted part of the key,
    which is not the key, so was left in the row's error, the log and the report."""

    async def cut_short(request: web.Request) -> web.Response:
        line = f"{request.method} {request.raw_path}"
        return web.json_response(
            {"success": False, "error": f"bad request: {line[:60]}..."}, status=status
        )

    with ServerThread(cut_short) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5)
        got = await sender.send(settings_request(7, {"sending_limit": 5}))
    message = classify(got).message
    assert message == f"HTTP {status}: bad request: POST /campaigns/7/settings?api_key={REDACTED}"
    assert KEY[:8] not in message
