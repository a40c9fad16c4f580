"""Send one request of an operation over HTTP and turn whatever happens into an :class:`Answer`.

The engine depends only on the :class:`Sender` protocol; tests replace it with a fake, or run
:class:`HttpSender` against aioresponses or the simulator. No exception text leaves this module
without passing through ``redact_url``: aiohttp puts the full URL, key included, in its messages.
A server's answer passes through ``redact``, which hides the key and leaves the rest as it is:
the answer holds the user's values (an ``unsubscribe_text`` may hold a link with ``api_key=``).
"""

from __future__ import annotations

import asyncio  # aiohttp's own errors only: the package runs on anyio (asyncio backend)
import json
from typing import Any, Protocol

import aiohttp

from bulkrunner.config.baseurl import shown
from bulkrunner.config.redaction import redact, redact_url
from bulkrunner.limits.limiter import answer_received, request_written
from bulkrunner.model import Answer
from bulkrunner.operations.answers import (
    body_retry_after,
    header_count,
    header_reset,
    header_retry_after,
    sound,
)
from bulkrunner.operations.base import Request


def limiter_tracing() -> aiohttp.TraceConfig:
    """Hooks for a session whose requests go through the limiter: each request's window slot is
    stamped when its headers are written to the socket, and its answer's round-trip time is
    learned from (see ``bulkrunner.limits.limiter``)."""

    async def written(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        request_written()

    async def answered(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        answer_received(params.response.status)

    async def failed(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        answer_received(None)

    tracing = aiohttp.TraceConfig()
    tracing.on_request_headers_sent.append(written)
    tracing.on_request_end.append(answered)
    tracing.on_request_exception.append(failed)
    return tracing


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """The HTTP client of a run: at most ``concurrency`` connections, each request stamped in
    the limiter when it is written (``limiter_tracing``)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), trace_configs=[limiter_tracing()]
    )


class Sender(Protocol):
    async def send(self, request: Request) -> Answer:
        """Send one request of an operation (a campaign write); never raises for I/O."""
        ...

    async def read(self, path: str) -> Answer:
        """GET ``path`` (under the base URL): a campaign's detail an operation reads, such as
        its email accounts; never raises for I/O."""
        ...

    async def get_campaign(self, campaign_id: int) -> Answer:
        """Read one campaign (its current settings); never raises for I/O."""
        ...

    async def list_campaigns(self) -> Answer:
        """Read every campaign of the account in one call; never raises for I/O."""
        ...


# The longest answer body read (the list of every campaign can be long: 300 MB took 1.1 GB to
# hold and parse). A longer one is left unread, the connection closed: ``Answer.too_large``.
MAX_BODY = 64 << 20


class HttpSender:
    """Sends requests with a shared ``aiohttp.ClientSession`` (owned by the caller), reading
    at most ``max_body`` bytes of an answer (default ``MAX_BODY``)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        timeout: float,
        max_body: int | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._timeout_seconds = timeout
        self._max_body = MAX_BODY if max_body is None else max_body

    async def send(self, request: Request) -> Answer:
        return await self._request(request.method, request.path, json.dumps(request.body))

    async def read(self, path: str) -> Answer:
        return await self._request("GET", path)

    async def get_campaign(self, campaign_id: int) -> Answer:
        return await self._request("GET", f"/campaigns/{campaign_id}")

    async def list_campaigns(self) -> Answer:
        return await self._request("GET", "/campaigns/")

    async def _request(self, method: str, path: str, body: str | None = None) -> Answer:
        secrets = [self._api_key]
        sent = {"Accept": "application/json"}
        if body is not None:
            sent["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                params={"api_key": self._api_key},
                data=body,
                headers=sent,
                timeout=self._timeout,
                allow_redirects=False,  # following one would send the key to another address
            ) as response:
                raw = await _body(response, self._max_body)
                if raw is None:
                    response.close()  # the rest is not read, even to reuse the connection
                # The server's text may echo the request line, key included: redact it here,
                # before it can reach any message, log or file. An error's text is no value
                # of a campaign: any api_key= in it is hidden too, whatever it holds (a
                # request line cut short holds part of the key).
                text = _decode(raw or b"", response.charset)
                ok = 200 <= response.status < 300
                text = redact(text, secrets) if ok else redact_url(text, secrets)
                headers = response.headers
                retry_after = header_retry_after(headers.get("Retry-After"))
                if retry_after is None:
                    retry_after = body_retry_after(text)
                location = headers.get("Location") if 300 <= response.status < 400 else None
                return Answer(
                    response.status,
                    text,
                    retry_after,
                    limit=header_count(headers.get("X-RateLimit-Limit")),
                    remaining=header_count(headers.get("X-RateLimit-Remaining")),
                    reset=header_reset(headers.get("X-RateLimit-Reset")),
                    location=redact_url(location, secrets) if location is not None else None,
                    too_large=self._max_body if raw is None else None,
                )
        except TimeoutError:
            return Answer(
                None,
                transport_error=f"timed out after {self._timeout_seconds:g}s",
                outcome_unknown=True,
            )
        except aiohttp.ServerDisconnectedError:
            return Answer(
                None, transport_error="connection dropped by the server", outcome_unknown=True
            )
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, ConnectionRefusedError):
                url = redact_url(f"{shown(self._base_url)}{path}?api_key={self._api_key}", secrets)
                refused = f"cannot connect: connection refused by {url}"
                return Answer(None, transport_error=refused, refused=True)
            return Answer(None, transport_error=self._describe("cannot connect", exc))
        # aiohttp is asyncio-only and lets asyncio's IncompleteReadError (a body cut short)
        # escape: the one asyncio name the client needs.
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            # The request may have been sent before the connection broke.
            return Answer(
                None, transport_error=self._describe("connection error", exc), outcome_unknown=True
            )

    def _describe(self, what: str, exc: BaseException) -> str:
        detail = str(exc) or type(exc).__name__
        return redact_url(f"{what}: {detail}", [self._api_key])


async def _body(response: aiohttp.ClientResponse, most: int) -> bytearray | None:
    """The answer's body, or None once it proves longer than ``most`` bytes (its length as
    announced, or as read so far: no more of it is read)."""
    if response.content_length is not None and response.content_length > most:
        return None
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > most:
            return None
    return body


def _decode(raw: bytes | bytearray, declared: str | None) -> str:
    """The body as text, in its declared charset if that is a text encoding Python knows and
    can decode any bytes in, else in UTF-8: a bogus charset ("charset=bogus", "charset=base64",
    "charset=idna", which refuses to replace what it cannot read) is not fatal. Halves of
    characters an odd charset gives ("charset=utf-7") are replaced (``sound``)."""
    try:
        return sound(raw.decode(declared or "utf-8", errors="replace"))
    except (LookupError, UnicodeError, ValueError):
        return raw.decode("utf-8", errors="replace")
