"""Buttons as Midjourney's customIds: every button this service offers has one that new-api's own
parser reads as the right action, and reads back as the same button."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagine.edges.mj.customid import _SOLO, DIGITS, custom_id, parse
from imagine.jobs import GRID_BUTTONS, UPSCALE_BUTTONS
from tests.contract.newapi import normal_action

EVERY = sorted({*GRID_BUTTONS, *UPSCALE_BUTTONS, *_SOLO})
EXPECTED = {
    "U1": ("UPSCALE", 1), "U4": ("UPSCALE", 4), "V2": ("VARIATION", 2), "🔄": ("REROLL", 1),
    "Vary (Strong)": ("HIGH_VARIATION", 1), "Vary (Subtle)": ("LOW_VARIATION", 1),
    "Vary (Region)": ("INPAINT", 1), "Zoom Out 2x": ("ZOOM", 1), "Make Square": ("ZOOM", 1),
    "Custom Zoom": ("CUSTOM_ZOOM", 1), "⬅️": ("PAN", 1), "Upscale (Subtle)": ("UPSCALE", 1),
    "Upscale (Creative)": ("UPSCALE", 1), "Redo Upscale (Subtle)": ("UPSCALE", 1),
    "Redo Upscale (Creative)": ("UPSCALE", 1), "Enhance": ("UPSCALE", 1),
}  # fmt: skip


@pytest.mark.parametrize("button", EVERY)
def test_every_button_round_trips_and_new_api_reads_it(button: str) -> None:
    cid = custom_id(button, "1796251794169308673376945")
    assert parse(cid) == (button, "1796251794169308673376945")
    assert len(cid) <= 100  # Discord's custom_id limit, which Midjourney's ids keep to
    action, _ = normal_action(cid)
    assert action != "unknown_action"
    if button in EXPECTED:
        assert normal_action(cid) == EXPECTED[button]


def test_a_describes_buttons_are_picreader_and_retry() -> None:
    assert [custom_id(d, "h", "describe") for d in DIGITS[:4]] == [
        f"MJ::Job::PicReader::{n}" for n in range(1, 5)
    ]
    assert custom_id("🔄", "h", "describe") == "MJ::Picread::Retry"
    assert custom_id("5️⃣", "h", "shorten") == "MJ::Job::PromptAnalyzer::5"
    assert parse("MJ::Job::PromptAnalyzer::5") == ("5️⃣", None)


def test_newer_upscale_ids_read_as_subtle_and_creative() -> None:
    assert parse("MJ::JOB::upsample_v7_2x_subtle::1::abc::SOLO") == ("Upscale (Subtle)", "abc")
    assert parse("MJ::JOB::upsample_v6r1_2x_creative::1::abc::SOLO")[0] == "Upscale (Creative)"


@given(st.text(max_size=80))
def test_anything_else_is_refused_not_guessed(text: str) -> None:
    try:
        button, _ = parse(text)
    except ValueError:
        return
    assert button in EVERY or button in DIGITS
