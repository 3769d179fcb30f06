"""Result buttons: Midjourney's rows, custom_ids that carry their state, a used U turned blue."""

from __future__ import annotations

import re
from typing import Any

import discord

from cogs.buttons import JobButton, button_rows, prompt_of, result_view, view_with_pressed
from tests.bot.stub_service import GRID_BUTTONS, UPSCALE_BUTTONS


def test_grid_rows_and_upscale_rows() -> None:
    assert button_rows(GRID_BUTTONS) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    rows = button_rows([*UPSCALE_BUTTONS, "Make Square", "Upscale (2x)", "Upscale (4x)", "Custom"])
    assert rows == [
        ["Upscale (2x)", "Upscale (4x)"],
        ["Vary (Strong)", "Vary (Subtle)"],
        ["Zoom Out 2x", "Zoom Out 1.5x", "Make Square"],
        ["⬅️", "➡️", "⬆️", "⬇️"],
        ["Custom"],
    ]


def test_view_components_fit_discords_rules() -> None:
    view = result_view("OtfxNzfMIKBPVE1aP4u4", GRID_BUTTONS)
    rows = view.to_components()
    assert len(rows) == 2
    assert [c["custom_id"] for c in rows[0]["components"]][:2] == [
        "mj:OtfxNzfMIKBPVE1aP4u4:U1",
        "mj:OtfxNzfMIKBPVE1aP4u4:U2",
    ]
    assert all(len(c["custom_id"]) <= 100 for row in rows for c in row["components"])
    assert view.timeout is None
    assert view.is_persistent()
    too_long = result_view("x" * 95, ["U1"])
    assert too_long.children == []  # left out rather than rejected by Discord


async def test_custom_id_rebuilds_the_button() -> None:
    item: discord.ui.Button[discord.ui.View] = discord.ui.Button(
        custom_id="mj:abc_-1:Vary (Strong)", style=discord.ButtonStyle.primary
    )
    match = JobButton.__discord_ui_compiled_template__.fullmatch("mj:abc_-1:Vary (Strong)")
    assert match is not None
    button = await JobButton.from_custom_id(None, item, match)  # type: ignore[arg-type]
    assert (button.button_message_id, button.button) == ("abc_-1", "Vary (Strong)")
    assert button.item.style is discord.ButtonStyle.primary


def _row(view: discord.ui.View) -> list[discord.ActionRow]:
    return [discord.ActionRow(row) for row in view.to_components()]  # type: ignore[arg-type]


def test_pressed_upscale_turns_blue_and_keeps_earlier_ones() -> None:
    original = result_view("m1", GRID_BUTTONS, pressed=["U1"])
    again = view_with_pressed(_row(original), "m1", "U3")
    styles: dict[str, Any] = {
        c["label"]: c["style"] for row in again.to_components() for c in row["components"]
    }
    assert styles["U1"] == styles["U3"] == discord.ButtonStyle.primary.value
    assert styles["U2"] == discord.ButtonStyle.secondary.value
    assert len(styles) == 9


def test_prompt_is_read_back_from_the_headline() -> None:
    assert prompt_of(r"**a \*starry\* night** - Image #2 <@1>") == "a *starry* night"
    assert prompt_of("something else") == ""
    assert re.fullmatch(r"mj:.+", "mj:x:U1")
