"""What each button does to an image, as a plan an engine can carry out.

U1–U4 crop nothing and regenerate nothing: the tile is already stored at full resolution.
V1–V4 and Vary re-render from the image by img2img with new seeds; Vary (Region) repaints the
area a mask marks; 🔄 re-renders the prompt with new seeds; zoom (a fixed or a custom factor),
pan and make-square outpaint a larger canvas; Upscale (Subtle) and (2x/4x) ask the engine's
upscaler, Upscale (Creative) re-renders a 2x enlargement at a low strength; their Redo runs
them again on the same source. Enhance re-renders a ``--draft`` tile at full quality.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image

from imagine import images
from imagine.engines.base import Capabilities, GenerateRequest
from imagine.jobs import GRID_BUTTONS, UPSCALE_BUTTONS, Job
from imagine.prompt import ImaginePrompt, PromptError, choose_model, plan_generation, render_size

MAX_RATIO = 4
VARY_STRENGTH = {"strong": 0.65, "subtle": 0.35}
UPSCALE_FACTORS = {"Upscale (2x)": 2, "Upscale (4x)": 4, "Upscale (Subtle)": 2}
"""Upscales by the engine's upscaler (super-resolution, no new detail)."""
CREATIVE = "Upscale (Creative)"
CREATIVE_STRENGTH = 0.3
"""How much Upscale (Creative) repaints of its 2x enlargement: new detail, the same picture."""
UPSCALES = (*UPSCALE_FACTORS, CREATIVE)
SUBTLE = "Upscale (Subtle)"
REDO = {f"Redo {SUBTLE}": SUBTLE, f"Redo {CREATIVE}": CREATIVE}
"""On an Upscale (Subtle) or (Creative) result: that upscale again, of the same source image (so
a member re-rolls it; Creative with a new seed). The job's parent is that source."""
ENHANCE = "Enhance"
ENHANCE_STRENGTH = 0.5
"""How much Enhance repaints of a draft tile enlarged to the full size: the draft's picture,
redrawn with the full steps."""
TILE_BUTTONS = {f"U{k}": k - 1 for k in range(1, 5)}
VARIATION_BUTTONS = {f"V{k}": k - 1 for k in range(1, 5)}

RESULT_TYPE = {
    "imagine": "imagine",
    "blend": "imagine",
    "describe": "describe",
    "shorten": "shorten",
    "🔄": "imagine",
    CREATIVE: "upscale",
    ENHANCE: "upscale",
    **dict.fromkeys(REDO, "upscale"),
    "Vary (Region)": "variation",
    "Custom Zoom": "zoom",
    **dict.fromkeys(TILE_BUTTONS, "upscale"),
    **dict.fromkeys(UPSCALE_FACTORS, "upscale"),
    **dict.fromkeys(VARIATION_BUTTONS, "variation"),
    "Vary (Strong)": "variation",
    "Vary (Subtle)": "variation",
    **dict.fromkeys(images.ZOOM, "zoom"),
    "Make Square": "zoom",
    **dict.fromkeys(images.PAN, "pan"),
}


def carried_out(action: str) -> str:
    """What a button does: a Redo does the upscale it names; any other button itself."""
    return REDO.get(action, action)


def needs_engine(action: str) -> bool:
    return action not in TILE_BUTTONS


def fresh_render(action: str) -> bool:
    """Whether the job renders its prompt from nothing (and its own image prompts), not from
    a parent's image."""
    return action in ("imagine", "blend", "🔄")


@dataclass(frozen=True)
class PlanContext:
    """What a plan needs besides the job: the engine's abilities and the model map."""

    capabilities: Capabilities
    models: dict[str, str]
    default_model: str | None

    def capabilities_for(self, job: Job) -> Capabilities:
        """The engine's abilities on ``job``'s own model (its --v), which decide its buttons."""
        try:
            prompt = ImaginePrompt.from_dict(job.prompt)
            model = choose_model(prompt, self.models, self.default_model)
        except (PromptError, ValueError):  # not a stored prompt, or a --v no longer configured
            model = self.default_model
        return self.capabilities.for_model(model)


def generation(
    prompt: ImaginePrompt,
    context: PlanContext,
    seeds: tuple[int, ...],
    *,
    init: Image.Image | None = None,
    strength: float = 0.7,
    mask: Image.Image | None = None,
    aspect: tuple[int, int] | None = None,
) -> GenerateRequest:
    request = plan_generation(
        prompt,
        context.capabilities,
        seeds=seeds,
        models=context.models,
        default_model=context.default_model,
    )
    if aspect is not None:
        width, height = render_size(prompt, context.capabilities, aspect)
        request = dataclasses.replace(request, width=width, height=height)
    if init is not None:
        size = (request.width, request.height)
        if mask is None:
            init = images.blend([init], size)
        else:
            init, mask = init.resize(size), mask.resize(size)
        request = dataclasses.replace(request, init_image=init, strength=strength, mask=mask)
    return request


def reduced(width: int, height: int) -> tuple[int, int]:
    divisor = math.gcd(width, height) or 1
    return (width // divisor, height // divisor)


def from_image(
    action: str,
    prompt: ImaginePrompt,
    source: Image.Image,
    context: PlanContext,
    seeds: tuple[int, ...],
    *,
    mask: Image.Image | None = None,
    aspect: tuple[int, int] | None = None,
    vary: str = "strong",
) -> GenerateRequest:
    """The render for a button pressed on one image (a grid tile or an upscale). ``mask``:
    Vary (Region)'s painted area; ``aspect``: Custom Zoom's new shape (None: the source's);
    ``vary``: how far V1–V4 move from their tile (Midjourney's High/Low Variation Mode)."""
    action = carried_out(action)
    if action == ENHANCE:  # the full render the draft stood for: its seed, full steps and size
        full = dataclasses.replace(prompt, draft=False)
        return generation(
            full, context, seeds[:1], init=source, strength=ENHANCE_STRENGTH,
            aspect=reduced(*source.size),
        )  # fmt: skip
    if action == "Vary (Region)":
        if mask is None:
            raise ValueError("Vary (Region) needs a mask")
        shape = reduced(*source.size)
        size = render_size(prompt, context.capabilities, shape)
        return generation(
            prompt, context, seeds, init=source, strength=1.0,
            mask=images.repaint_mask(mask, size), aspect=shape,
        )  # fmt: skip
    if action == "Custom Zoom":
        shape = aspect or reduced(*source.size)
        size = render_size(prompt, context.capabilities, shape)
        canvas, zoom_mask = images.custom_zoom_canvas(source, prompt.zoom or 2.0, size)
        return generation(
            prompt, context, seeds, init=canvas, strength=1.0, mask=zoom_mask, aspect=shape
        )
    if action == CREATIVE:
        width, height = source.width * 2, source.height * 2
        multiple = context.capabilities.multiple
        size = (
            max(multiple, width // multiple * multiple),
            max(multiple, height // multiple * multiple),
        )
        request = generation(prompt, context, seeds[:1])
        return dataclasses.replace(
            request, width=size[0], height=size[1],
            init_image=source.convert("RGB").resize(size, Image.Resampling.LANCZOS),
            strength=CREATIVE_STRENGTH,
        )  # fmt: skip
    if action in VARIATION_BUTTONS or action == "Vary (Strong)":
        return generation(
            prompt,
            context,
            seeds,
            init=source,
            strength=VARY_STRENGTH[vary if action in VARIATION_BUTTONS else "strong"],
            aspect=reduced(*source.size),
        )
    if action == "Vary (Subtle)":
        return generation(
            prompt,
            context,
            seeds,
            init=source,
            strength=VARY_STRENGTH["subtle"],
            aspect=reduced(*source.size),
        )
    if action in images.ZOOM:
        aspect = reduced(*source.size)
        size = render_size(prompt, context.capabilities, aspect)
        canvas, mask = images.zoom_canvas(source, images.ZOOM[action], size)
        return generation(
            prompt, context, seeds, init=canvas, strength=1.0, mask=mask, aspect=aspect
        )
    if action in images.PAN:
        direction = images.PAN[action]
        aspect = reduced(*images.pan_aspect(*source.size, direction))
        size = render_size(prompt, context.capabilities, aspect)
        canvas, mask = images.pan_canvas(source, direction, size)
        return generation(
            prompt, context, seeds, init=canvas, strength=1.0, mask=mask, aspect=aspect
        )
    if action == "Make Square":
        size = render_size(prompt, context.capabilities, (1, 1))
        canvas, mask = images.square_canvas(source, size)
        return generation(
            prompt, context, seeds, init=canvas, strength=1.0, mask=mask, aspect=(1, 1)
        )
    raise ValueError(f"{action!r} is not a button on an image")


def buttons_for(
    result_type: str,
    capabilities: Capabilities,
    size: tuple[int, int],
    action: str,
    *,
    draft: bool = False,
) -> list[str]:
    """The buttons a result offers: only those this engine can carry out. ``draft``: the
    result's prompt has ``--draft`` (an upscale of it offers Enhance)."""
    if result_type != "upscale":
        return [b for b in GRID_BUTTONS if capabilities.img2img or not b.startswith("V")]
    offered = []
    upscaled = carried_out(action)
    for label in UPSCALE_BUTTONS:
        # after a Subtle or Creative upscale, in their place: their Redo
        redo = label in (SUBTLE, CREATIVE) and upscaled in (SUBTLE, CREATIVE)
        button = f"Redo {label}" if redo else label
        if (
            button.startswith("Vary") or carried_out(button) == CREATIVE
        ) and not capabilities.img2img:
            continue
        if (
            button in images.ZOOM
            or button in images.PAN
            or button in ("Make Square", "Custom Zoom")
        ) and not capabilities.outpaint:
            continue
        if button == "Vary (Region)" and not (capabilities.outpaint and capabilities.inpaint):
            continue
        if button == "Make Square" and size[0] == size[1]:
            continue
        if button in images.PAN and _too_long(images.pan_aspect(*size, images.PAN[button])):
            continue  # a pan may not go past Midjourney's 4:1
        if button in UPSCALES and upscaled in UPSCALES:
            continue  # an upscale of an upscale would pass any sensible size
        offered.append(button)
    if draft and capabilities.img2img:
        offered.append(ENHANCE)
    return offered


def _too_long(aspect: tuple[int, int]) -> bool:
    return max(aspect) > MAX_RATIO * min(aspect)


def describe(request: GenerateRequest, capabilities: Capabilities) -> dict[str, Any]:
    """The effective settings, returned with the result."""
    return {
        "engine": capabilities.name,
        "mode": request.mode,
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "guidance": request.guidance,
        "model": request.model,
        "strength": request.strength if request.init_image is not None else None,
        **({"draft": True} if request.extra.get("draft") else {}),
    }
