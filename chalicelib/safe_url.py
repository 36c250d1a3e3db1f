"""Fetching URLs that customers chose (attachment links) without server-side request forgery.

Two guards, both needed:

1. `checked_url` parses the URL once, strictly, and answers the URL rebuilt from what it checked,
   so the HTTP client can never read it differently (`https://127.0.0.1:18850\\@x.fbcdn.net/` is a
   backslash: refused, not "host fbcdn.net"). Only lower-case `https://`, a host name on the
   allow list, no user info, no port, no backslash, no whitespace or control characters, ASCII.
2. `guarded_session` connects only to public addresses: the host name is resolved at connect
   time (runtime.resolve) and the socket opened to the address that was checked, so DNS cannot
   answer one address for the check and another for the connection. Loopback, private, link-local,
   shared, multicast, reserved and unspecified addresses (IPv4, IPv6, IPv4-mapped, 6to4 and NAT64
   forms) are refused, except the `trusted` host:port pairs an operator configured (the local
   sandbox). Environment proxies are ignored.
Redirects are not followed by the callers (a 3xx is "unavailable"); sizes and total time are the
caller's caps (chalicelib.api.media_routes)."""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, Callable, Iterable, List, Optional, Tuple

MAX_URL_CHARS = 4096
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_REST = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


#: API base URLs an operator may point at the local sandbox (loopback): fetched as configured.
TRUSTED_BASE_SETTINGS = ("TELEGRAM_API_BASE_URL", "META_GRAPH_BASE_URL")


def configured_bases() -> List[str]:
    """The trusted base URLs set in the environment, without a trailing '/'."""
    import os

    return [base.rstrip("/") for base in (os.environ.get(name) for name in TRUSTED_BASE_SETTINGS) if base]


def trusted_bases() -> List[Tuple[str, int]]:
    """(host, port) of each configured base: the only non-public addresses a fetch may reach."""
    from urllib.parse import urlsplit

    found = []
    for base in configured_bases():
        try:
            parts = urlsplit(base)
            found.append(((parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)))
        except ValueError:
            continue
    return found


class Refused(ValueError):
    """Not a URL or address this server may fetch (never echoes the URL: it may hold a token)."""


def checked_url(url: Any, hosts: Iterable[str], bases: Iterable[str] = ()) -> str:
    """`url` as it will be fetched, if it is https on one of `hosts` (or a sub-domain), or a path
    under one of the `bases` (configured, so taken as they are); Refused otherwise."""
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL_CHARS or not url.isascii():
        raise Refused("not a URL")
    for base in bases:
        if url.startswith(base + "/") and _REST.fullmatch(url[len(base):]):
            return url
    if not url.startswith("https://"):
        raise Refused("only https:// URLs are fetched")
    rest = url[len("https://"):]
    cut = min([rest.index(c) for c in "/?" if c in rest] or [len(rest)])
    host, tail = rest[:cut], rest[cut:]
    if "@" in host or ":" in host or not _HOST.fullmatch(host):
        raise Refused("the URL's host must be a plain host name (no user info, no port)")
    if not _REST.fullmatch(tail):
        raise Refused("the URL holds characters that are not allowed (backslash, space, '#', ...)")
    if not any(host == allowed or host.endswith("." + allowed) for allowed in hosts):
        raise Refused("not a platform media host")
    return f"https://{host}{tail or '/'}"


def public_address(address: str) -> bool:
    """Whether `address` (IPv4 or IPv6 text) is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not public_address(str(embedded)):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_reserved or ip.is_unspecified)


Resolver = Callable[[str, int], List[Tuple[int, str]]]


def system_resolve(host: str, port: int) -> List[Tuple[int, str]]:
    """(family, address) pairs for a host name, from the system resolver."""
    return [(family, info[0]) for family, _, _, _, info in
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def connect_checked(host: str, port: int, timeout: Any, trusted: Iterable[Tuple[str, int]],
                    resolve: Resolver, socket_options: Any = None) -> socket.socket:
    """A socket to `host`:`port`, opened to an address that was checked: every address the name
    resolves to must be public (or the pair trusted), else Refused before any connection."""
    from urllib3.util import connection

    addresses = resolve(host, port)
    if not addresses:
        raise Refused("the host has no address")
    if (host, port) not in set(trusted) and not all(public_address(address) for _, address in addresses):
        raise Refused("the host resolves to an address that is not public")
    last: Optional[OSError] = None
    for _, address in addresses:
        try:
            return connection.create_connection((address, port), timeout, socket_options=socket_options)
        except OSError as error:
            last = error
    raise last or OSError("no address could be reached")


def guarded_session(trusted: Callable[[], Iterable[Tuple[str, int]]], resolve: Callable[[], Resolver]) -> Any:
    """A requests.Session whose every connection goes through `connect_checked` (no proxies
    from the environment). `trusted` and `resolve` are read per connection."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def new_conn(self: Any) -> socket.socket:
        return connect_checked(self._dns_host, self.port, self.timeout, trusted(), resolve(), self.socket_options)

    guarded_http = type("GuardedHTTPConnection", (HTTPConnection,), {"_new_conn": new_conn})
    guarded_https = type("GuardedHTTPSConnection", (HTTPSConnection,), {"_new_conn": new_conn})
    pools = {"http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": guarded_http}),
             "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": guarded_https})}

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    session = requests.Session()
    session.trust_env = False
    session.mount("https://", GuardedAdapter())
    session.mount("http://", GuardedAdapter())
    return session
