"""/imagine prompt:<text> [image:<attachment>]: submit, then hand the job to the deliveries."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import JobRef
from bot.errors import UserFacingError, check_can_post
from bot.pending import PendingJob
from bot.progress import progress_text

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def compose_msg(prompt: str, image: discord.Attachment | None) -> str:
    """The v2 ``msg``: an attached image becomes the leading image URL of the prompt."""
    text = " ".join(prompt.split())
    if image is None:
        return text
    content_type = (image.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in IMAGE_TYPES:
        raise UserFacingError(
            f"The attachment “{image.filename}” is not an image I can read; attach a PNG, JPEG, WebP or GIF."
        )
    return f"{image.url} {text}"


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to picture, then --parameters (see /help), e.g. a lighthouse at dusk --ar 16:9",
        image="An image to start from (optional)",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, 1500],
        image: discord.Attachment | None = None,
    ) -> None:
        check_can_post(interaction.app_permissions)
        msg = compose_msg(prompt, image)
        await interaction.response.defer(thinking=True)  # Discord's 3 s deadline
        user, channel_id = interaction.user, interaction.channel_id
        assert channel_id is not None, "slash commands always come from a channel"
        bot = self.bot
        async with bot.limiter.slot(user.id):
            submitted = await bot.imagine.imagine(
                msg, JobRef(user.id, interaction.guild_id, channel_id)
            )
            log.info(
                "job %s: /imagine by user %s in channel %s: %r",
                submitted.message_id,
                user.id,
                channel_id,
                msg,
            )
            shown = " ".join(prompt.split())
            expires = interaction.created_at.timestamp() + bot.settings.interaction_ttl
            jobs = [
                PendingJob(
                    job_id=job_id,
                    prompt=shown,
                    button="",
                    user_id=user.id,
                    guild_id=interaction.guild_id,
                    channel_id=channel_id,
                    application_id=interaction.application_id,
                    token=interaction.token,
                    token_expires=expires,
                    message_via_token=True,
                )
                for job_id in submitted.message_ids
            ]

            async def place(index: int, job: PendingJob) -> int:
                text = progress_text(shown, user.id, "", None)
                if index == 0:
                    return (await interaction.edit_original_response(content=text)).id
                # {a,b} permutations and --repeat: one message per job
                extra = await interaction.followup.send(
                    text, wait=True, allowed_mentions=discord.AllowedMentions.none()
                )
                return extra.id

            await bot.deliveries.accept(jobs, place)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
