"""What the remote tier may dial: the route's own host, public addresses, and the networks the route allows.

An edge runs on a node: it can reach the node's loopback, the cloud's metadata service (169.254.169.254) and the
cluster's private networks, which its clients cannot. A remote registry (or anything on its path) that answers
with a redirect or a token realm must not be able to point the edge there and have the answer streamed to a
client. The rule, for every connection the remote tier opens:

* **The route's own host** (the host of its ``url``, by name or address literal, any port) may be dialed at
  whatever address it resolves to: the operator chose it, and the machine behind it can reach its own ports anyway.
* **Any other host** (a redirect's ``Location``, a token realm) only at addresses that are public
  (`ipaddress`'s ``is_global``, and none of loopback, private, link-local, site-local, multicast, reserved,
  unspecified; IPv4-mapped and 6to4 IPv6 addresses are judged by the IPv4 address inside), or inside one of the
  route's ``allowed_networks``. A name is refused when any address it resolves to is refused.

The check is on the addresses actually dialed: a name is checked in the connector's resolver (`GuardedResolver`),
after resolution and before any connection, so DNS rebinding cannot slip a private address past it; an address
literal never reaches a resolver and is checked by `DialPolicy.check_url` before each request.

Where the route's credentials may go (`realm_may_see_credentials`) is a separate, narrower rule: only to a token
realm on the route's host or registrable domain; redirects never carry them.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlparse

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from publicsuffixlist import PublicSuffixList
from werkzeug.datastructures import WWWAuthenticate

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_PUBLIC_SUFFIXES = PublicSuffixList()


class DialRefused(OSError):
    """The remote tier was pointed at `address` (of `host`), which the route may not dial: `reason` says why."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"refused to dial {address} ({reason}) for host {host}")
        self.host, self.address, self.reason = host, address, reason


def _unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped (``::ffff:a.b.c.d``) or 6to4 (``2002:…``) IPv6 address carries."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or address
    return address


def address_class(text: str) -> str:
    """``"public"``, or the first of loopback, unspecified, link_local, site_local, multicast, private, reserved,
    not_global that the address (IPv4-mapped and 6to4 unwrapped) is; ``"invalid"`` when `text` is no address."""
    try:
        address = _unwrap(ipaddress.ip_address(text.split("%", 1)[0]))  # a scope id (fe80::1%eth0) is no help
    except ValueError:
        return "invalid"
    for name in ("loopback", "unspecified", "link_local", "site_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}", False):
            return name
    return "public" if address.is_global else "not_global"  # e.g. 100.64.0.0/10, carrier-grade NAT


def _canonical_host(host: str) -> str:
    host = host.strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


class DialPolicy:
    """The dialing rule of one route (module docstring): its own host, public addresses, `allowed_networks`."""

    def __init__(self, route_url: str, allowed_networks: tuple[IPNetwork, ...] = ()) -> None:
        self.route_host = _canonical_host(urlparse(route_url).hostname or "")
        self.allowed_networks = allowed_networks

    def is_route_host(self, host: str) -> bool:
        return _canonical_host(host) == self.route_host

    def refusal(self, host: str, address: str) -> str | None:
        """None when `address` (of `host`) may be dialed; otherwise the address class that refuses it."""
        if self.is_route_host(host):
            return None
        reason = address_class(address)
        if reason == "public":
            return None
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return reason
        if any(candidate in network for candidate in {ip, _unwrap(ip)} for network in self.allowed_networks
               if candidate.version == network.version):
            return None
        return reason

    def check_url(self, url: str) -> None:
        """Refuse a URL that is not http(s), or whose host is an address literal this route may not dial (names
        are left to `GuardedResolver`, which sees what they resolve to)."""
        parsed = urlparse(url)
        host = parsed.hostname or ""
        if parsed.scheme not in ("http", "https") or not host:
            raise DialRefused(host or "?", url[:80], "not an http(s) URL")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return
        reason = self.refusal(host, host)
        if reason is not None:
            raise DialRefused(host, host, reason)


class GuardedResolver(AbstractResolver):
    """A resolver for the route's connector that refuses a name resolving to any address the policy refuses."""

    def __init__(self, policy: DialPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = self._policy.refusal(host, str(result["host"]))
            if reason is not None:
                raise DialRefused(host, str(result["host"]), reason)
        return results

    async def close(self) -> None:
        await self._inner.close()


def refused_cause(error: BaseException) -> DialRefused | None:
    """The `DialRefused` behind an aiohttp connection error, if that is what it is."""
    seen: Any = error
    for _ in range(5):
        if isinstance(seen, DialRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
        if seen is None:
            return None
    return None


# -- where the route's credentials may go ---------------------------------------------------------------------


def realm_may_see_credentials(remote_host: str, realm_host: str) -> bool:
    """Whether credentials for `remote_host` may be sent to a token realm on `realm_host`.

    Same host always; otherwise the same registrable domain (public suffix list), never for IP addresses.
    """
    remote_host, realm_host = remote_host.lower().rstrip("."), realm_host.lower().rstrip(".")
    if remote_host == realm_host:
        return True
    for host in (remote_host, realm_host):
        try:
            ipaddress.ip_address(host)
            return False
        except ValueError:
            pass
    remote_domain = _PUBLIC_SUFFIXES.privatesuffix(remote_host)
    return remote_domain is not None and remote_domain == _PUBLIC_SUFFIXES.privatesuffix(realm_host)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """A 401's ``WWW-Authenticate`` → its scheme in lower case and its parameters, quoted or not (RFC 9110
    section 11.6.1 allows both: ``Bearer realm=https://auth.example/token,service=registry.example``), by werkzeug's
    parser. ``("", {})`` for an empty header."""
    challenge = WWWAuthenticate.from_header(header)
    if challenge is None:
        return "", {}
    return challenge.type, {key.lower(): value for key, value in challenge.parameters.items() if value is not None}
