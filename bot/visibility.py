"""Where a member's results go (their /settings): in the channel (as Midjourney), only to them
in the channel (ephemeral, through the interaction's token), or to their DMs.

A job's progress message is put where its results will be: the result then replaces it there
(JobSurface). DMs a member has closed turn into the ephemeral way, with a sentence that says so.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.pending import PendingJob

log = logging.getLogger(__name__)

NOBODY = discord.AllowedMentions.none()
DMS_CLOSED = (
    "I cannot send you DMs here (they are closed for this server), so your results are shown "
    "here, only to you. Open DMs, or choose another place in /settings."
)
SENT_TO_DMS = "Your results are on their way to your DMs: {link}"


def where(visibility: str, interaction: discord.Interaction[Any]) -> str:
    """The visibility that applies here: in a DM with the bot, every result is in that DM."""
    return "public" if interaction.guild_id is None else visibility


def is_private(visibility: str) -> bool:
    return visibility != "public"


async def open_dm(interaction: discord.Interaction[Any]) -> discord.DMChannel | None:
    try:
        return await interaction.user.create_dm()
    except discord.HTTPException as exc:
        log.info("user %s: no DM channel (%s)", interaction.user.id, exc.status)
        return None


async def to_dm(
    interaction: discord.Interaction[Any],
    job: PendingJob,
    text: str,
    view: discord.ui.View,
) -> PendingJob | None:
    """Post ``job``'s progress message in the member's DMs: the job as placed there, or None
    when their DMs are closed."""
    channel = await open_dm(interaction)
    if channel is None:
        return None
    try:
        message = await channel.send(text, view=view, allowed_mentions=NOBODY)
    except discord.Forbidden as exc:  # 50007: Cannot send messages to this user
        log.info("job %s: DMs of user %s are closed (%s)", job.job_id, job.user_id, exc.code)
        return None
    return job.with_(
        channel_id=channel.id, guild_id=None, message_id=message.id, message_via_token=False,
        reply_to=None,
    )  # fmt: skip


def sent_to_dms(client: discord.Client, job: PendingJob) -> str:
    """The sentence that points to a job's progress message in the member's DMs."""
    message = client.get_partial_messageable(job.channel_id).get_partial_message(
        job.message_id or 0
    )
    return SENT_TO_DMS.format(link=message.jump_url)


async def tell_privately(interaction: discord.Interaction[Any], text: str) -> None:
    """A short ephemeral note beside the job (where its results went, or why not there)."""
    try:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NOBODY)
    except discord.HTTPException as exc:
        log.warning("could not tell user %s where results go (%s)", interaction.user.id, exc.status)
