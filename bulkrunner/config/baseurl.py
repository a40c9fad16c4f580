"""The base URL a run talks to: checked where it is read, shown without its credentials, and
reduced to the server it names.

A base URL comes from ``--base-url``, ``SMARTLEAD_BASE_URL``, a job file or an accounts file,
and each is checked as it is read (``check``): one that cannot name a server (``http://``, a
port beyond 65535, a host that is neither a name nor an address) or that carries a query string
or a fragment (the request paths are appended to it, so they would land in the query) is a
one-line usage error before anything is read. Credentials in it
(``https://user:password@proxy.example/api/v1``) are allowed, and sent as HTTP basic auth; they
are secrets as the key is: a message shows the URL as ``shown`` gives it, and they are
remembered for redaction as the key is.

``server`` is the server a URL names, one spelling for each: two runs with the same key on the
same server are one account (``bulkrunner.config.folders.account_lock_path``) however its URL is
written.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from urllib.parse import SplitResult, unquote, urlsplit

from bulkrunner.config.redaction import REDACTED, remember
from bulkrunner.errors import UsageError

_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")  # a host name's label, as IDNA
_LOOPBACK = "localhost"  # the one spelling of this machine, whichever loopback name is used


def check(url: str, where: str) -> str:
    """``url`` (surrounding blanks removed) if it can be the base URL of a server; else a
    UsageError: ``{where}: base URL ...``, one line, credentials and query hidden. ``where``
    names where it was given (``--base-url``, a file and its key). Its credentials, if any, are
    remembered for redaction."""
    url = url.strip()
    problem = _problem(url)
    if problem:
        raise UsageError(f"{where}: base URL {problem}, got {shown(url)!r}")
    _remember_credentials(urlsplit(url))
    return url


def shown(url: str) -> str:
    """``url`` as a message may show it: credentials as REDACTED, no query string or fragment
    (which may hold a key: ``?api_key=...``)."""
    before, hash_, _ = url.partition("#")
    before, question, _ = before.partition("?")
    scheme, slashes, rest = before.partition("//")
    if slashes:
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            authority = f"{REDACTED}@{authority.rpartition('@')[2]}"
        before = f"{scheme}//{authority}{slash}{path}"
    return before + ("?…" if question else "") + ("#…" if hash_ else "")


def server(url: str) -> str:
    """The server ``url`` names, one spelling for each: scheme and host in lower case, the port
    always given (80 or 443 when it is not), every loopback name and address (``localhost``,
    ``127.0.0.1``, ``::1``) as ``localhost``. Not the path (a key is an account of the server,
    whatever path leads to it) nor the credentials. ``url`` has passed ``check``."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    port = parts.port or _DEFAULT_PORTS[scheme]
    if ":" in host:  # an IPv6 address, bracketed as in a URL
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _problem(url: str) -> str:
    """What stops ``url`` from being a base URL (to follow "base URL"), or ""."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Port out of range 0-65535", "Invalid IPv6 URL"
        if str(exc).startswith("Port"):
            return "port must be a number between 1 and 65535"
        return f"is not a URL ({exc})"
    if parts.scheme not in _SCHEMES:
        return "must start with http:// or https://"
    if "?" in url or "#" in url:
        return (
            "must not have a query string or a fragment (the request paths are appended to "
            "it; the key goes in its environment variable, never in the URL)"
        )
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "port must be a number between 1 and 65535"
    if not _valid_host(parts.hostname, bracketed="[" in parts.netloc):
        return f"host {parts.hostname!r} is neither a host name nor an IP address"
    return ""


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:  # [::1], [fe80::1%25eth0]
        return _address(unquote(host).partition("%")[0]) is not None
    if re.fullmatch(r"[0-9.]+", host):
        return _address(host) is not None
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = name.removesuffix(".").split(".")
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host(host: str) -> str:
    """A host in one spelling: lower case and IDNA-encoded, no final dot, addresses in their
    short form, every loopback one as ``localhost``."""
    host = host.lower().removesuffix(".")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")  # (``check`` has made sure it encodes)
    if host == _LOOPBACK or host.endswith("." + _LOOPBACK):  # RFC 6761: always this machine
        return _LOOPBACK
    address = _address(unquote(host).partition("%")[0])
    if address is None:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return _LOOPBACK if address.is_loopback else address.compressed


def _remember_credentials(parts: SplitResult) -> None:
    """Redact the URL's credentials wherever the key is: as written, and as the basic-auth
    token aiohttp sends (which a server may echo back)."""
    written = parts.netloc.rpartition("@")[0]
    if not written:
        return
    remember(written)
    user, _, password = written.partition(":")
    token = f"{unquote(user)}:{unquote(password)}".encode("latin-1", errors="replace")
    remember(base64.b64encode(token).decode("ascii"))
