"""One batched pipeline call for a :class:`GenerateRequest` (runs in the engine's worker thread).

A batch is one call with one ``torch.Generator`` per seed: diffusers draws each tile's starting
noise from its own generator, so tile k is the image a single run with seed k gives.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator
from typing import Any

import torch
from PIL import Image, ImageFilter

from imagine.codes import ResultCode
from imagine.engines.base import (
    OUTPAINT_STRENGTH,
    EngineError,
    GenerateRequest,
    ProgressCallback,
)
from imagine.engines.diffusers_load import LoadedModel
from imagine.engines.diffusers_prompts import weighted_prompt_kwargs
from imagine.engines.diffusers_references import reference_kwargs
from imagine.images import BLOCKED, blocked_tile
from imagine.prompt.mapping import stop_steps

DENOISE_SHARE = 0.9
"""Share of the progress bar given to denoising; the VAE decode takes the rest."""
PREVIEWS = 4
"""About this many previews per run, when the TAESD decoder makes them cheap."""
OUTPAINT_MIN_STEPS = 2
"""Denoising steps an outpaint runs at least on a model that is not an inpainting one, so that a
1-step turbo model refines the partly noised border once more."""


class StepReporter:
    """The pipeline's ``callback_on_step_end``: progress, now and then a TAESD preview, and
    ``--stop``: after that share of the steps it interrupts the pipeline (diffusers then skips
    the remaining steps and decodes the latents as they are: an unfinished picture).

    ``progress`` raising EngineCancelled propagates out of the pipeline call and stops the run.
    """

    def __init__(
        self, progress: ProgressCallback, steps: int, previews: bool, stop: int = 100
    ) -> None:
        self.progress = progress
        self.steps = steps
        self.previews = previews
        self.stop = stop

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> Any:
        total = max(1, int(getattr(pipe, "num_timesteps", 0) or self.steps))
        if self.stop < 100:
            total = stop_steps(total, self.stop)
        done = step + 1
        if done >= total and self.stop < 100:
            pipe._interrupt = True
        preview = None
        every = max(1, total // PREVIEWS)
        if self.previews and done < total and done % every == 0 and "latents" in tensors:
            preview = decode_preview(pipe, tensors["latents"][:1])
        fraction = DENOISE_SHARE * min(1.0, done / total)
        self.progress(fraction, preview)
        return tensors


def decode_preview(pipe: Any, latents: torch.Tensor) -> Image.Image:
    vae = pipe.vae
    scaled = latents.to(vae.dtype) / vae.config.scaling_factor
    pixels = vae.decode(scaled, return_dict=False)[0]
    images: list[Image.Image] = pipe.image_processor.postprocess(pixels, output_type="pil")
    return images[0]


@contextlib.contextmanager
def seamless(*modules: torch.nn.Module | None) -> Iterator[None]:
    """Circular padding on every convolution, so the image wraps around; restored afterwards."""
    convs = [
        layer
        for module in modules
        if module is not None
        for layer in module.modules()
        if isinstance(layer, torch.nn.Conv2d)
    ]
    saved = [conv.padding_mode for conv in convs]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv, mode in zip(convs, saved, strict=True):
            conv.padding_mode = mode


def img2img_steps(steps: int, strength: float, at_least: int = 1) -> int:
    """Steps to ask for so that img2img, which runs int(steps * strength) of them, runs at least
    ``at_least`` (and at least one, or diffusers refuses)."""
    return max(steps, math.ceil(at_least / strength - 1e-9))


def inpainting_model(pipe: Any) -> bool:
    """True for a UNet trained to inpaint (9 input channels: latents, mask, masked image)."""
    unet = getattr(pipe, "unet", None)
    return unet is not None and int(getattr(unet.config, "in_channels", 4)) == 9


def outpaint_strength(pipe: Any, requested: float, steps: int) -> tuple[float, int]:
    """(strength, num_inference_steps) of an outpaint.

    An inpainting UNet fills the border from the mask and the kept image, at 1.0. Any other
    model at 1.0 would start the border from pure noise and ignore the picture: it starts
    instead from the pre-filled border (a stretch of the image), partly noised.
    """
    if inpainting_model(pipe):
        return 1.0, steps
    strength = min(max(requested, 0.01), OUTPAINT_STRENGTH)
    return strength, img2img_steps(steps, strength, OUTPAINT_MIN_STEPS)


def _supported(pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    accepted = inspect.signature(pipe.__call__).parameters
    return {name: value for name, value in kwargs.items() if name in accepted}


def _feathered(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    radius = max(1, min(size) // 128)
    return mask.convert("L").resize(size).filter(ImageFilter.GaussianBlur(radius))


def render(
    loaded: LoadedModel,
    request: GenerateRequest,
    progress: ProgressCallback,
) -> list[Image.Image]:
    """Run the request as one batched pipeline call and return its tiles."""
    family = loaded.family
    size = (request.width, request.height)
    steps = request.steps or family.steps
    guidance = family.guidance if request.guidance is None else request.guidance
    kwargs: dict[str, Any] = {
        "num_images_per_prompt": len(request.seeds),
        "generator": [torch.Generator("cpu").manual_seed(seed) for seed in request.seeds],
        "guidance_scale": guidance,
        "num_inference_steps": steps,
        "height": request.height,
        "width": request.width,
        "output_type": "pil",
    }
    mode = request.mode
    pipe = loaded.text2img
    if mode == "img2img":
        pipe = loaded.img2img
        strength = min(1.0, max(0.01, request.strength))
        kwargs.update(image=_rgb(request.init_image, size), strength=strength)
        kwargs["num_inference_steps"] = img2img_steps(steps, strength)
    elif mode == "outpaint":
        if loaded.inpaint is None:
            raise EngineError(
                ResultCode.INVALID_PARAMETER,
                "This model cannot outpaint: diffusers has no inpainting pipeline for it.",
            )
        pipe = loaded.inpaint
        mask = request.mask.convert("L").resize(size) if request.mask is not None else None
        strength, kwargs["num_inference_steps"] = outpaint_strength(pipe, request.strength, steps)
        kwargs.update(image=_rgb(request.init_image, size), mask_image=mask, strength=strength)
    if request.weighted and family.weighted_prompts:
        kwargs.update(weighted_prompt_kwargs(loaded.text2img, request, loaded.device))
    else:
        kwargs.update(prompt=request.prompt, negative_prompt=request.negative_prompt or None)
    # FLUX's latents are packed 2x2 patches: no cheap preview decode for them.
    previews = loaded.has_taesd and not family.name.startswith("flux")
    stop = request.extra.get("stop", 100)
    stop = stop if isinstance(stop, int) and 10 <= stop <= 100 else 100
    reporter = StepReporter(progress, kwargs["num_inference_steps"], previews, stop)
    kwargs.update(reference_kwargs(loaded, request))
    kwargs["callback_on_step_end"] = reporter
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    tiling = seamless(denoiser, pipe.vae) if request.tile else contextlib.nullcontext()
    with tiling, torch.inference_mode():
        output = pipe(**_supported(pipe, kwargs))
    tiles = _checked(output)
    tiles = [
        tile if tile.size == size else tile.resize(size, Image.Resampling.LANCZOS) for tile in tiles
    ]
    if mode == "outpaint" and request.init_image is not None and request.mask is not None:
        # Keep the original pixels outside the mask exactly: the VAE round trip would blur them.
        fill = _feathered(request.mask, size)
        init = _rgb(request.init_image, size)
        tiles = [
            tile if BLOCKED in tile.info else Image.composite(tile, init, fill) for tile in tiles
        ]
    progress(1.0, None)
    return tiles


def _rgb(image: Image.Image | None, size: tuple[int, int]) -> Image.Image:
    assert image is not None
    image = image.convert("RGB")
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def _checked(output: Any) -> list[Image.Image]:
    """The pipeline's images; those its safety checker flagged (and blacked out) are replaced by
    a tile that says so, which the service offers no U or V for."""
    tiles: list[Image.Image] = list(output.images)
    flagged = getattr(output, "nsfw_content_detected", None)
    if flagged and all(flagged):
        raise EngineError(
            ResultCode.IMAGE_BLOCKED,
            "The model's safety checker blanked every image of this job.",
        )
    if flagged:
        tiles = [
            blocked_tile(tile.size) if hit else tile
            for tile, hit in zip(tiles, flagged, strict=False)
        ]
    return tiles
