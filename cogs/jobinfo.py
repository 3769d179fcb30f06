"""What made a result: react ✉️ to it (Midjourney's habit) for a DM, or "Apps → Show job" on it
for a private reply, with the job's id, prompt, seed and the engine's settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import ImagineError, JobDetails, ServiceUnavailable
from bot.errors import user_message

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

ENVELOPE = "✉️"
NOT_A_RESULT = "That message is not one of my results, so there is no job to show."
_PROMPT_ROOM = 1500


def details_text(details: JobDetails) -> str:
    """The job as a member reads it: enough to make the same image again."""
    prompt = discord.utils.escape_markdown(details.prompt) or "(no prompt)"
    if len(prompt) > _PROMPT_ROOM:
        prompt = prompt[: _PROMPT_ROOM - 1].rstrip("\\") + "…"
    lines = [f"**Job** `{details.job_id}` ({details.type})", f"**Prompt** {prompt}"]
    if details.seed is not None:
        lines.append(f"**Seed** {details.seed}")
    if len(details.seeds) > 1:
        lines.append(f"**Seeds of the four images** {', '.join(map(str, details.seeds))}")
    settings = details.settings
    facts = [
        f"engine {settings['engine']}" if settings.get("engine") else "",
        f"model {settings['model']}" if settings.get("model") else "",
        f"{settings['width']}×{settings['height']}"
        if settings.get("width") and settings.get("height")
        else "",
        f"{settings['steps']} steps" if settings.get("steps") else "",
        f"guidance {settings['guidance']:g}"
        if isinstance(settings.get("guidance"), int | float)
        else "",
        f"strength {settings['strength']:g}"
        if isinstance(settings.get("strength"), int | float)
        else "",
    ]
    if any(facts):
        lines.append("**Settings** " + " · ".join(f for f in facts if f))
    if details.seed is not None:
        lines.append(f"Add `--seed {details.seed}` to the prompt to start from the same noise.")
    return "\n".join(lines)


class JobInfo(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Show job", callback=self.show_job)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def _details(self, message_id: int) -> str:
        """The text for the result ``message_id``; a sentence when it is none or cannot be read."""
        job_id = await self.bot.posted.job_of(message_id)
        if job_id is None:
            return NOT_A_RESULT
        try:
            return details_text(await self.bot.imagine.details(job_id))
        except (ImagineError, ServiceUnavailable) as exc:
            return user_message(exc)

    async def show_job(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        me = self.bot.user
        text = NOT_A_RESULT if me is None or message.author.id != me.id else None
        await interaction.followup.send(text or await self._details(message.id), ephemeral=True)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        me = self.bot.user
        if str(payload.emoji) != ENVELOPE or me is None or payload.user_id == me.id:
            return
        if payload.message_author_id not in (None, me.id):
            return  # someone else's message: not ours to answer
        try:
            text = await self._details(payload.message_id)
            if text == NOT_A_RESULT:
                return  # ✉️ on the bot's other messages (help, notices) is just a reaction
            await self._send_privately(payload, text)
        except Exception:
            log.exception("✉️ on message %s by user %s failed", payload.message_id, payload.user_id)

    async def _send_privately(self, payload: discord.RawReactionActionEvent, text: str) -> None:
        user = self.bot.get_user(payload.user_id) or await self.bot.fetch_user(payload.user_id)
        try:
            await user.send(text)
            log.info("job details of message %s sent to user %s", payload.message_id, user.id)
            return
        except discord.Forbidden:
            log.info("user %s takes no DMs; saying so in the channel", user.id)
        channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        try:
            await channel.send(
                f"<@{user.id}> I can't send you a direct message. Allow direct messages from this "
                "server's members (Privacy Settings), or use Apps → Show job on the result.",
                allowed_mentions=discord.AllowedMentions(users=[user]),
            )
        except discord.HTTPException as exc:
            log.warning("could not tell user %s either: %s", user.id, exc.status)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(JobInfo(bot))
