"""The one place command errors become words: a CommandTree whose on_error replies privately."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.client import ImagineError, ServiceUnavailable
from bot.errors import UserFacingError, user_message

log = logging.getLogger(__name__)

EXPECTED = (UserFacingError, ImagineError, ServiceUnavailable, app_commands.BotMissingPermissions)
"""Errors that are the user's or the world's, not the bot's: logged at INFO/WARNING, not ERROR."""


async def reply_privately(interaction: discord.Interaction[Any], text: str) -> None:
    """An ephemeral message, whatever the interaction's state; never raises."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # The public "thinking…" message: remove it so the refusal is private and nothing
            # is left hanging in the channel (and the followup cannot inherit its visibility).
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.info("could not remove the deferred response (%s)", exc.status)
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning(
            "could not tell user %s %r: %s %s", interaction.user.id, text, exc.status, exc.text
        )


def log_failure(what: str, interaction: discord.Interaction[Any], error: BaseException) -> None:
    user = interaction.user.id
    if isinstance(error, ServiceUnavailable):
        log.warning("%s by user %s: service unavailable: %s", what, user, error)
    elif isinstance(error, EXPECTED):
        log.info("%s by user %s refused: %s", what, user, error)
    else:
        log.error("%s by user %s failed", what, user, exc_info=error)


class ImagineTree(app_commands.CommandTree[Any]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        original: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            original = error.original
        name = interaction.command.qualified_name if interaction.command else "a command"
        log_failure(f"/{name}", interaction, original)
        await reply_privately(interaction, user_message(original))
