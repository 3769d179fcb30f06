"""Buttons as midjourney-proxy names them: Midjourney's own component ``custom_id`` formats.

new-api parses these itself (split on ``::``; the name is part 2 after ``JOB``, else part 1;
upscales and variations need an index in part 3), so they follow Midjourney's exactly. The
hash part is the result's ``buttonMessageId`` (Midjourney's message hash).
"""

from __future__ import annotations

import re

PANS = {"⬅️": "left", "➡️": "right", "⬆️": "up", "⬇️": "down"}
_SOLO = {
    "Vary (Strong)": "MJ::JOB::high_variation::1::{h}::SOLO",
    "Vary (Subtle)": "MJ::JOB::low_variation::1::{h}::SOLO",
    "Vary (Region)": "MJ::Inpaint::1::{h}::SOLO",
    "Zoom Out 2x": "MJ::Outpaint::50::1::{h}::SOLO",
    "Zoom Out 1.5x": "MJ::Outpaint::75::1::{h}::SOLO",
    "Make Square": "MJ::Outpaint::100::1::{h}::SOLO",
    "Custom Zoom": "MJ::CustomZoom::{h}",
    "Upscale (Subtle)": "MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO",
    "Upscale (Creative)": "MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO",
    "Upscale (2x)": "MJ::JOB::upsample_v5_2x::1::{h}::SOLO",
    "Upscale (4x)": "MJ::JOB::upsample_v5_4x::1::{h}::SOLO",
    # not Midjourney's own ids (none is published for these): "upsample" keeps new-api's
    # parser reading them as UPSCALE, which is what they are
    "Redo Upscale (Subtle)": "MJ::JOB::upsample_v6_2x_subtle_redo::1::{h}::SOLO",
    "Redo Upscale (Creative)": "MJ::JOB::upsample_v6_2x_creative_redo::1::{h}::SOLO",
    "Enhance": "MJ::JOB::upsample_enhance::1::{h}::SOLO",
    "🔄": "MJ::JOB::reroll::0::{h}::SOLO",
    **{arrow: f"MJ::JOB::pan_{way}::1::{{h}}::SOLO" for arrow, way in PANS.items()},
}
DIGITS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
EMOJI = {
    "🔄": "🔄", "Vary (Strong)": "🪄", "Vary (Subtle)": "🪄", "Vary (Region)": "🖌️",
    "Zoom Out 2x": "🔍", "Zoom Out 1.5x": "🔍", "Custom Zoom": "🔍", "Make Square": "↔️",
    **{arrow: arrow for arrow in PANS}, **{d: d for d in DIGITS},
}  # fmt: skip
_GRID = re.compile(r"MJ::JOB::(upsample|variation)::([1-4])::([\w-]+)(?:::SOLO)?")
_UPSCALE = re.compile(
    r"MJ::JOB::upsample_(?:v6|v6r1|v7)_2x_(subtle|creative)::1::([\w-]+)(?:::SOLO)?"
)
_DESCRIBED = re.compile(r"MJ::Job::(PicReader|PromptAnalyzer)::([1-5])")


def custom_id(button: str, message_hash: str, kind: str = "") -> str:
    """The customId of ``button`` on a result whose hash is ``message_hash``; ``kind``: the
    result's type (a describe's and a shorten's numbered buttons have their own)."""
    if button in DIGITS:
        n = DIGITS.index(button) + 1
        return f"MJ::Job::{'PromptAnalyzer' if kind == 'shorten' else 'PicReader'}::{n}"
    if button == "🔄" and kind == "describe":
        return "MJ::Picread::Retry"
    if button[:1] in "UV" and button[1:].isdigit():
        name = "upsample" if button[0] == "U" else "variation"
        return f"MJ::JOB::{name}::{button[1:]}::{message_hash}"
    return _SOLO[button].format(h=message_hash)


_BY_ID = {pattern.split("::{h}")[0]: button for button, pattern in _SOLO.items()}


def parse(value: str) -> tuple[str, str | None]:
    """(our button, the hash it names, or None when it names none); ValueError for anything
    that is not one of the customIds this service hands out."""
    value = value.strip()
    if match := _GRID.fullmatch(value):
        return ("U" if match[1] == "upsample" else "V") + match[2], match[3]
    if match := _UPSCALE.fullmatch(value):
        return f"Upscale ({match[1].capitalize()})", match[2]
    if match := _DESCRIBED.fullmatch(value):
        return DIGITS[int(match[2]) - 1], None
    if value == "MJ::Picread::Retry":
        return "🔄", None
    if value.startswith("MJ::CustomZoom::"):
        return "Custom Zoom", value.removeprefix("MJ::CustomZoom::") or None
    parts = value.split("::")
    if len(parts) >= 4 and parts[-1] == "SOLO":
        button = _BY_ID.get("::".join(parts[:-2]))
        if button is not None:
            return button, parts[-2]
    raise ValueError(f"{value[:120]!r} is not a button's customId")
