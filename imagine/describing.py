"""Jobs whose result is prompts, not images: Midjourney's /describe (prompts read in an image)
and /shorten (which words of a prompt count, and shorter prompts that keep them)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from PIL import Image

from imagine import images
from imagine.codes import ResultCode
from imagine.engines.base import (
    Capabilities,
    Describer,
    Engine,
    EngineError,
    ProgressCallback,
    PromptAnalyser,
)

DIGITS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
"""A describe's and a shorten's buttons: imagine that prompt (🔄 describes again)."""
DESCRIPTIONS = 4
SHORTER = 5


async def describe(
    engine: Engine, capabilities: Capabilities, image: Image.Image, progress: ProgressCallback
) -> dict[str, Any]:
    """Four prompts from the engine, each with the image's --ar, as Midjourney writes them."""
    if not (isinstance(engine, Describer) and capabilities.describe):
        raise EngineError(
            ResultCode.INVALID_PARAMETER, f"The {capabilities.name} engine cannot describe images."
        )
    prompts = await engine.describe(image, DESCRIPTIONS, progress)
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise EngineError(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
            "The engine described the image in something other than prompts.",
        )
    ratio = images.common_ratio(image.width, image.height)
    shaped = [f"{' '.join(p.split())} --ar {ratio[0]}:{ratio[1]}" for p in prompts[:DESCRIPTIONS]]
    return {
        "prompts": shaped,
        "width": image.width,
        "height": image.height,
        "buttons": [*DIGITS[: len(shaped)], "🔄"],
    }


async def shorten(engine: Engine, capabilities: Capabilities, content: str) -> dict[str, Any]:
    """Read with the engine's own tokenizer and text encoder where it has them (else an
    estimate of CLIP's); the shorter prompts keep the original's parameters."""
    from imagine.prompt import shorten as estimates

    text, marker, rest = content.partition(" --")
    parameters = f" --{rest}" if marker else ""
    if isinstance(engine, PromptAnalyser) and capabilities.tokenizer:
        analysis = await engine.analyse_prompt(text.strip())
    else:
        analysis = await asyncio.to_thread(estimates.estimate, text.strip())
    prompts = [f"{p}{parameters}" for p in estimates.shorter(analysis, SHORTER)]
    return {
        "prompts": prompts,
        "analysis": {
            "limit": analysis.limit,
            "tokenizer": analysis.tokenizer,
            "words": [dataclasses.asdict(w) for w in analysis.words],
        },
        "buttons": list(DIGITS[: len(prompts)]),
    }
