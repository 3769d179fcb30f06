"""Logging for the service's and the bot's processes: one line per event, whatever users send.

Prompts, ``ref`` users, URLs and error texts reach log lines as arguments. A CR or LF in one of
them would forge whole log lines, so every argument's control characters are escaped (``\\n``,
``\\r``, ``\\x1b``, ``\\u2028``) when the record is made: before any handler, formatter or
capture sees it. The standard library has no switch for this, so it is the few lines below.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def escape(text: str) -> str:
    """``text`` with line breaks and other control characters written as escapes."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:  # \n, \r, \t, \x1b, \x85 (NEL), ...
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:  # U+2028/2029, and format characters (zero-width, bidi) made visible
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def _escaped(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # %d and %.1f still work
    text = value if isinstance(value, str) else str(value)
    return escape(text)


def install_escaping() -> None:
    """Escape the arguments of every log record made from now on, in this process."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "escapes", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.args, dict):
            record.args = {key: _escaped(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_escaped(value) for value in record.args)
        elif isinstance(record.msg, str):  # a message with no arguments is all there is
            record.msg = escape(record.msg)
        return record

    factory.escapes = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class MalformedRequests(logging.Filter):
    """aiohttp logs every malformed HTTP request it refuses (a header over 8 KiB, a bad chunk
    size, an unknown HTTP version) as an error with a traceback. That is the client's mistake,
    already answered 400: one warning line without the traceback, so clients cannot flood the
    log with tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            record.msg, record.args = (
                "refused a malformed HTTP request: %s",
                (escape(exc.message or type(exc).__name__),),
            )
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install() -> None:
    """Escaped arguments everywhere, and one line for each malformed request aiohttp refuses."""
    install_escaping()
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server.filters):
        server.addFilter(MalformedRequests())


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=_FORMAT)
    install()
