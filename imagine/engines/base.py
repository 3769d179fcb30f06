"""The one protocol every image engine implements.

An engine renders; the service decides what to render. Every button (vary, zoom, pan, upscale)
is expressed by the service as a :class:`GenerateRequest` (txt2img, img2img with an init image
and a strength, or outpaint with an init image and a mask) or an :meth:`Engine.upscale` call.

Threading contract: ``generate`` and ``upscale`` are coroutines and must never block the event
loop. Local engines run their compute in a worker thread; remote engines await HTTP. The
``progress`` callback may be called from any thread. It raises :class:`EngineCancelled` once the
job has been cancelled (timeout or shutdown), so a step callback that calls it stops the engine.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

from imagine.codes import ResultCode

ProgressCallback = Callable[[float, Image.Image | None], None]
"""progress(fraction in [0, 1], optional preview image). Thread-safe. Raises EngineCancelled."""

OUTPAINT_STRENGTH = 0.85
"""How much an outpaint repaints on a model that is not an inpainting one. The service sends 1.0
(fill the border); at 1.0 such a model starts the border from pure noise and ignores the picture,
so engines start it from the pre-filled border (a stretch of the image) at this strength instead."""


HONOURABLE = ("--stop", "--weird", "--style raw", "--sref", "--oref")
"""Parameters an engine may or may not carry out; it names those it does in ``honours``."""


class EngineError(Exception):
    """A failure the engine can name: a result code and a sentence for the logs and the user."""

    def __init__(self, code: ResultCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's first line (its type's name when it says nothing), cut to ``limit``, for
    a sentence that names why a model could not be had."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


class EngineUnavailable(Exception):
    """The engine cannot start (missing extra, missing model, unreachable server).

    The message is one sentence telling the operator what to do; it is printed at start-up.
    """


class EngineCancelled(Exception):
    """Raised by the progress callback when the job was cancelled; engines let it propagate."""


@dataclass(frozen=True)
class Capabilities:
    name: str
    is_placeholder: bool = False
    native_size: int = 512
    """Side of the square pixel budget the model was trained at (512 SD-Turbo, 1024 SDXL)."""
    multiple: int = 8
    """Width and height are rounded to a multiple of this."""
    img2img: bool = True
    outpaint: bool = True
    upscale: bool = True
    """True when ``upscale`` is a real super-resolution model (else the service may say so)."""
    upscaler: str = ""
    """What upscales, in words, for /v2/info (e.g. 'Real-ESRGAN (realesr-animevideov3, cpu)')."""
    seeds: bool = True
    """True when the same seed gives the same image."""
    weighted_prompts: bool = False
    """True when the engine honours ``GenerateRequest.weighted`` itself."""
    max_batch: int = 4
    parallel: int | None = None
    """How many jobs the engine can render at once; None: as many as IMAGINE_MAX_CONCURRENT.
    The service runs no more workers than this, so no job's timeout runs while it waits its turn."""
    default_steps: int | None = None
    """Steps the engine uses when GenerateRequest.steps is None; --quality scales it."""
    default_guidance: float | None = None
    """Guidance used when GenerateRequest.guidance is None; --stylize scales it."""
    notes: tuple[str, ...] = ()
    """Sentences shown to users about this engine's limits (e.g. 'seeds are not supported')."""
    known_before_start: bool = True
    """False while these are guesses until the model is loaded (the diffusers engine): an API
    instance that loads no model then takes what its workers published."""
    describe: bool = False
    """True when the engine implements :class:`Describer` (Midjourney's /describe)."""
    inpaint: bool = True
    """True when a mask the user painted can be repainted (Vary (Region)); needs ``outpaint``
    too: both are a generation with an init image and a mask."""
    tokenizer: str = ""
    """What :class:`PromptAnalyser` counts tokens with, in words (e.g. 'CLIP ViT-L/14, the
    model's own'); "" when the engine has none and /shorten estimates."""

    honours: tuple[str, ...] = ()
    """Which of :data:`HONOURABLE` the engine carries out; any other it is given is recorded in
    the job's result as ignored (``--sref``/``--oref``: refused), never silently dropped."""

    def for_model(self, model: str | None) -> Capabilities:
        """What the engine can do for a job on ``model`` (None: its configured model).

        A job's buttons follow its own model (``--v`` through IMAGINE_MODELS). An engine whose
        models differ in what they can do returns a subclass that overrides this.
        """
        return self


def capabilities_json(capabilities: Capabilities) -> str:
    """What an engine can do, as workers publish it for API instances that load no model."""
    return json.dumps(
        {f.name: getattr(capabilities, f.name) for f in dataclasses.fields(Capabilities)}
    )


def capabilities_from_json(text: str) -> Capabilities | None:
    """The capabilities a worker published, or None if the text is not such a thing."""
    try:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(Capabilities)}
        values = {k: v for k, v in data.items() if k in known}
        values["notes"] = tuple(values.get("notes", ()))
        values["honours"] = tuple(values.get("honours", ()))
        return Capabilities(**values)
    except (ValueError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    """The flattened positive prompt (multi-prompt parts joined)."""
    width: int
    height: int
    seeds: tuple[int, ...]
    """One seed per tile; the batch has ``len(seeds)`` tiles. Tile k equals a single run with seeds[k]."""
    negative_prompt: str = ""
    weighted: tuple[tuple[str, float], ...] = ()
    """Multi-prompt parts with normalised weights (negative weights included), for engines that can."""
    steps: int | None = None
    """None: the engine's default for its model family."""
    guidance: float | None = None
    """None: the engine's default for its model family."""
    model: str | None = None
    """None: the engine's configured model."""
    init_image: Image.Image | None = None
    """img2img / outpaint source, already at width x height."""
    strength: float = 0.7
    """img2img: how much to change the init image (0 keeps it, 1 ignores it)."""
    mask: Image.Image | None = None
    """Outpaint: mode 'L' at width x height; white (255) = area to fill, black = keep."""
    tile: bool = False
    """Seamless tiling."""
    extra: Mapping[str, object] = field(default_factory=dict)
    """Engine-specific hints from the prompt language (chaos, weird, stop, style, draft)."""
    style_images: tuple[Image.Image, ...] = ()
    """``--sref``: images whose style the render takes (engines that honour "--sref")."""
    style_weight: int = 100
    """``--sw`` 0–1000 (0: the style images have no effect)."""
    omni_image: Image.Image | None = None
    """``--oref``: an image whose subject the render puts in (engines that honour "--oref")."""
    omni_weight: int = 100
    """``--ow`` 1–1000."""

    @property
    def mode(self) -> str:
        if self.init_image is None:
            return "txt2img"
        return "outpaint" if self.mask is not None else "img2img"


@runtime_checkable
class Engine(Protocol):
    @property
    def capabilities(self) -> Capabilities: ...

    async def start(self) -> None:
        """Load the model / check the server. Raise EngineUnavailable with a sentence."""

    async def close(self) -> None:
        """Release resources. Called once at shutdown."""

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        """Render ``len(request.seeds)`` images of ``request.width`` x ``request.height``.

        Raise EngineError for a failure with a known result code; any other exception
        becomes FAILED_TO_PROCESS_YOUR_COMMAND.
        """

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        """Return ``image`` enlarged ``factor`` times (2 or 4)."""


@dataclass(frozen=True)
class WordWeight:
    """One word of a prompt, as the model reads it."""

    word: str
    tokens: int
    """How many of the text encoder's tokens it takes."""
    weight: float
    """How much it moves the model, 0 (nothing) to 1 (the word that matters most)."""
    cut: bool = False
    """Past the text encoder's token limit: the model never reads it."""


@dataclass(frozen=True)
class PromptAnalysis:
    words: tuple[WordWeight, ...]
    limit: int
    """Tokens the text encoder reads (CLIP: 75 between its start and end tokens)."""
    tokenizer: str
    """What counted, in words."""


@runtime_checkable
class Describer(Protocol):
    """An engine that can read prompts from an image (Midjourney's /describe)."""

    async def describe(
        self, image: Image.Image, count: int, progress: ProgressCallback
    ) -> list[str]:
        """``count`` different prompts that could have made ``image`` (no ``--ar``: the service
        appends the image's aspect ratio). Raise EngineError with a sentence on failure."""


@runtime_checkable
class PromptAnalyser(Protocol):
    """An engine whose own tokenizer and text encoder can say which words of a prompt count."""

    async def analyse_prompt(self, text: str) -> PromptAnalysis: ...


def no_progress(fraction: float, preview: Image.Image | None = None) -> None:
    """A progress callback that ignores everything (scripts, tests)."""
