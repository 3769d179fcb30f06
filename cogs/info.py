"""/info: the queue, your unfinished jobs, and the engine (with a warning for the placeholder)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import ServiceInfo

if TYPE_CHECKING:
    from bot.app import ImagineBot

PLACEHOLDER_WARNING = (
    "⚠️ This bot runs the **placeholder** engine: pictures are test patterns, not AI images. "
    "The server owner can choose a real engine with IMAGINE_ENGINE in .env."
)


def info_text(info: ServiceInfo, unfinished: int, max_jobs: int) -> str:
    lines = [
        f"**Queue:** {info.queued} waiting, {info.running} running",
        f"**Your unfinished jobs:** {unfinished} of {max_jobs}",
        f"**Engine:** {info.engine}" + (f" (service {info.version})" if info.version else ""),
    ]
    if info.placeholder:
        lines.append(PLACEHOLDER_WARNING)
    # the engine's own sentences (why IMAGINE_ENGINE=auto fell back, what it cannot do), cut to
    # fit a message; the placeholder's own note says what the warning says
    for note in info.notes:
        if not note.startswith("This is the placeholder engine"):
            lines.append(f"-# {note[:300]}")
    return "\n".join(lines)


class Info(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="info", description="The queue, your unfinished jobs, and the image engine"
    )
    async def info(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(
            ephemeral=True, thinking=True
        )  # a remote service may be slow
        user_id = interaction.user.id
        info = await self.bot.imagine.info(user_id)
        unfinished = max(info.user_unfinished or 0, self.bot.deliveries.in_flight(user_id))
        text = info_text(info, unfinished, self.bot.settings.max_jobs_per_user)
        await interaction.edit_original_response(content=text)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Info(bot))
