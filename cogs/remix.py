"""Modals a button opens before its press: Custom Zoom's (the prompt with ``--zoom 1–2``) and,
with the member's Remix Mode on, V1–V4's, Vary's and 🔄's (the prompt to edit)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import UserFacingError, user_message
from bot.tree import log_failure, reply_privately

if TYPE_CHECKING:
    from bot.app import ImagineBot

log = logging.getLogger(__name__)


MODAL_BUTTONS = frozenset({"Custom Zoom"})
"""Buttons that first ask for a prompt in a modal."""
REMIXABLE = frozenset({"V1", "V2", "V3", "V4", "🔄", "Vary (Strong)", "Vary (Subtle)"})
"""Buttons that ask for the prompt first when the member's Remix Mode is on."""
_ZOOM = re.compile(r"(?:^|\s)(?:--|—)zoom(?:\s+(?P<value>\S+))?", re.IGNORECASE)
ZOOM_RANGE = (1.0, 2.0)


def modal_prompt(button: str, prompt: str) -> str:
    """The modal's prefilled prompt: the result's own (a Custom Zoom's with ``--zoom 2``)."""
    if button != "Custom Zoom" or _ZOOM.search(prompt):
        return prompt
    return f"{prompt} --zoom 2".strip()


def check_zoom(text: str) -> None:
    """A sentence (that gives the text back, so nothing typed is lost) unless ``--zoom`` is 1–2."""
    found = _ZOOM.search(text)
    value = found["value"] if found else None
    try:
        factor = float(value) if value is not None else None
    except ValueError:
        factor = None
    if factor is None or not ZOOM_RANGE[0] <= factor <= ZOOM_RANGE[1]:
        shown = discord.utils.escape_markdown(text[:1500])
        raise UserFacingError(
            "Custom Zoom needs `--zoom` with a number from 1 to 2 (e.g. `--zoom 1.5`). "
            f"Press Custom Zoom again with it; your prompt was:\n{shown}"
        )


class PromptModal(discord.ui.Modal):
    """Remix's and Custom Zoom's modal: the prompt (with ``--zoom``), editable, then the press."""

    def __init__(self, button_message_id: str, button: str, prompt: str) -> None:
        title = "Remix" if button in REMIXABLE else button
        super().__init__(title=title, custom_id=f"modal:{button_message_id}"[:100], timeout=None)
        self.button_message_id = button_message_id
        self.button = button
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, default=modal_prompt(button, prompt)[:4000],
            max_length=4000, required=True, custom_id="prompt",
        )  # fmt: skip
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        try:
            text = " ".join(self.prompt.value.split())
            if self.button == "Custom Zoom":
                check_zoom(text)
            from cogs.buttons import press  # the press module opens these modals

            bot = cast("ImagineBot", interaction.client)
            await press(bot, interaction, self.button_message_id, self.button, prompt=text)
        except Exception as exc:
            log_failure(f"{self.button} on {self.button_message_id}", interaction, exc)
            await reply_privately(interaction, user_message(exc))
