"""What a Discord user sees, read from the fake: images, buttons, replies, private notices."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.fakediscord import FakeDiscord, FakeInteraction

JSON = dict[str, Any]
EPHEMERAL = 1 << 6
GRID_LABELS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
UPSCALE_LABELS = {
    "Vary (Strong)",
    "Vary (Subtle)",
    "Vary (Region)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Make Square",
    "Upscale (Subtle)",
    "Upscale (Creative)",
}
COMMANDS = [
    "Show job",
    "blend",
    "describe",
    "gallery",
    "help",
    "imagine",
    "info",
    "settings",
    "shorten",
    "sync",
]
"""Every command the bot registers, sorted by name as the tests read them."""
PRIMARY, SECONDARY = 1, 2
TIMEOUT = 15.0


def buttons(message: JSON) -> list[JSON]:
    return [c for row in message.get("components") or [] for c in row.get("components") or []]


def labels(message: JSON) -> list[str]:
    return [b["label"] for b in buttons(message)]


def button(message: JSON, label: str) -> JSON:
    return next(b for b in buttons(message) if b["label"] == label)


async def image(fake: FakeDiscord, message: JSON) -> tuple[Image.Image, JSON]:
    [attachment] = message["attachments"]
    data = await fake.read_attachment(attachment)
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture, attachment


def saying(message: JSON | None, words: str) -> JSON | None:
    """The message once its content has ``words`` (for ``fake.wait_for``)."""
    return message if message is not None and words in message["content"] else None


def is_ephemeral(message: JSON) -> bool:
    return bool(int(message.get("flags") or 0) & EPHEMERAL)


async def finished_original(fake: FakeDiscord, inter: FakeInteraction) -> JSON:
    """The /imagine response once it carries the result (its buttons, not the progress
    message's Cancel)."""
    return await fake.wait_for(
        lambda: (
            inter.original
            if inter.original
            and inter.original["attachments"]
            and set(labels(inter.original)) - {"Cancel"}
            else None
        ),
        TIMEOUT,
    )


async def private_notice(fake: FakeDiscord, inter: FakeInteraction) -> JSON:
    """The ephemeral message the interaction's user got (a followup, or the direct reply)."""

    def found() -> JSON | None:
        candidates = [*inter.followups, *([inter.original] if inter.original else [])]
        return next(
            (m for m in candidates if is_ephemeral(m) and m["content"] and not m["deleted"]), None
        )

    return await fake.wait_for(found, TIMEOUT)


async def reply_to(
    fake: FakeDiscord, message_id: str, *, after: int = 0, channel_id: str | None = None
) -> JSON:
    """The first finished result (image and buttons) replying to ``message_id``, skipping ``after``."""

    def found() -> JSON | None:
        replies = [
            m
            for m in fake.messages(channel_id)
            if (m.get("message_reference") or {}).get("message_id") == message_id
        ]
        replies = replies[after:]
        first = replies[0] if replies else None
        done = first and first["attachments"] and set(labels(first)) - {"Cancel"}
        return first if done else None

    return await fake.wait_for(found, TIMEOUT)


async def refused(fake: FakeDiscord, prompt: str, **kwargs: object) -> str:
    """Run /imagine and return the private notice it got, checking it left nothing public."""
    inter = await fake.slash("imagine", {"prompt": prompt}, **kwargs)  # type: ignore[arg-type]
    notice = await private_notice(fake, inter)
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    # nothing public is left behind: the "thinking…" message was removed
    assert inter.original is None or inter.original["deleted"] or is_ephemeral(inter.original)
    text: str = notice["content"]
    return text
