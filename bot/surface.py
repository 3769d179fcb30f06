"""Where one job shows on Discord: its progress message, its result, its failure notice.

A job's message is either the interaction's own response (edited through the interaction
token, which lives 15 minutes) or a channel message the bot posted (edited with the bot token,
forever). Once the token is dead, progress goes on in the interaction's response with the bot
token (it is the bot's own public message); a result is posted as a fresh channel message that
replies to it (a ping, where an edit would not notify), failures are told in the channel with a
mention instead of privately, and the old message then says where they went.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord

from bot.attachments import Upload
from bot.pending import PendingJob
from bot.progress import headline

log = logging.getLogger(__name__)

USERS_ONLY = discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False)
NOBODY = discord.AllowedMentions.none()
EXPIRED_NOTE = "Sent here because your private reply in the channel had expired."

# 401 Invalid Webhook Token (50027) and 404 Unknown Webhook (10015) / Unknown Message (10008):
# the token has expired or the message is gone; either way the result must be posted anew.
_GONE_CODES = frozenset({10008, 10015, 50027})


def is_gone(exc: discord.HTTPException) -> bool:
    return exc.status in (401, 404) or exc.code in _GONE_CODES


class Surface(Protocol):
    """Where a job shows; JobSurface on Discord, a recorder in the unit tests."""

    async def show_progress(self, content: str, preview: Upload | None) -> None: ...

    async def finish(self, content: str, upload: Upload | None, view: discord.ui.View) -> int: ...

    async def fail(self, sentence: str) -> None: ...

    async def cancelled(self, content: str) -> None: ...


class JobSurface:
    def __init__(self, client: discord.Client, job: PendingJob) -> None:
        self.job = job
        self._client = client
        self._channel = client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        self._token_dead = False

    @property
    def token_usable(self) -> bool:
        return not self._token_dead and self.job.token_alive()

    @property
    def private(self) -> bool:
        """An ephemeral job: its message exists only through the token, so once the token is
        dead it cannot be edited, and its news go to the member's DMs, never the channel."""
        return self.job.visibility == "ephemeral"

    async def _send_private(self, content: str, upload: Upload | None = None,
                            view: discord.ui.View | None = None) -> int:  # fmt: skip
        """After the token: the member's DMs (discord.Forbidden when they are closed)."""
        channel = await self._client.create_dm(discord.Object(self.job.user_id))
        posted = await channel.send(
            f"{content}\n-# {EXPIRED_NOTE}",
            file=upload.file() if upload is not None else discord.utils.MISSING,
            view=view if view is not None else discord.utils.MISSING,
            allowed_mentions=NOBODY,
        )
        return posted.id

    def _webhook(self) -> discord.Webhook:
        # The same application webhook discord.py builds for Interaction.followup, rebuilt from
        # the stored token so that a job resumed after a restart can still use it.
        return discord.Webhook.from_state(
            {"id": self.job.application_id, "type": 3, "token": self.job.token},
            self._client._connection,
        )

    async def _edit(self, message_id: int, **fields: Any) -> discord.Message:
        """Edit the job's message: through the interaction token while it lives, else with the
        bot token (the interaction's public response is the bot's own message, as a channel
        message is)."""
        if self.job.message_via_token and self.token_usable:
            try:
                return await self._webhook().edit_message(message_id, **fields)
            except discord.HTTPException as exc:
                if not is_gone(exc):
                    raise
                self._token_dead = True
                if self.private:  # nothing but the token can edit an ephemeral message
                    raise
                log.info(
                    "job %s: interaction token expired; editing with the bot token", self.job.job_id
                )
        return await self._channel.get_partial_message(message_id).edit(**fields)

    async def show_progress(self, content: str, preview: Upload | None) -> None:
        """Edit the progress message; cosmetic, so any failure is logged and ignored."""
        message_id = self.job.message_id
        if message_id is None or (self.private and not self.token_usable):
            return  # an ephemeral message outlives its token frozen: the result goes to DMs
        attachments = [preview.file()] if preview is not None else discord.utils.MISSING
        try:
            await self._edit(
                message_id, content=content, attachments=attachments, allowed_mentions=NOBODY
            )
        except discord.HTTPException as exc:
            log.warning(
                "job %s: progress edit failed (%s %s)", self.job.job_id, exc.status, exc.text
            )

    async def finish(self, content: str, upload: Upload | None, view: discord.ui.View) -> int:
        """Put the result where the user looks; returns the id of the message that holds it.
        Without ``upload`` (prompts, not an image) the message keeps no attachment."""
        attachments = [upload.file()] if upload is not None else []
        message_id = self.job.message_id
        if message_id is not None and self.job.message_via_token and self.token_usable:
            try:
                message = await self._webhook().edit_message(
                    message_id,
                    content=content,
                    attachments=attachments,
                    view=view,
                    allowed_mentions=USERS_ONLY,
                )
                return message.id
            except discord.HTTPException as exc:
                if not is_gone(exc):
                    raise
                self._token_dead = True
                log.info(
                    "job %s: interaction token expired; posting in the channel", self.job.job_id
                )
        if self.private:
            posted_id = await self._send_private(content, upload, view)
            log.info("job %s: its private reply expired; sent by DM", self.job.job_id)
            return posted_id
        if message_id is not None and not self.job.message_via_token:
            try:
                edited = await self._channel.get_partial_message(message_id).edit(
                    content=content,
                    attachments=attachments,
                    view=view,
                    allowed_mentions=USERS_ONLY,
                )
                return edited.id
            except discord.NotFound:
                log.info("job %s: progress message was deleted; posting anew", self.job.job_id)
        posted = await self._channel.send(
            content,
            file=upload.file() if upload is not None else discord.utils.MISSING,
            view=view,
            reference=self._reference(),
            allowed_mentions=USERS_ONLY,
        )
        await self._point_to(posted.id, "The result is in a new message:")
        return posted.id

    async def cancelled(self, content: str) -> None:
        """The progress message says the job was cancelled, without its Cancel button; a
        message that is gone needs nothing."""
        if self.job.message_id is None or (self.private and not self.token_usable):
            return
        try:
            await self._edit(self.job.message_id, content=content, attachments=[], view=None,
                             allowed_mentions=NOBODY)  # fmt: skip
        except discord.HTTPException as exc:
            log.warning("job %s: could not show the cancel (%s)", self.job.job_id, exc.status)

    async def fail(self, sentence: str) -> None:
        """Tell the requester privately while the token lives, else with a mention in the channel."""
        job = self.job
        if self.token_usable:
            try:
                await self._remove_progress_message()
                await self._webhook().send(sentence, ephemeral=True)
                return
            except discord.HTTPException as exc:
                log.warning(
                    "job %s: private notice failed (%s %s)", job.job_id, exc.status, exc.text
                )
        if self.private:
            try:
                await self._send_private(sentence)
            except discord.HTTPException as exc:
                log.warning("job %s: could not tell user %s by DM either (%s)", job.job_id,
                            job.user_id, exc.status)  # fmt: skip
            return
        text = f"<@{job.user_id}> {sentence}"
        if job.message_id is not None and not job.message_via_token:
            try:
                await self._channel.get_partial_message(job.message_id).edit(
                    content=text, attachments=[], view=None, allowed_mentions=USERS_ONLY
                )
                return
            except discord.NotFound:
                pass
        posted = await self._channel.send(
            text, reference=self._reference(), allowed_mentions=USERS_ONLY
        )
        await self._point_to(posted.id, "It failed; the reason is in a new message:")

    async def _point_to(self, posted_id: int, words: str) -> None:
        """After the token's 15 minutes the interaction's response would stay frozen at its last
        progress beside the news: say in it (with the bot token) where the news went."""
        message_id = self.job.message_id
        if message_id is None or not self.job.message_via_token or message_id == posted_id:
            return
        link = self._channel.get_partial_message(posted_id).jump_url
        text = f"{headline(self.job.prompt, self.job.user_id, self.job.button)} ({words} {link})"
        try:
            await self._channel.get_partial_message(message_id).edit(
                content=text, attachments=[], view=None, allowed_mentions=NOBODY
            )
        except discord.HTTPException as exc:
            log.warning(
                "job %s: could not update the old progress message (%s %s)",
                self.job.job_id,
                exc.status,
                exc.text,
            )

    async def _remove_progress_message(self) -> None:
        message_id = self.job.message_id
        if message_id is None:
            return
        try:
            if self.job.message_via_token:
                await self._webhook().delete_message(message_id)
            else:
                await self._channel.get_partial_message(message_id).delete()
        except discord.NotFound:
            pass

    def _reference(self) -> discord.MessageReference:
        target = self.job.reply_to or self.job.message_id
        if target is None:
            missing: discord.MessageReference = discord.utils.MISSING  # no reply: a plain message
            return missing
        return discord.MessageReference(
            message_id=target, channel_id=self.job.channel_id, fail_if_not_exists=False
        )
