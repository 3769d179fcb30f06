"""The SSRF guard: which addresses the service may connect to on a user's behalf.

Image URLs and webhooks come from users. Without a guard they could make the service fetch
cloud metadata (169.254.169.254), an admin page on loopback or a LAN host. Every such connection
goes through :class:`GuardedResolver`: the host is resolved once, every address is classified,
and aiohttp connects to exactly the address that was checked, so DNS rebinding between the
check and the connection is not possible. IP literals never reach a resolver, so
:func:`check_url` refuses them up front; redirects are followed by hand and each hop is checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddress(ValueError):
    """The URL points at an address the service must not reach; the message says why."""


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if address.teredo is not None:
            return False
        if address in _NAT64:  # 64:ff9b::a.b.c.d reaches a.b.c.d through a NAT64 gateway
            return is_public(ipaddress.IPv4Address(address.packed[-4:]))
    # is_global is False for loopback, RFC 1918, link-local, CGNAT (100.64/10), ULA, 0.0.0.0,
    # documentation and reserved ranges; multicast is refused separately.
    return address.is_global and not address.is_multicast


def parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host string denotes by itself, including the forms inet_aton accepts
    (2130706433, 0x7f.1, 0177.0.0.1) that browsers and libc treat as IPv4."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class UrlPolicy:
    """Where user-given URLs (image prompts, webhooks) may point."""

    allow_private: bool = False
    hosts: tuple[str, ...] = ()
    """If set, the only host names allowed (IMAGINE_URL_HOSTS)."""

    def check(self, url: str) -> URL:
        parsed = check_url(url, allow_private=self.allow_private)
        host = (parsed.host or "").lower().rstrip(".")
        if self.hosts and host not in self.hosts:
            raise BlockedAddress(f"{host} is not one of the hosts this service may fetch from")
        return parsed


def check_url(url: str, *, allow_private: bool) -> URL:
    """Refuse what can be refused without a DNS look-up: scheme, credentials, IP literals."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddress("only http and https links can be used")
    if not parsed.host:
        raise BlockedAddress("the link has no host name")
    if parsed.explicit_port == 0:
        raise BlockedAddress("port 0 cannot be connected to")
    if parsed.user or parsed.password:
        raise BlockedAddress("links with a user name or password are not accepted")
    check_host(parsed.raw_host or parsed.host)
    literal = parse_ip_literal(parsed.host)
    if literal is not None and not allow_private and not is_public(literal):
        raise BlockedAddress(f"{parsed.host} is a private or local address")
    if not allow_private and parsed.host.lower().rstrip(".") in (
        "localhost",
        "localhost.localdomain",
    ):
        raise BlockedAddress(f"{parsed.host} is a local address")
    return parsed


_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def check_host(host: str) -> None:
    """Refuse a host name that no resolver will ever find, so a webhook to it is refused at
    submission instead of retried for minutes: spaces, empty or over-long labels, a numeric
    address with a trailing dot."""
    if ":" in host:  # an IPv6 literal: ip_address decides
        return
    if any(c.isspace() for c in host) or "%" in host:
        raise BlockedAddress(f"the host name {host[:80]!r} has a space or an escape in it")
    name = host[:-1] if host.endswith(".") else host
    if host.endswith(".") and parse_ip_literal(name) is not None:
        raise BlockedAddress(f"the numeric address {host[:80]!r} cannot end with a dot")
    if len(name) > 253:
        raise BlockedAddress("the host name is longer than 253 characters")
    labels = name.split(".")
    if labels[-1].isdigit() and parse_ip_literal(name) is None:
        # no top-level domain is a number: this was meant as an IP address and is not one
        raise BlockedAddress(f"{host[:80]!r} is not a valid IP address")
    for label in labels:
        if not label:
            raise BlockedAddress(f"the host name {host[:80]!r} has an empty label")
        if label.startswith("-") or label.endswith("-"):
            raise BlockedAddress(
                f"the host name {host[:80]!r} has a label that starts or ends with -"
            )
        if len(label) > 63:
            raise BlockedAddress(
                f"the host name has a label of {len(label)} characters (at most 63)"
            )
        if not _LABEL.match(label):
            raise BlockedAddress(f"the host name {host[:80]!r} has characters no host name has")


class GuardedResolver(AbstractResolver):
    """Resolves once and hands aiohttp only addresses that pass the guard."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = parse_ip_literal(host)
        if literal is not None:
            results: list[ResolveResult] = [
                {
                    "hostname": host,
                    "host": str(literal),
                    "port": port,
                    "family": socket.AF_INET6 if literal.version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            ]
        else:
            results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if is_public(ipaddress.ip_address(r["host"].split("%")[0]))]
        if not allowed:
            raise BlockedAddress(f"{host} resolves to a private or local address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def guarded_connector_kwargs(allow_private: bool) -> dict[str, Any]:
    return {"resolver": GuardedResolver(allow_private), "use_dns_cache": False}
