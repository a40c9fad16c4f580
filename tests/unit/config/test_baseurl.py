"""The base URL as a table: what is refused and why, how a message shows it, and which server
(with a key, which account) it names. Through the CLI: ``test_cli``, ``test_accounts``,
``test_locking`` and ``test_hostile``."""

from __future__ import annotations

import pytest

from bulkrunner.config import redaction
from bulkrunner.config.baseurl import check, server, shown
from bulkrunner.errors import UsageError


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://", "has no host"),
        ("https://:443/api/v1", "has no host"),
        ("http:127.0.0.1/api/v1", "has no host"),
        ("ftp://example.com/api/v1", "must start with http:// or https://"),
        ("server.smartlead.ai/api/v1", "must start with http:// or https://"),
        ("http://127.0.0.1:99999/api/v1", "port must be a number between 1 and 65535"),
        ("http://127.0.0.1:0/api/v1", "port must be a number between 1 and 65535"),
        ("http://127.0.0.1:http/api/v1", "port must be a number between 1 and 65535"),
        ("http://[::1/api/v1", "is not a URL"),
        ("http://smart lead.ai/api/v1", "host 'smart lead.ai' is neither a host name nor"),
        ("http://300.1.1.1/api/v1", "host '300.1.1.1' is neither"),
        ("http://server..smartlead.ai/api/v1", "is neither a host name nor an IP address"),
        ("https://server.smartlead.ai/api/v1?x=1", "must not have a query string"),
        ("https://server.smartlead.ai/api/v1?", "must not have a query string"),
        ("https://server.smartlead.ai/api/v1#top", "or a fragment"),
    ],
)
def test_a_base_url_that_cannot_be_one_is_refused_in_one_line(url: str, problem: str) -> None:
    with pytest.raises(UsageError) as refused:
        check(url, "--base-url")
    message = str(refused.value)
    assert message.startswith("--base-url: base URL ")
    assert problem in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "https://server.smartlead.ai/api/v1",
        "http://127.0.0.1:8787/api/v1/",
        "http://[::1]:8787/api/v1",
        "http://[fe80::1%25eth0]:8787/api/v1",
        "https://proxy_1.internal.example/smartlead",
        "https://bücher.example/api",
        "HTTPS://Server.SmartLead.AI",
        "https://user:pa%40ss@proxy.example/api/v1",
    ],
)
def test_a_base_url_that_can_be_one_is_kept_as_written(url: str) -> None:
    assert check(f"  {url}\n", "--base-url") == url  # (blanks around it, from a file: dropped)


@pytest.mark.parametrize(
    ("url", "seen"),
    [
        ("https://user:secret@proxy.example/api/v1", "https://REDACTED@proxy.example/api/v1"),
        ("ftp://token@proxy.example", "ftp://REDACTED@proxy.example"),
        ("https://a:b@c@proxy.example/x", "https://REDACTED@proxy.example/x"),
        ("https://proxy.example/api?api_key=sk-1#x", "https://proxy.example/api?…#…"),
        ("https://proxy.example/api#key=sk-1", "https://proxy.example/api#…"),
        ("server.smartlead.ai/api/v1", "server.smartlead.ai/api/v1"),
    ],
)
def test_a_message_shows_no_credentials_and_no_query(url: str, seen: str) -> None:
    assert shown(url) == seen


def test_credentials_are_refused_without_being_shown_and_redacted_once_accepted() -> None:
    with pytest.raises(UsageError) as refused:
        check("https://proxyuser:pw-91xq@proxy.example:70000/api", "SMARTLEAD_BASE_URL")
    assert "pw-91xq" not in str(refused.value)
    check("https://proxyuser:pw-77zq@proxy.example/api", "SMARTLEAD_BASE_URL")
    token = "cHJveHl1c2VyOnB3LTc3enE="  # base64 of proxyuser:pw-77zq: HTTP basic auth's
    echoed = f"GET https://proxyuser:pw-77zq@proxy.example/api (Authorization: Basic {token})"
    assert redaction.redact(echoed) == (
        f"GET https://{redaction.REDACTED}@proxy.example/api "
        f"(Authorization: Basic {redaction.REDACTED})"
    )


@pytest.mark.parametrize(
    ("spellings", "same"),
    [
        (
            [
                "http://127.0.0.1:8787/api/v1",
                "http://localhost:8787/api/v1/",
                "HTTP://LOCALHOST:8787/api/v1",
                "http://[::1]:8787/api/v1",
                "http://[::ffff:127.0.0.1]:8787/api/v1",
                "http://127.0.0.2:8787/api/v1",
                "http://app.localhost.:8787/api/v1",
                "http://user:pw@127.0.0.1:8787//api/v1//",
            ],
            True,
        ),
        (
            [
                "https://server.smartlead.ai/api/v1",
                "https://SERVER.SmartLead.ai:443/api/v1/",
                "https://server.smartlead.ai./api/v1",
                "https://server.smartlead.ai/API/v2",  # the server, whatever the path
            ],
            True,
        ),
        (["http://[2001:db8::1]/api", "http://[2001:0db8:0:0::1]:80/api/"], True),
        (["https://bücher.example/api", "https://xn--bcher-kva.example/api"], True),
        (["http://127.0.0.1:8787/api/v1", "http://127.0.0.1:8788/api/v1"], False),
        (["http://server.smartlead.ai/api/v1", "https://server.smartlead.ai/api/v1"], False),
        (["https://server.smartlead.ai/api/v1", "https://proxy.example/api/v1"], False),
    ],
)
def test_the_server_of_a_base_url_has_one_spelling(spellings: list[str], same: bool) -> None:
    servers = {server(check(url, "--base-url")) for url in spellings}
    assert (len(servers) == 1) == same, servers
