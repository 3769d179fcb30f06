"""Owner-only /sync: publish the slash commands, globally or to this server.

Before any slash command exists the owner types ``@bot sync`` instead (a mention reaches the bot
without the privileged message-content intent). The bot never syncs globally on its own:
Discord rate-limits that, and it is only needed when the commands change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

Scope = Literal["global", "here"]
NOT_OWNER = "Only the bot's owner can sync its commands."


class Admin(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def publish(self, scope: str, guild: discord.abc.Snowflake | None, who: int) -> str:
        tree = self.bot.tree
        if scope == "here" and guild is None:
            return "“here” means a server: run it in one, or use `sync` alone for a global sync."
        if scope == "here" and guild is not None:
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
            where = "to this server"
        else:
            synced = await tree.sync()
            where = "globally (Discord may take up to an hour to show changes everywhere)"
        log.info("user %s synced %d commands %s", who, len(synced), scope)
        return f"Synced {len(synced)} commands {where}."

    @app_commands.command(name="sync", description="Owner only: publish the slash commands")
    @app_commands.describe(
        scope="global: every server (slow to appear); here: this server, at once"
    )
    async def sync_slash(
        self, interaction: discord.Interaction[Any], scope: Scope = "global"
    ) -> None:
        if not await self.bot.is_owner(interaction.user):
            raise UserFacingError(NOT_OWNER)
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self.publish(scope, interaction.guild, interaction.user.id)
        await interaction.edit_original_response(content=text)

    @commands.command(name="sync")
    @commands.is_owner()
    async def sync_text(self, ctx: commands.Context[Any], scope: str = "global") -> None:
        """``@bot sync`` or ``@bot sync here``."""
        if scope not in ("global", "here"):
            raise commands.BadArgument(scope)
        await ctx.reply(await self.publish(scope, ctx.guild, ctx.author.id), mention_author=False)

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        if isinstance(error, commands.NotOwner):
            text = NOT_OWNER
        elif isinstance(error, commands.UserInputError):
            text = "Use `@bot sync` or `@bot sync here`."
        else:
            log.error("sync failed", exc_info=error)
            text = "Syncing failed; the error was logged."
        try:
            await ctx.reply(text, mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not answer %s: %s", ctx.author.id, exc.status)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Admin(bot))
