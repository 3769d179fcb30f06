"""/imagine prompt:<text> [image:<attachment>] and /blend image1..image5 [dimensions]: submit,
then hand the jobs to the deliveries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import JobRef, Submitted
from bot.errors import UserFacingError, check_interaction_can_post
from bot.pending import PendingJob
from bot.preferences import Effective, apply
from bot.progress import progress_text
from bot.visibility import DMS_CLOSED, is_private, sent_to_dms, tell_privately, to_dm, where
from cogs.cancel import cancel_view

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def check_image(image: discord.Attachment) -> str:
    """The attachment's URL, or a sentence when it is not an image the service can read."""
    content_type = (image.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in IMAGE_TYPES:
        raise UserFacingError(
            f"The attachment “{image.filename}” is not an image I can read; attach a PNG, JPEG, WebP or GIF."
        )
    return image.url


def compose_msg(prompt: str, image: discord.Attachment | None) -> str:
    """The v2 ``msg``: an attached image becomes the leading image URL of the prompt."""
    text = " ".join(prompt.split())
    if image is None:
        return text
    return f"{check_image(image)} {text}"


def blend_title(images: list[discord.Attachment]) -> str:
    """What a blend's messages show in bold while it renders: the files' names."""
    names = [image.filename for image in images]
    return "Blend of " + " and ".join(", ".join(names).rsplit(", ", 1))


BLEND_SHAPES = [
    app_commands.Choice(name="Square (1:1)", value="square"),
    app_commands.Choice(name="Portrait (2:3)", value="portrait"),
    app_commands.Choice(name="Landscape (3:2)", value="landscape"),
]


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
        check_interaction_can_post(interaction)
        effective = await self.bot.preferences.effective(interaction.user.id, interaction.guild_id)
        prompt = apply(" ".join(prompt.split()), effective)  # the member's /settings
        msg = compose_msg(prompt, image)
        visibility = await begin(self.bot, interaction, effective)
        await submit(
            self.bot,
            interaction,
            prompt,
            lambda ref: self.bot.imagine.imagine(msg, ref),
            f"/imagine {msg!r}",
            visibility,
        )

    @app_commands.command(name="blend", description="Blend 2 to 5 images into four new ones")
    @app_commands.describe(
        image1="The first image",
        image2="The second image",
        image3="A third image (optional)",
        image4="A fourth image (optional)",
        image5="A fifth image (optional)",
        dimensions="The shape of the results (default square)",
    )
    @app_commands.choices(dimensions=BLEND_SHAPES)
    async def blend(
        self,
        interaction: discord.Interaction[Any],
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
    ) -> None:
        check_interaction_can_post(interaction)
        images = [i for i in (image1, image2, image3, image4, image5) if i is not None]
        urls = [check_image(image) for image in images]
        shape = dimensions.value if dimensions is not None else "square"
        visibility = await begin(self.bot, interaction)
        await submit(
            self.bot,
            interaction,
            blend_title(images),
            lambda ref: self.bot.imagine.blend(urls, shape, ref),
            f"/blend of {len(urls)} images ({shape})",
            visibility,
        )


async def begin(
    bot: ImagineBot, interaction: discord.Interaction[Any], effective: Effective | None = None
) -> str:
    """Acknowledge the command within Discord's 3 s, privately when the member's results are
    private; the visibility their results get."""
    if effective is None:
        effective = await bot.preferences.effective(interaction.user.id, interaction.guild_id)
    visibility = where(effective.values.visibility or "public", interaction)
    await interaction.response.defer(thinking=True, ephemeral=is_private(visibility))
    return visibility


async def submit(
    bot: ImagineBot,
    interaction: discord.Interaction[Any],
    shown: str,
    send: Callable[[JobRef], Awaitable[Submitted]],
    what: str,
    visibility: str = "public",
) -> None:
    """Submit (after :func:`begin`), then put a progress message up for each job it started,
    where the member's results go."""
    user, channel_id = interaction.user, interaction.channel_id
    assert channel_id is not None, "slash commands always come from a channel"
    async with bot.limiter.slot(user.id):
        submitted = await send(JobRef(user.id, interaction.guild_id, channel_id))
        log.info(
            "job %s: %s by user %s in channel %s",
            submitted.message_id,
            what,
            user.id,
            channel_id,
        )
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
                visibility=visibility,
            )
            for job_id in submitted.message_ids
        ]

        async def place(index: int, job: PendingJob) -> PendingJob:
            text = progress_text(shown, user.id, "", None)
            view = cancel_view(job.job_id)
            if job.visibility == "dm":
                if (sent := await to_dm(interaction, job, text, view)) is not None:
                    if index == 0:
                        await interaction.edit_original_response(content=sent_to_dms(bot, sent))
                    return sent
                job = job.with_(visibility="ephemeral")  # DMs closed: only to them, here
                if index == 0:
                    message = await interaction.edit_original_response(content=text, view=view)
                    await tell_privately(interaction, DMS_CLOSED)
                    return job.with_(message_id=message.id)
            if index == 0:
                message = await interaction.edit_original_response(content=text, view=view)
                return job.with_(message_id=message.id)
            # {a,b} permutations and --repeat: one message per job
            extra = await interaction.followup.send(
                text, wait=True, view=view, ephemeral=is_private(job.visibility),
                allowed_mentions=discord.AllowedMentions.none(),
            )  # fmt: skip
            return job.with_(message_id=extra.id)

        await bot.deliveries.accept(jobs, place)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
