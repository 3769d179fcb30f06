"""Cog logic that needs no Discord: the /imagine message, the /info text, the /help embed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.client import ServiceInfo
from bot.errors import UserFacingError
from cogs.help import help_embed
from cogs.imagine import compose_msg
from cogs.info import PLACEHOLDER_WARNING, info_text


def attachment(filename: str, content_type: str | None) -> discord.Attachment:
    data: dict[str, Any] = {
        "id": 1,
        "filename": filename,
        "size": 10,
        "url": f"https://cdn.example/{filename}",
        "proxy_url": f"https://media.example/{filename}",
    }
    if content_type:
        data["content_type"] = content_type
    # An attachment only needs its state to download itself, which compose_msg never does.
    return discord.Attachment(data=data, state=SimpleNamespace(http=None))  # type: ignore[arg-type]


def test_attachment_becomes_the_leading_image_url() -> None:
    assert compose_msg("  a  cat --ar 3:2 ", None) == "a cat --ar 3:2"
    assert (
        compose_msg("a cat", attachment("c.png", "image/png")) == "https://cdn.example/c.png a cat"
    )


def test_a_non_image_attachment_is_refused_by_name() -> None:
    with pytest.raises(UserFacingError, match=r"“notes\.pdf” is not an image"):
        compose_msg("a cat", attachment("notes.pdf", "application/pdf"))


def test_info_warns_about_the_placeholder() -> None:
    info = ServiceInfo(
        queued=2,
        running=1,
        engine="placeholder",
        placeholder=True,
        version="0.1.0",
        user_unfinished=1,
    )
    text = info_text(info, 1, 3)
    assert "**Queue:** 2 waiting, 1 running" in text
    assert "**Your unfinished jobs:** 1 of 3" in text
    assert PLACEHOLDER_WARNING in text
    real = ServiceInfo(0, 0, "diffusers", False, "", None)
    assert PLACEHOLDER_WARNING not in info_text(real, 0, 3)


def test_help_fits_discords_embed_limits() -> None:
    embed = help_embed(3)
    assert all(len(field.value or "") <= 1024 for field in embed.fields)
    assert len(embed) <= 6000
    assert "Up to 3 unfinished jobs" in (embed.fields[-1].value or "")
