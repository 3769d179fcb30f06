"""❌ Cancel under a job's progress message: its owner or a moderator (Manage Messages) ends a
queued or running job; the message then says it was cancelled. Registered by cogs.buttons."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.client import ImagineError
from bot.errors import UserFacingError, explain_refusal, user_message
from bot.tree import log_failure, reply_privately

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"cancel:(?P<job>[0-9A-Za-z_-]+)",
):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            discord.ui.Button(
                label="Cancel",
                emoji="❌",
                style=discord.ButtonStyle.secondary,
                custom_id=f"cancel:{job_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> CancelButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await cancel(cast("ImagineBot", interaction.client), interaction, self.job_id)
        except Exception as exc:
            log_failure(f"cancel of {self.job_id}", interaction, exc)
            await reply_privately(interaction, user_message(exc))


def cancel_view(job_id: str) -> discord.ui.View:
    """The progress message's one button."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


async def cancel(bot: ImagineBot, interaction: discord.Interaction[Any], job_id: str) -> None:
    job = await bot.pending.get(job_id)
    if job is None:
        raise UserFacingError("That job has already finished, so there is nothing to cancel.")
    user = interaction.user
    moderator = isinstance(user, discord.Member) and interaction.permissions.manage_messages
    if user.id != job.user_id and not moderator:
        raise UserFacingError(
            f"Only <@{job.user_id}>, who started this job, or a moderator (Manage Messages) "
            "can cancel it."
        )
    await interaction.response.defer()  # the message changes once the job has ended
    try:
        await bot.imagine.cancel(job_id)
    except ImagineError as exc:
        if exc.status == 409:
            raise UserFacingError(
                "That job has already finished, so there is nothing to cancel."
            ) from exc
        raise UserFacingError(explain_refusal(exc)) from exc
    log.info("job %s: cancelled by user %s", job_id, user.id)
