"""/describe image:<attachment> | link:<url> and /shorten prompt:<text>: jobs whose result is
prompts, posted numbered with the buttons 1️⃣… that /imagine them (🔄 on a describe reads the
image again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError, check_interaction_can_post
from cogs.imagine import begin, check_image, submit

if TYPE_CHECKING:
    from bot.app import ImagineBot

LINK_LIMIT = 2000


def describe_source(image: discord.Attachment | None, link: str | None) -> tuple[str, str]:
    """(the image's URL, what the messages call it), or a sentence when not exactly one is given."""
    link = (link or "").strip()
    if image is not None and link:
        raise UserFacingError("Give either an image or a link to describe, not both.")
    if image is not None:
        return check_image(image), image.filename
    if not link:
        raise UserFacingError("Attach an image or give a link to one, and I'll describe it.")
    if not link.lower().startswith(("http://", "https://")):
        raise UserFacingError(
            f"“{link[:100]}” is not a link; give one that starts with https://, or attach the image."
        )
    return link, link.rsplit("/", 1)[-1].split("?", 1)[0][:100] or "the image"


class Prompts(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="describe", description="Four prompts that could have made an image")
    @app_commands.describe(image="The image to describe", link="Or a link to the image (https://…)")
    async def describe(
        self,
        interaction: discord.Interaction[Any],
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, LINK_LIMIT] | None = None,
    ) -> None:
        check_interaction_can_post(interaction)
        url, name = describe_source(image, link)
        visibility = await begin(self.bot, interaction)  # Discord's 3 s deadline
        await submit(
            self.bot,
            interaction,
            f"Describe {name}",
            lambda ref: self.bot.imagine.describe(url, ref),
            f"/describe {url!r}",
            visibility,
        )

    @app_commands.command(
        name="shorten", description="Which words of a prompt count, and shorter prompts"
    )
    @app_commands.describe(prompt="The prompt to shorten (its --parameters are kept)")
    async def shorten(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, 1500],
    ) -> None:
        check_interaction_can_post(interaction)
        text = " ".join(prompt.split())
        visibility = await begin(self.bot, interaction)
        await submit(
            self.bot,
            interaction,
            f"Shorten {text}",
            lambda ref: self.bot.imagine.shorten(text, ref),
            f"/shorten {text!r}",
            visibility,
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Prompts(bot))
