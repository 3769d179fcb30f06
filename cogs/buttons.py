"""The result buttons: persistent DynamicItems whose custom_id carries all their state.

``mj:<buttonMessageId>:<button>`` is enough to press a button on any message, however old, and
after any restart: nothing about messages or jobs is kept in memory (discord.py's
``examples/views/dynamic_counter.py``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import discord
from discord.ext import commands

from bot.client import ImagineError, JobRef
from bot.errors import UserFacingError, check_interaction_can_post, explain_refusal, user_message
from bot.pending import PendingJob
from bot.progress import numbered_prompt, progress_text
from bot.tree import log_failure, reply_privately
from bot.visibility import DMS_CLOSED, NOBODY, sent_to_dms, tell_privately, to_dm, where
from cogs.cancel import CancelButton, cancel_view
from cogs.gallery import REGION, editor_link
from cogs.remix import MODAL_BUTTONS, REMIXABLE, PromptModal

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)

CUSTOM_ID_LIMIT = 100
_ROW_GROUPS: tuple[tuple[str, ...], ...] = (
    ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣"),
    ("U1", "U2", "U3", "U4", "🔄"),
    ("V1", "V2", "V3", "V4"),
    ("Upscale (Subtle)", "Upscale (Creative)", "Upscale (2x)", "Upscale (4x)"),
    ("Redo Upscale (Subtle)", "Redo Upscale (Creative)"),
    ("Vary (Strong)", "Vary (Subtle)", "Vary (Region)", "Enhance"),
    ("Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "Make Square"),
    ("⬅️", "➡️", "⬆️", "⬇️"),
)
NEEDS_INPUT: frozenset[str] = frozenset()
"""Buttons that need more than a click and that the bot cannot ask for: not shown in Discord (the
API offers them to its other clients). Vary (Region) answers with the editor's link (cogs.gallery)."""
VARIATIONS = frozenset({"V1", "V2", "V3", "V4"})
_PROMPT_IN_HEADLINE = re.compile(r"^\*\*(?P<prompt>.*?)\*\* - ", re.DOTALL)


def is_upscale(button: str) -> bool:
    return len(button) == 2 and button[0] == "U" and button[1].isdigit()


def button_rows(buttons: Iterable[str]) -> list[list[str]]:
    """Midjourney's layout: known buttons in their rows (≤ 5 each), others after, ≤ 5 rows."""
    offered = [b for b in dict.fromkeys(buttons) if b not in NEEDS_INPUT]
    rows = [[b for b in group if b in offered] for group in _ROW_GROUPS]
    known = {b for group in _ROW_GROUPS for b in group}
    others = [b for b in offered if b not in known]
    rows += [others[i : i + 5] for i in range(0, len(others), 5)]
    rows = [row for row in rows if row]
    if len(rows) > 5:
        log.warning("dropping buttons that do not fit in 5 rows: %s", rows[5:])
    return rows[:5]


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"mj:(?P<job>[A-Za-z0-9_-]+):(?P<button>.+)",
):
    def __init__(
        self, button_message_id: str, button: str, *, pressed: bool = False, row: int | None = None
    ):
        self.button_message_id = button_message_id
        self.button = button
        style = discord.ButtonStyle.primary if pressed else discord.ButtonStyle.secondary
        custom_id = f"mj:{button_message_id}:{button}"
        super().__init__(discord.ui.Button(label=button, style=style, custom_id=custom_id), row=row)

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        pressed = isinstance(item, discord.ui.Button) and item.style is discord.ButtonStyle.primary
        return cls(match["job"], match["button"], pressed=pressed)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        # DynamicItem errors never reach the tree: this callback is its own error handler.
        try:
            bot = cast("ImagineBot", interaction.client)
            clicked = interaction.message
            content = clicked.content if clicked is not None else ""
            if self.button == REGION:  # the mask is painted in the web editor
                await editor_link(bot, interaction, self.button_message_id)
                return
            if self.button in MODAL_BUTTONS or (
                self.button in REMIXABLE
                and not numbered_prompt(content, "1️⃣")  # a describe's 🔄 has no prompt to edit
                and (
                    await bot.preferences.effective(interaction.user.id, interaction.guild_id)
                ).values.remix
            ):  # a modal must be the first answer, within 3 s
                prompt = prompt_of(content)
                await interaction.response.send_modal(
                    PromptModal(self.button_message_id, self.button, prompt)
                )
                return
            await press(
                cast("ImagineBot", interaction.client),
                interaction,
                self.button_message_id,
                self.button,
            )
        except Exception as exc:
            log_failure(f"button {self.button} on {self.button_message_id}", interaction, exc)
            await reply_privately(interaction, user_message(exc))


def result_view(
    button_message_id: str, buttons: Sequence[str], pressed: Iterable[str] = ()
) -> discord.ui.View:
    """The buttons under a result; ``pressed`` ones are blue, as Midjourney marks used upscales."""
    view = discord.ui.View(timeout=None)
    blue = set(pressed)
    for row, labels in enumerate(button_rows(buttons)):
        for label in labels:
            if len(f"mj:{button_message_id}:{label}") > CUSTOM_ID_LIMIT:
                log.warning(
                    "button %r on %s: custom_id too long, left out", label, button_message_id
                )
                continue
            view.add_item(JobButton(button_message_id, label, pressed=label in blue, row=row))
    return view


def view_with_pressed(
    components: Sequence[discord.Component],
    button_message_id: str,
    button: str,
    also: Iterable[str] = (),
) -> discord.ui.View:
    """The clicked message's buttons again, with ``button`` and ``also`` turned blue (and any
    that were blue already)."""
    labels: list[str] = []
    pressed = {button, *also}
    for row in components:
        for child in getattr(row, "children", ()):
            if not isinstance(child, discord.Button) or child.custom_id is None:
                continue
            found = JobButton.__discord_ui_compiled_template__.fullmatch(child.custom_id)
            if found is None or found["job"] != button_message_id:
                continue
            labels.append(found["button"])
            if child.style is discord.ButtonStyle.primary:
                pressed.add(found["button"])
    return result_view(button_message_id, labels, pressed)


def prompt_of(content: str) -> str:
    """The prompt shown in bold in a result's headline (markdown escapes undone)."""
    found = _PROMPT_IN_HEADLINE.match(content)
    return re.sub(r"\\(.)", r"\1", found["prompt"]) if found else ""


async def press(
    bot: ImagineBot,
    interaction: discord.Interaction[Any],
    button_message_id: str,
    button: str,
    prompt: str | None = None,
) -> None:
    check_interaction_can_post(interaction)
    await (
        interaction.response.defer()
    )  # acknowledge within Discord's 3 s; the result is a new message
    user, clicked, channel_id = interaction.user, interaction.message, interaction.channel_id
    if clicked is None or channel_id is None:
        raise UserFacingError("Discord did not say which message this button is on. Try again.")
    ref = JobRef(user.id, interaction.guild_id, channel_id)
    chosen = (await bot.preferences.effective(user.id, interaction.guild_id)).values
    visibility = where(chosen.visibility or "public", interaction)
    # Low Variation Mode: V1–V4 move less from their tile (sent only when it is not the default)
    vary = chosen.vary if button in VARIATIONS and chosen.vary == "subtle" else None
    async with bot.limiter.slot(user.id):
        try:
            submitted = await bot.imagine.button(button_message_id, button, ref, prompt, vary)
        except ImagineError as exc:
            if exc.code == "ALREADY_REQUESTED_UPSCALE":
                await _mark_pressed(bot, interaction, clicked, button_message_id, button)
            raise UserFacingError(explain_refusal(exc)) from exc
        log.info(
            "job %s: %s pressed on %s by user %s",
            submitted.message_id,
            button,
            button_message_id,
            user.id,
        )
        if is_upscale(button):
            await _mark_pressed(bot, interaction, clicked, button_message_id, button)
        shown = prompt or numbered_prompt(clicked.content, button) or prompt_of(clicked.content)
        channel = bot.get_partial_messageable(channel_id, guild_id=interaction.guild_id)
        jobs = [
            PendingJob(
                job_id=job_id,
                prompt=shown,
                button=button,
                user_id=user.id,
                guild_id=interaction.guild_id,
                channel_id=channel_id,
                application_id=interaction.application_id,
                token=interaction.token,
                token_expires=interaction.created_at.timestamp() + bot.settings.interaction_ttl,
                message_via_token=False,
                reply_to=clicked.id,
                visibility=visibility,
            )
            for job_id in submitted.message_ids
        ]

        async def place(index: int, job: PendingJob) -> PendingJob:
            text, view = progress_text(shown, user.id, button, None), cancel_view(job.job_id)
            if job.visibility == "dm":
                if (sent := await to_dm(interaction, job, text, view)) is not None:
                    if index == 0:
                        await tell_privately(interaction, sent_to_dms(bot, sent))
                    return sent
                job = job.with_(visibility="ephemeral")  # DMs closed: only to them, here
                if index == 0:
                    await tell_privately(interaction, DMS_CLOSED)
            if job.visibility == "ephemeral":
                message = await interaction.followup.send(
                    text, view=view, ephemeral=True, wait=True, allowed_mentions=NOBODY
                )
                return job.with_(message_id=message.id, message_via_token=True)
            posted = await channel.send(
                text,
                view=view,
                reference=clicked.to_reference(fail_if_not_exists=False),
                allowed_mentions=NOBODY,
            )
            return job.with_(message_id=posted.id)

        await bot.deliveries.accept(jobs, place)


async def _mark_pressed(
    bot: ImagineBot,
    interaction: discord.Interaction[Any],
    clicked: discord.Message,
    button_message_id: str,
    button: str,
) -> None:
    # clicked.components is Discord's snapshot from the click: a press made just before this
    # one is not in it yet. The blue ones are every press recorded on this result.
    async with bot.pressed.editing(button_message_id):
        used = await bot.pressed.add(button_message_id, button)
        view = view_with_pressed(clicked.components, button_message_id, button, used)
        try:
            await interaction.edit_original_response(view=view)
        except discord.HTTPException as exc:
            log.warning("could not turn %s blue on message %s: %s", button, clicked.id, exc.status)


class Buttons(commands.Cog):
    """Registers the dynamic buttons, so clicks on any result or progress message (old or new)
    reach JobButton or CancelButton."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(JobButton, CancelButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(JobButton, CancelButton)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Buttons(bot))
