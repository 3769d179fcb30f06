"""Discord out of reach at start: one sentence per kind of failure, naming the address and what
to check; waits that grow to a cap; discord.py's reconnect traceback made one line. (The whole
path, through ``python -m bot``, is in tests/e2e/test_startup.py.)"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import sys
from types import SimpleNamespace

import aiohttp
import discord
from aiohttp.client_reqrep import ConnectionKey

from bot.login import Backoff, QuietRetries, is_unreachable, why_unreachable

ADDRESS = "https://discord.com/api/v10"
KEY = ConnectionKey("discord.com", 443, True, True, None, None, None, None)


def http_error(status: int, reason: str) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason=reason)
    return discord.HTTPException(response, {"message": reason, "code": 0})  # type: ignore[arg-type]


def test_each_failure_is_one_sentence_that_says_what_to_check() -> None:
    dns = aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "Name or service not known"))
    assert why_unreachable(dns, ADDRESS) == (
        f"Cannot reach Discord at {ADDRESS}: the name discord.com could not be resolved; check "
        "this machine's network connection and DNS settings."
    )
    unreachable = aiohttp.ClientConnectorError(
        KEY, OSError(errno.ENETUNREACH, "Network is unreachable")
    )
    assert why_unreachable(unreachable, ADDRESS, custom_base=True) == (
        f"Cannot reach Discord at {ADDRESS}: the connection failed (Network is unreachable); "
        "check the network connection, a firewall or proxy, and DISCORD_API_BASE."
    )
    certificate = aiohttp.ClientConnectorCertificateError(
        KEY, ssl.SSLCertVerificationError("expired")
    )
    assert "check the system clock and the CA certificates" in why_unreachable(certificate, ADDRESS)
    assert why_unreachable(TimeoutError(), ADDRESS).endswith(
        "it did not answer in time; check the network connection, a firewall or proxy."
    )
    assert why_unreachable(http_error(502, "Bad Gateway"), ADDRESS) == (
        f"Discord at {ADDRESS} answered 502 Bad Gateway at login: a problem on Discord's side "
        "(see https://discordstatus.com)."
    )
    assert "rate-limiting this machine" in why_unreachable(http_error(429, "Too Many"), ADDRESS)
    others: list[BaseException] = [
        dns,
        unreachable,
        certificate,
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
    ]
    for error in others:
        sentence = why_unreachable(error, ADDRESS)
        assert "\n" not in sentence
        assert sentence.endswith(".")


def test_only_what_another_try_can_cure_is_retried() -> None:
    assert is_unreachable(aiohttp.ClientConnectorError(KEY, ConnectionRefusedError()))
    assert is_unreachable(TimeoutError())
    assert is_unreachable(http_error(503, "Service Unavailable"))
    assert not is_unreachable(http_error(401, "Unauthorized"))  # a rejected token: exit 2
    assert not is_unreachable(discord.LoginFailure("Improper token has been passed."))
    assert not is_unreachable(PermissionError(13, "Permission denied"))


def test_waits_double_up_to_the_cap() -> None:
    waits = Backoff(5.0, 60.0)
    assert [waits.next() for _ in range(6)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert Backoff(10.0, 3.0).next() == 3.0


def test_discord_py_reconnect_traceback_becomes_one_warning_line() -> None:
    quiet = QuietRetries("wss://gateway.discord.gg/")
    try:
        raise aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))
    except aiohttp.ClientError:
        info = sys.exc_info()
    record = logging.LogRecord(
        "discord.client",
        logging.ERROR,
        "client.py",
        1,
        "Attempting a reconnect in %.2fs",
        (4.5,),
        info,
    )
    assert quiet.filter(record)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage() == (
        "lost the connection to Discord's gateway wss://gateway.discord.gg/ (Cannot connect to "
        "host discord.com:443 ssl:default [refused]); reconnecting in 4.5 s"
    )
    login = logging.LogRecord(
        "discord.client", logging.INFO, "client.py", 1, "logging in using static token", (), None
    )
    assert quiet.filter(login)
    assert not quiet.filter(login)  # once, not once a try
