"""The web pages, from Discord: ``/gallery`` answers with a private link to the member's own
images; **Vary (Region)** answers with a private link to the editor for that image. What a
member sends from the editor is posted back here, in the channel, as their own result with its
buttons (like a press): the service lists it at ``/web/api/inbox`` and this cog polls it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import ImagineError, ServiceUnavailable
from bot.errors import UserFacingError, explain_refusal, user_message
from bot.pending import PendingJob
from bot.progress import progress_text
from bot.tree import log_failure, reply_privately
from cogs.cancel import cancel_view

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

REGION = "Vary (Region)"
INBOX = "editor-inbox"
PRIVATE = "Only you can open it; don't share it."


def _expiry(expires: int) -> str:
    return f"It works until <t:{expires}:t> (<t:{expires}:R>)."


async def send_link(
    bot: ImagineBot,
    interaction: discord.Interaction[Any],
    intro: str,
    purpose: str,
    **fields: Any,
) -> None:
    """After the defer: a signed link for this member (``purpose``: editor or gallery), privately,
    with how long it works; a refusal becomes a sentence."""
    try:
        url, expires = await bot.imagine.web_link(purpose, interaction.user.id, **fields)
    except ImagineError as exc:
        raise UserFacingError(explain_refusal(exc)) from exc
    await interaction.followup.send(f"{intro}\n{url}\n{PRIVATE} {_expiry(expires)}", ephemeral=True)


async def editor_link(bot: ImagineBot, interaction: discord.Interaction[Any], job: str) -> None:
    """The answer to a Vary (Region) click: a private link to the editor for that image."""
    try:
        await interaction.response.defer(ephemeral=True, thinking=True)
        message = interaction.message
        await send_link(
            bot, interaction, "🖌️ **Vary (Region)**: paint the part to change, edit the prompt "
            "if you like, and send. The result is posted here.", "editor",
            button_message_id=job, channel_id=interaction.channel_id,
            guild_id=interaction.guild_id, message_id=message.id if message else None,
        )  # fmt: skip
    except Exception as exc:
        log_failure(f"button {REGION} on {job}", interaction, exc)
        await reply_privately(interaction, user_message(exc))


class Gallery(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self._poller: asyncio.Task[None] | None = None
        settings = bot.settings
        self.interval = min(2.0, max(0.25, settings.poll_interval * 10))
        """Seconds between two looks for jobs sent from the editor."""

    async def cog_load(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="editor-inbox")

    async def cog_unload(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    @app_commands.command(name="gallery", description="A private link to all the images you made")
    async def gallery(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await send_link(
            self.bot, interaction, "🖼️ **Your gallery**: every image you made, newest first, to "
            "search, download or delete.", "gallery",
        )  # fmt: skip

    async def _poll(self) -> None:
        """Post each job sent from the editor. Where the inbox was read up to is kept in the
        bot's SQLite file, so a restart posts what was sent while the bot was down; a job posted
        (or being delivered) already is not posted twice. The first start ever begins now."""
        cursor = await self.bot.cursors.get(INBOX)
        failing = False
        while True:
            try:
                cursor, jobs = await self.bot.imagine.web_inbox(cursor)
                if failing:
                    log.info("reading the jobs sent from the editor again")
                failing = False
            except (ServiceUnavailable, ImagineError) as exc:
                if not failing:  # once per outage, not at every look
                    log.warning("cannot read the jobs sent from the editor: %s", exc)
                failing, jobs = True, []
            except Exception:
                log.exception("reading the jobs sent from the editor failed")
                jobs = []
            for job in jobs:
                try:
                    await self._post(job)
                except Exception:
                    log.exception(
                        "posting job %s sent from the editor failed", job.get("messageId")
                    )
            if cursor is not None:
                try:
                    await self.bot.cursors.put(INBOX, cursor)
                except Exception as exc:  # read again from the old place next start
                    log.warning("could not keep where the editor's inbox was read: %s", exc)
            await asyncio.sleep(self.interval)

    async def _post(self, sent: dict[str, Any]) -> None:
        job_id = str(sent["messageId"])
        if await self.bot.pending.get(job_id) or await self.bot.posted.has_job(job_id):
            return  # taken up before a restart that came before its cursor was kept
        user, channel_id = int(sent["user"]), int(sent["channel"])
        guild_id = int(sent["guild"]) if sent.get("guild") else None
        reply = int(sent["replyTo"]) if sent.get("replyTo") else None
        prompt, button = str(sent["prompt"]), str(sent["button"])
        job = PendingJob(
            job_id=str(sent["messageId"]), prompt=prompt, button=button, user_id=user,
            guild_id=guild_id, channel_id=channel_id,
            application_id=self.bot.application_id or 0, token="", token_expires=0.0,
            message_via_token=False, reply_to=reply,
        )  # fmt: skip
        channel = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
        log.info("job %s: %s sent from the editor by user %s", job.job_id, button, user)

        async def place(index: int, pending: PendingJob) -> int:
            extra: dict[str, Any] = {}
            if reply is not None:  # under the image the member pressed Vary (Region) on
                extra["reference"] = channel.get_partial_message(reply).to_reference(
                    fail_if_not_exists=False
                )
            message = await channel.send(
                progress_text(prompt, user, button, None),
                view=cancel_view(pending.job_id),
                allowed_mentions=discord.AllowedMentions.none(),
                **extra,
            )
            return message.id

        await self.bot.deliveries.accept([job], place)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Gallery(bot))
