"""Every refusal and failure becomes a sentence a user can act on."""

from __future__ import annotations

import discord
import pytest

from bot.client import ImagineError, JobResult, ServiceUnavailable
from bot.errors import (
    MissingPermissions,
    check_can_post,
    explain_failure,
    explain_refusal,
    user_message,
)


@pytest.mark.parametrize(
    ("code", "msg", "expected"),
    [
        ("BANNED_PROMPT", "Invalid phrase: 'gore'", "the word “gore” is not allowed here"),
        (
            "INVALID_PARAMETER",
            "Invalid parameter: --chaos must be between 0 and 100, got 500",
            "Invalid parameter: --chaos must be between 0 and 100, got 500. See /help",
        ),
        (
            "INVALID_LINK",
            "The image at https://x/a.png is not a picture.",
            "The image could not be read: the image",
        ),
        ("QUEUE_FULL", "QUEUE_FULL", "The queue is full"),
    ],
)
def test_refusals(code: str, msg: str, expected: str) -> None:
    assert expected in explain_refusal(ImagineError(code, msg, 400))


def test_failures() -> None:
    def failed(code: str, error: str = "") -> JobResult:
        return JobResult("failed", "imagine", code, error, None, (), (), "", ())

    assert "took too long" in explain_failure(failed("BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND"))
    assert explain_failure(
        failed("FAILED_TO_PROCESS_YOUR_COMMAND", "The engine ran out of memory.")
    ) == ("Generation failed: The engine ran out of memory.")


def test_unknown_errors_get_a_generic_sentence_and_no_traceback() -> None:
    assert user_message(ServiceUnavailable("The image service can't be reached.")).startswith(
        "The image"
    )
    assert "error was logged" in user_message(KeyError("boom"))


def test_missing_permissions_are_named() -> None:
    allowed = discord.Permissions(view_channel=True, send_messages=True, read_message_history=True)
    with pytest.raises(MissingPermissions) as caught:
        check_can_post(allowed)
    assert (
        caught.value.message
        == "I can't post results here: I need the Attach Files permission in this channel."
    )
    check_can_post(allowed | discord.Permissions(attach_files=True))
    with pytest.raises(MissingPermissions, match="Send Messages and Attach Files permissions"):
        check_can_post(discord.Permissions(view_channel=True, read_message_history=True))


def test_threads_need_send_messages_in_threads_not_send_messages() -> None:
    in_threads = discord.Permissions(
        view_channel=True,
        send_messages_in_threads=True,
        attach_files=True,
        read_message_history=True,
    )
    check_can_post(in_threads, in_thread=True)  # Send Messages is not needed in a thread
    with pytest.raises(MissingPermissions, match="Send Messages permission in this channel"):
        check_can_post(in_threads)
    channel_only = in_threads | discord.Permissions(send_messages=True)
    channel_only.send_messages_in_threads = False
    with pytest.raises(MissingPermissions) as caught:
        check_can_post(channel_only, in_thread=True)
    assert caught.value.message == (
        "I can't post results here: I need the Send Messages in Threads permission in the "
        "channel of this thread."
    )
