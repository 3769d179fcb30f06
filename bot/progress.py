"""What a job's message says: Midjourney's layout, with progress while it runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import discord

from bot.client import JobProgress

_BAR_CELLS = 10
_PROMPT_LIMIT = 1500
"""Leaves room under Discord's 2000 characters for the mention and the status."""

_PANS = {"⬅️": "Pan Left", "➡️": "Pan Right", "⬆️": "Pan Up", "⬇️": "Pan Down"}


def action_words(button: str) -> str:
    """What a button did, as Midjourney words it before the mention ('' for a fresh grid)."""
    if button in ("", "imagine", "🔄"):
        return ""
    if len(button) == 2 and button[0] == "U" and button[1].isdigit():
        return f"Image #{button[1]}"
    if len(button) == 2 and button[0] == "V" and button[1].isdigit():
        return "Variations by"
    if button.startswith("Vary ("):
        return f"Variations {button.removeprefix('Vary ')} by"
    if button.startswith("Upscale ("):
        return f"Upscaled {button.removeprefix('Upscale ')} by"
    if button in _PANS:
        return f"{_PANS[button]} by"
    return f"{button} by"


def headline(prompt: str, user_id: int, button: str = "") -> str:
    """``**prompt** - <@user>``, or ``**prompt** - Image #2 <@user>`` after a button."""
    # Escape first, then cut: escaping can double the length (a prompt of 1500 "*" is 3000).
    text = discord.utils.escape_markdown(" ".join(prompt.split()))
    if len(text) > _PROMPT_LIMIT:
        text = text[: _PROMPT_LIMIT - 1]
        if (len(text) - len(text.rstrip("\\"))) % 2:  # never end on half of an escape
            text = text[:-1]
        text += "…"
    text = text or "(no prompt)"
    words = action_words(button)
    middle = f"{words} " if words else ""
    return f"**{text}** - {middle}<@{user_id}>"


NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
"""How a /describe's and a /shorten's prompts are numbered: the labels of their buttons."""
_MESSAGE_LIMIT = 2000


def prompts_text(title: str, prompts: tuple[str, ...]) -> str:
    """``title`` then each prompt on its own numbered line, every one cut to fit Discord's 2000
    characters (the whole prompt is still what its button imagines)."""
    shown = prompts[: len(NUMBERS)]
    room = (_MESSAGE_LIMIT - len(title) - 4 * len(shown)) // max(1, len(shown)) - len(NUMBERS[0])
    lines = []
    for number, prompt in zip(NUMBERS, shown, strict=False):
        text = discord.utils.escape_markdown(" ".join(prompt.split()))
        if len(text) > room:
            text = text[: room - 1]
            if (len(text) - len(text.rstrip("\\"))) % 2:
                text = text[:-1]
            text += "…"
        lines.append(f"{number} {text}")
    return "\n\n".join([title, *lines])


def numbered_prompt(content: str, number: str) -> str:
    """The prompt on the line ``number`` starts in a message made by :func:`prompts_text`."""
    for line in content.split("\n"):
        if line.startswith(f"{number} "):
            return re.sub(r"\\(.)", r"\1", line[len(number) + 1 :])
    return ""


def display_prompt(content: str, fallback: str) -> str:
    """The prompt to show in bold: the service's ``content``, unless it is only image links
    and parameters (a blend), whose long CDN links say less than the bot's own title."""
    before_parameters = f" {content}".split(" --")[0].split()
    if all(w.lower().startswith(("http://", "https://", "<http")) for w in before_parameters):
        return fallback or content
    return content


def blocked_note(blocked: tuple[int, ...]) -> str:
    """A line for tiles the engine's safety checker withheld ("" when none)."""
    if not blocked:
        return ""
    names = " and ".join(", ".join(map(str, blocked)).rsplit(", ", 1))
    one = len(blocked) == 1
    noun, verb, has = ("Image", "was", "it has") if one else ("Images", "were", "they have")
    return f"\n{noun} {names} {verb} blocked by the model's safety checker, so {has} no U or V."


def ignored_note(ignored: tuple[str, ...]) -> str:
    """A line naming the parameters this engine did not carry out ("" when none)."""
    if not ignored:
        return ""
    names = ", ".join(f"`{p}`" for p in ignored[:10])
    return f"\nThis engine ignored {names}: see /help for what each engine honours."


def bar(percent: int) -> str:
    filled = max(0, min(_BAR_CELLS, round(percent * _BAR_CELLS / 100)))
    return "▰" * filled + "▱" * (_BAR_CELLS - filled)


def status_line(state: JobProgress | None) -> str:
    """The part after the mention: waiting, queue position, or a bar with the percentage."""
    if state is None:
        return "(Waiting to start)"
    if state.status == "queued":
        position = state.queue_position
        if position is None:
            return "(Waiting to start)"
        if position <= 0:  # the service counts the jobs that start before this one
            return "(Waiting to start: next in the queue)"
        return f"(Waiting to start: {position} ahead in the queue)"
    return f"({state.progress}%) {bar(state.progress)}"


def duration(seconds: float) -> str:
    """``90`` → "1.5 minutes": how long, in the unit a reader expects."""
    if seconds < 60:
        amount, unit = seconds, "second"
    elif seconds < 2 * 3600:
        amount, unit = seconds / 60, "minute"
    else:
        amount, unit = seconds / 3600, "hour"
    amount = round(amount, 1) if amount < 10 else round(amount)
    return f"{amount:g} {unit}{'' if amount == 1 else 's'}"


def not_started_note(seconds: float) -> str:
    """The line added to a job's message when the service has queued it for too long."""
    return (
        f"\nThe image service has not started this job after {duration(seconds)}; it is still "
        "queued, and the result will be posted here when it is done."
    )


def no_answer_note(seconds: float) -> str:
    """The line added to a job's message when the service has not answered for too long."""
    return (
        f"\nThe image service has not answered for {duration(seconds)}; the bot keeps asking, "
        "and the result will be posted here when it is done."
    )


def progress_text(prompt: str, user_id: int, button: str, state: JobProgress | None) -> str:
    return f"{headline(prompt, user_id, button)} {status_line(state)}"


class EditPacer:
    """Allows one message edit per ``interval`` seconds (Discord's unpublished edit limits)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        return self._last is None or self._clock() - self._last >= self.interval

    def mark(self) -> None:
        self._last = self._clock()
