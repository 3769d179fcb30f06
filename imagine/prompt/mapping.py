"""From a parsed prompt to what an engine renders: size, steps, guidance, model, seeds.

Midjourney's knobs have no exact diffusion equivalent; these are the mappings, each relative to
the engine's own defaults so that a prompt without parameters renders exactly as the engine
would by itself:

- ``--ar`` keeps the engine's pixel budget (native_size²) and its size multiple.
- ``--quality q`` multiplies the engine's default steps by q.
- ``--stylize s`` scales the engine's default guidance by ``1 - 0.25·log10((s + 10) / 110)``:
  ×1 at the default 100, ×1.26 at 0 (follow the prompt closely), ×0.76 at 1000 (freer).
- ``--iw`` 0–3 becomes the img2img strength ``0.95 - 0.25·iw``: 0.7 at the default 1, 0.2 at 3.
- Engines that weigh parts get ``weighted`` (negative parts and ``--no`` included) and an empty
  negative_prompt; the others get the flattened text and the joined negatives.
- ``--draft`` halves the steps (at least 1) and renders at 0.75 of the native side
  (:func:`draft_native`), rounded to the engine's multiple.
- ``--style raw`` lowers the guidance (×0.75, not below 1) on engines that honour it.
- ``--chaos``, ``--weird``, ``--stop``, ``--style`` and ``--draft`` travel in ``extra`` for
  engines that can use them; see :func:`tile_seeds` and :func:`chaos_guidance` for chaos.
- An engine names in ``Capabilities.honours`` which of ``--stop``, ``--weird``, ``--style raw``,
  ``--sref`` and ``--oref`` it carries out: :func:`ignored_parameters` lists the others a prompt
  uses (the job's result records them), and :func:`check_references` refuses ``--sref`` and
  ``--oref`` where they would do nothing.

An engine states its defaults as ``default_steps`` / ``default_guidance`` on its Capabilities;
without them, steps and guidance stay None (the engine decides) and ``extra`` carries
``quality`` and ``stylize`` so the engine can scale its own defaults.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping

from imagine.engines.base import Capabilities, GenerateRequest
from imagine.prompt.errors import PromptError
from imagine.prompt.model import ImaginePrompt
from imagine.prompt.params import canonical_version

SEED_SPACE = 2**32
DRAFT_SCALE = 0.75
"""A draft's side, relative to the engine's native one (0.56 of the pixels)."""
RAW_GUIDANCE = 0.75
"""``--style raw``: the guidance it multiplies (looser, less "processed" pictures)."""


def resolve_size(aspect: tuple[int, int], native: int, multiple: int) -> tuple[int, int]:
    """Width and height with ``width * height ≈ native²`` and ``width / height ≈ aspect``,
    each a multiple of ``multiple`` and at least ``multiple``."""
    ratio_w, ratio_h = aspect
    scale = native / math.sqrt(ratio_w * ratio_h)
    width = max(multiple, round(ratio_w * scale / multiple) * multiple)
    height = max(multiple, round(ratio_h * scale / multiple) * multiple)
    return width, height


def draft_native(native: int, multiple: int) -> int:
    """The side of a draft's pixel budget: :data:`DRAFT_SCALE` of ``native``, on the multiple."""
    return max(multiple, round(native * DRAFT_SCALE / multiple) * multiple)


def render_size(
    prompt: ImaginePrompt, capabilities: Capabilities, aspect: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Width and height of a render of ``prompt`` at ``aspect`` (default: its ``--ar``); a
    draft's are smaller."""
    native = capabilities.native_size
    if prompt.draft:
        native = draft_native(native, capabilities.multiple)
    return resolve_size(aspect or prompt.aspect, native, capabilities.multiple)


def stop_steps(steps: int, stop: int) -> int:
    """How many of ``steps`` denoising steps ``--stop`` (10–100 %) runs: at least one."""
    return max(1, min(steps, math.ceil(steps * stop / 100 - 1e-9)))


def image_strength(prompt: ImaginePrompt) -> float:
    """img2img strength (0 keeps the image, 1 ignores it) for ``--iw``: higher iw keeps more."""
    return round(min(0.95, max(0.2, 0.95 - 0.25 * prompt.image_weight)), 4)


def _mixed_seed(base: int, index: int, chaos: int) -> int:
    digest = hashlib.blake2b(f"{base}:{index}:{chaos}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def tile_seeds(
    prompt: ImaginePrompt, count: int = 4, rng: random.Random | None = None
) -> tuple[int, ...]:
    """One seed per tile. The first is ``--seed`` (or a random one to report), so reporting it
    and sending it back with the same ``--chaos`` reproduces the whole grid.

    With chaos 0 the seeds are s, s+1, s+2, s+3 (mod 2³²), as Midjourney users expect. With
    chaos above 0 the later seeds are hashed from (s, tile, chaos): a different chaos gives a
    different grid, the same chaos the same one. In diffusion, neighbouring seeds already give
    unrelated noise, so seeds alone cannot make tiles *more* different; what chaos adds is a
    per-tile guidance jitter (:func:`chaos_guidance`) that engines apply through ``extra``.
    """
    base = prompt.seed
    if base is None:
        base = (rng or random.SystemRandom()).randrange(SEED_SPACE)
    if prompt.chaos == 0:
        return tuple((base + index) % SEED_SPACE for index in range(count))
    return (base, *(_mixed_seed(base, index, prompt.chaos) for index in range(1, count)))


def chaos_guidance(guidance: float, chaos: int, seed: int) -> float:
    """``guidance`` jittered for one tile: up to ±50% at chaos 100, decided by the tile's seed
    (so a tile renders the same every time). Engines that set guidance per tile call this."""
    if chaos == 0:
        return guidance
    unit = _mixed_seed(seed, -1, chaos) / (SEED_SPACE - 1) * 2 - 1  # in [-1, 1]
    return round(guidance * (1 + 0.5 * chaos / 100 * unit), 4)


def stylize_factor(stylize: int) -> float:
    return 1 - 0.25 * math.log10((stylize + 10) / 110)


def _default(capabilities: Capabilities, name: str) -> float | None:
    # Capabilities may not declare engine defaults yet (see the module docstring); read them
    # when present so an engine opts in by adding the field.
    value = getattr(capabilities, name, None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def choose_model(
    prompt: ImaginePrompt, models: Mapping[str, str], default_model: str | None
) -> str | None:
    """The model for ``--v``/``--niji`` through ``models`` (IMAGINE_MODELS), else the default."""
    if prompt.version is None:
        return default_model
    mapped = {_model_key(key): value for key, value in models.items()}
    model = mapped.get(_model_key(prompt.version))
    if model is not None:
        return model
    niji = prompt.version.startswith("niji")
    parameter = "--niji" if niji else "--v"
    asked = f"--{prompt.version}" if niji else f"--v {prompt.version}"
    if mapped:
        available = ", ".join(
            f"--{key}" if key.startswith("niji") else f"--v {key}" for key in sorted(mapped)
        )
        hint = f"this server has {available}"
    else:
        hint = (
            f"this server has no model versions configured (IMAGINE_MODELS); leave out {parameter}"
        )
    raise PromptError(f"Invalid parameter: {asked} is not available: {hint}.", parameter=parameter)


def _model_key(key: str) -> str:
    words = key.lower().split()
    if words and words[0] in ("v", "--v", "version"):
        words = words[1:]
    if words and words[-1] != "niji":
        words[-1] = canonical_version(words[-1]) or words[-1]
    return " ".join(words)


def plan_generation(
    prompt: ImaginePrompt,
    capabilities: Capabilities,
    *,
    seeds: tuple[int, ...],
    models: Mapping[str, str],
    default_model: str | None,
) -> GenerateRequest:
    """The engine request for ``prompt`` (the service adds the init image for image prompts)."""
    width, height = render_size(prompt, capabilities)
    steps: int | None = None
    default_steps = _default(capabilities, "default_steps")
    if (prompt.quality != 1.0 or prompt.draft) and default_steps is not None:
        steps = max(1, round(default_steps * prompt.quality))
        if prompt.draft:
            steps = max(1, steps // 2)
    guidance: float | None = None
    default_guidance = _default(capabilities, "default_guidance")
    raw = prompt.style == "raw" and "--style raw" in capabilities.honours
    if (prompt.stylize != 100 or raw) and default_guidance is not None:
        guidance = default_guidance * stylize_factor(prompt.stylize)
        if raw:
            guidance = max(min(1.0, default_guidance), guidance * RAW_GUIDANCE)
        guidance = round(guidance, 4)
    # An engine that weighs parts finds the negatives (--no included) in `weighted`; repeating
    # them in negative_prompt would count them twice.
    weighted = prompt.parts if capabilities.weighted_prompts else ()
    return GenerateRequest(
        prompt=prompt.text,
        width=width,
        height=height,
        seeds=seeds,
        negative_prompt="" if weighted else prompt.negative_prompt,
        weighted=weighted,
        steps=steps,
        guidance=guidance,
        model=choose_model(prompt, models, default_model),
        strength=image_strength(prompt),
        tile=prompt.tile,
        extra={
            "chaos": prompt.chaos,
            "weird": prompt.weird,
            "stop": prompt.stop,
            "style": prompt.style,
            "quality": prompt.quality,
            "stylize": prompt.stylize,
            **({"draft": True} if prompt.draft else {}),
        },
    )


def ignored_parameters(
    prompt: ImaginePrompt, capabilities: Capabilities, request: GenerateRequest
) -> list[str]:
    """The parameters of ``prompt`` the engine does not carry out for ``request``, as typed
    (``"--weird 250"``): the job's result records them."""
    honours = capabilities.honours
    ignored = []
    if prompt.stop != 100:
        steps = request.steps or _default(capabilities, "default_steps")
        # a one-step model has nothing to stop early
        useless = steps is not None and stop_steps(int(steps), prompt.stop) >= steps
        if "--stop" not in honours or useless:
            ignored.append(f"--stop {prompt.stop}")
    if prompt.weird != 0 and "--weird" not in honours:
        ignored.append(f"--weird {prompt.weird}")
    if prompt.style is not None and f"--style {prompt.style}" not in honours:
        ignored.append(f"--style {prompt.style}")
    return ignored


def check_references(prompt: ImaginePrompt, capabilities: Capabilities) -> None:
    """PromptError (INVALID_PARAMETER) for ``--sref``/``--oref`` on an engine that cannot use
    them: refused when asked, rather than run without them."""
    wanted = (
        ("--sref", bool(prompt.style_refs), "style references"),
        ("--oref", prompt.omni_ref is not None, "omni references"),
    )
    for parameter, used, what in wanted:
        if used and parameter not in capabilities.honours:
            raise PromptError(
                f"The {capabilities.name} engine cannot use {what} ({parameter}); remove "
                f"{parameter}, or ask the server's operator for the diffusers engine with an "
                "IP-Adapter (IMAGINE_IP_ADAPTER).",
                parameter=parameter,
            )
