"""The harness itself: it must see an ERROR record in the bot's log, or it could never fail."""

from __future__ import annotations

from tests.e2e.conftest import logged_errors


def test_error_records_are_found_with_their_traceback() -> None:
    lines = [
        "[2026-01-02 03:04:05] [INFO    ] discord.client: logging in using static token",
        "[2026-01-02 03:04:06] [ERROR   ] discord.ui.view: Ignoring exception in dynamic item callback",
        "Traceback (most recent call last):",
        '  File "cogs/buttons.py", line 1, in callback',
        "KeyError: 'x'",
        "[2026-01-02 03:04:07] [WARNING ] bot.delivery: job a: polling failed, retrying",
        "[2026-01-02 03:04:08] [CRITICAL] bot: out of memory",
    ]
    errors = logged_errors(lines)
    assert len(errors) == 2
    assert errors[0].splitlines()[0].endswith("Ignoring exception in dynamic item callback")
    assert errors[0].splitlines()[-1] == "KeyError: 'x'"
    assert errors[1].endswith("out of memory")
    assert logged_errors(lines[:1] + lines[5:6]) == []
