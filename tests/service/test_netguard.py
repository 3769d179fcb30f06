"""The SSRF guard's decisions, tested without connecting anywhere but loopback."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from imagine.netguard import BlockedAddress, GuardedResolver, check_url, is_public, parse_ip_literal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "2002:7f00:1::",
    ],
)
def test_private_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://2130706433/x.png",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://169.254.169.254/latest",
        "http://localhost:8080/",
        "file:///etc/passwd",
        "gopher://x/",
        "http://user:pw@example.com/",
    ],
)
def test_urls_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url(url, allow_private=False)


def test_allow_private_lets_loopback_through() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_private=True).host == "127.0.0.1"


def test_decimal_and_octal_forms_are_read_as_addresses() -> None:
    assert str(parse_ip_literal("2130706433")) == "127.0.0.1"
    assert str(parse_ip_literal("0177.0.0.1")) == "127.0.0.1"
    assert parse_ip_literal("example.com") is None


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    class Rebinding:
        async def resolve(
            self, host: str, port: int = 0, family: int = socket.AF_INET
        ) -> list[dict[str, object]]:
            return [
                {
                    "hostname": host,
                    "host": "10.1.2.3",
                    "port": port,
                    "family": socket.AF_INET,
                    "proto": 0,
                    "flags": 0,
                }
            ]

        async def close(self) -> None:
            return None

    resolver = GuardedResolver(allow_private=False, inner=Rebinding())  # type: ignore[arg-type]
    with pytest.raises(BlockedAddress, match="private"):
        await resolver.resolve("rebind.example", 80)


async def test_mixed_answers_keep_only_public_addresses() -> None:
    class Mixed:
        async def resolve(
            self, host: str, port: int = 0, family: int = socket.AF_INET
        ) -> list[dict[str, object]]:
            return [
                {
                    "hostname": host,
                    "host": "127.0.0.1",
                    "port": port,
                    "family": socket.AF_INET,
                    "proto": 0,
                    "flags": 0,
                },
                {
                    "hostname": host,
                    "host": "93.184.216.34",
                    "port": port,
                    "family": socket.AF_INET,
                    "proto": 0,
                    "flags": 0,
                },
            ]

        async def close(self) -> None:
            return None

    resolver = GuardedResolver(allow_private=False, inner=Mixed())  # type: ignore[arg-type]
    answers = await resolver.resolve("mixed.example", 80)
    assert [a["host"] for a in answers] == ["93.184.216.34"]
