"""Reaching Discord: when it cannot be reached, say so in one sentence and try again.

A bot run as a service (systemd, docker ``restart:``) must ride out a network blip, a DNS outage
or a Discord incident instead of crash-looping with a traceback: each failed login is one log
line naming the address and what to check, and the next try waits longer (doubling up to a cap).
A rejected token is not a reachability problem and is never retried (see ``bot.__main__``).
"""

from __future__ import annotations

import errno
import logging

import aiohttp
import discord

STATUS_PAGE = "https://discordstatus.com"


def api_address() -> str:
    """Where discord.py sends REST calls (DISCORD_API_BASE when set, else Discord's API)."""
    return discord.http.Route.BASE


def is_unreachable(error: BaseException) -> bool:
    """A failure that another try can cure: no connection, a timeout, Discord 5xx or 429."""
    if isinstance(error, discord.HTTPException):
        return error.status >= 500 or error.status == 429
    return isinstance(error, aiohttp.ClientError | TimeoutError)


def _where_to_look(custom_base: bool) -> str:
    where = "the network connection, a firewall or proxy"
    return f"{where}, and DISCORD_API_BASE" if custom_base else where


def why_unreachable(error: BaseException, address: str, *, custom_base: bool = False) -> str:
    """One sentence: the address, what happened, what to check."""
    check = _where_to_look(custom_base)
    if isinstance(error, discord.HTTPException):
        reason = f"{error.status} {error.response.reason or ''}".strip()
        if error.status == 429:
            return (
                f"Discord at {address} is rate-limiting this machine ({reason}); too many logins "
                "in a short time (a restart loop, or other bots on this address) cause this."
            )
        return (
            f"Discord at {address} answered {reason} at login: a problem on Discord's side "
            f"(see {STATUS_PAGE})."
        )
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        also = ", and DISCORD_API_BASE" if custom_base else ""
        return (
            f"Cannot reach Discord at {address}: the name {error.host} could not be resolved; "
            f"check this machine's network connection and DNS settings{also}."
        )
    if isinstance(error, aiohttp.ClientSSLError):
        return (
            f"Cannot reach Discord at {address}: the secure connection failed ({error}); check "
            "the system clock and the CA certificates (the certifi package)."
        )
    if isinstance(error, aiohttp.ClientConnectorError):
        if error.os_error.errno == errno.ECONNREFUSED:
            return f"Cannot reach Discord at {address}: the connection was refused; check {check}."
        what = error.os_error.strerror or str(error.os_error) or type(error.os_error).__name__
        return f"Cannot reach Discord at {address}: the connection failed ({what}); check {check}."
    if isinstance(error, TimeoutError):
        return f"Cannot reach Discord at {address}: it did not answer in time; check {check}."
    detail = str(error) or type(error).__name__
    return f"Cannot reach Discord at {address}: the connection broke ({detail}); check {check}."


class Backoff:
    """Waits that double from ``first`` up to ``most`` seconds."""

    def __init__(self, first: float, most: float) -> None:
        self.most = most
        self._next = min(first, most)

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self.most)
        return wait


def seconds(value: float) -> str:
    return f"{value:g} s" if value < 120 else f"{value / 60:g} min"


class QuietRetries(logging.Filter):
    """discord.py's own lines around retries, made one line each.

    Every login attempt logs "logging in using static token": kept once. A lost gateway
    connection is logged at ERROR with a traceback on every reconnect attempt: made a WARNING
    that names the gateway and the reason in one line (discord.py retries by itself).
    """

    def __init__(self, gateway: str) -> None:
        super().__init__()
        self.gateway = gateway
        self._logged_in_once = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "logging in using static token":
            first, self._logged_in_once = not self._logged_in_once, True
            return first
        if isinstance(record.msg, str) and record.msg.startswith("Attempting a reconnect in"):
            error = record.exc_info[1] if record.exc_info else None
            reason = (str(error) or type(error).__name__) if error is not None else "unknown"
            args = record.args if isinstance(record.args, tuple) else ()
            wait = args[0] if args and isinstance(args[0], int | float) else 0.0
            record.msg = "lost the connection to Discord's gateway %s (%s); reconnecting in %s"
            record.args = (self.gateway, reason, seconds(round(wait, 2)))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True
