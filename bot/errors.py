"""Errors a user should read, and the plain-word sentence for each service result code."""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands

from bot.client import ImagineError, JobResult, ServiceUnavailable


class UserFacingError(app_commands.AppCommandError):
    """An error that knows its message: the tree shows it, ephemeral, and logs nothing alarming."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_BANNED_WORD = re.compile(r"'(?P<word>[^']+)'")

TOO_LONG = "Generation took too long and was stopped. Try again, or with a simpler prompt."
FAILED = "Generation failed. Try again; if it keeps failing, tell the server owner."


def explain_refusal(error: ImagineError) -> str:
    """The sentence for a request the service refused (a 4xx)."""
    code, msg = error.code, error.message.strip()
    if code == "BANNED_PROMPT":
        found = _BANNED_WORD.search(msg)
        if found:
            return f"Your prompt was refused: the word “{found['word']}” is not allowed here. Rephrase it."
        return "Your prompt was refused by the content filter. Rephrase it."
    if code == "INVALID_PARAMETER":
        return f"{msg.rstrip('.')}. See /help for the parameters and their ranges."
    if code == "INVALID_LINK":
        return (
            f"The image could not be read: {msg[0].lower() + msg[1:] if msg else 'unknown reason.'}"
        )
    if code == "QUEUE_FULL":
        return "The queue is full right now. Try again in a few minutes."
    if code == "BUTTON_NOT_FOUND":
        return "That button does not work on this image any more."
    if code == "ALREADY_REQUESTED_UPSCALE":
        return "That image was already upscaled: look for the earlier reply."
    return msg if msg.endswith((".", "!", "?")) else f"{msg}."


def explain_failure(result: JobResult) -> str:
    """The sentence for a job that ended without an image."""
    code = result.content
    if code == "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND":
        return TOO_LONG
    if code in ("BANNED_PROMPT", "IMAGE_BLOCKED"):
        return "The image engine refused this prompt. Rephrase it."
    if code == "INVALID_LINK":
        return f"The image could not be read: {result.error or 'the link did not work.'}"
    detail = result.error.strip()
    if code == "INTERNAL_ERROR":
        return detail or "Something went wrong in the image service. Try again."
    return f"Generation failed: {detail}" if detail else FAILED


class MissingPermissions(UserFacingError):
    """The bot lacks channel permissions it needs to post a result; the message names them."""

    def __init__(self, missing: list[str], *, in_thread: bool = False) -> None:
        self.missing_permissions = missing
        super().__init__(missing_permissions_sentence(missing, in_thread=in_thread))


_SHOWN_AS = {"send_messages_in_threads": "Send Messages in Threads"}
"""Names as Discord's server settings show them, where title case gets them wrong."""


def missing_permissions_sentence(missing: list[str], *, in_thread: bool = False) -> str:
    names = [
        _SHOWN_AS.get(name) or name.replace("_", " ").replace("guild", "server").title()
        for name in missing
    ]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    noun = "permission" if len(names) == 1 else "permissions"
    # A thread has no permission settings of its own: they are its channel's.
    where = "the channel of this thread" if in_thread else "this channel"
    return f"I can't post results here: I need the {listed} {noun} in {where}."


NEEDED_TO_POST = ("view_channel", "send_messages", "attach_files", "read_message_history")
NEEDED_IN_THREADS = (
    "view_channel",
    "send_messages_in_threads",  # Discord's permission for posting in threads, not send_messages
    "attach_files",
    "read_message_history",
)


def check_can_post(permissions: discord.Permissions, *, in_thread: bool = False) -> None:
    """Raise MissingPermissions unless the bot may post a result (a reply with a file) here."""
    needed = NEEDED_IN_THREADS if in_thread else NEEDED_TO_POST
    missing = [name for name in needed if not getattr(permissions, name)]
    if missing:
        raise MissingPermissions(missing, in_thread=in_thread)


def check_interaction_can_post(interaction: discord.Interaction[Any]) -> None:
    """check_can_post for where the interaction happened: a channel or a thread."""
    in_thread = isinstance(interaction.channel, discord.Thread)
    check_can_post(interaction.app_permissions, in_thread=in_thread)


def user_message(error: BaseException) -> str:
    """A sentence for any error raised while serving a user; unknown errors get a generic one."""
    if isinstance(error, UserFacingError):
        return error.message
    if isinstance(error, ImagineError):
        return explain_refusal(error)
    if isinstance(error, ServiceUnavailable):
        return str(error)
    if isinstance(error, app_commands.BotMissingPermissions):
        return missing_permissions_sentence(error.missing_permissions)
    return "Something went wrong on the bot's side. Try again; the error was logged."
