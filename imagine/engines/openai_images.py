"""OpenAI Images (gpt-image-1, dall-e-2, dall-e-3) as an engine.

txt2img is ``/images/generations`` with ``n`` tiles at the supported size nearest the requested
aspect; img2img and outpaint are ``/images/edits`` (outpaint sends a mask whose transparent pixels
are the area to paint). Results are cropped and resized to exactly the size asked for. OpenAI has
no seeds and no progress: the service is told so through the capabilities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Self

from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import imagecodec
from imagine.engines.base import (
    Capabilities,
    EngineError,
    EngineUnavailable,
    GenerateRequest,
    ProgressCallback,
)
from imagine.engines.remote import FilePart, Hints, RemoteService, RetryPolicy, Timeouts
from imagine.engines.remote_jobs import ProgressReporter, await_with_ticks
from imagine.engines.remote_settings import parse_url
from imagine.settings import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_VISION_MODEL = "gpt-4o-mini"
"""The chat model /describe asks (OPENAI_VISION_MODEL; empty: no /describe)."""
DEFAULT_MODEL = "gpt-image-1"
MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


@dataclass(frozen=True)
class ModelSpec:
    sizes: tuple[tuple[int, int], ...]
    max_n: int
    """Images per call (dall-e-3 makes one)."""
    wants_response_format: bool
    """dall-e-* return URLs unless asked for b64_json; gpt-image-* always return base64."""


GPT_IMAGE = ModelSpec(((1024, 1024), (1536, 1024), (1024, 1536)), 10, False)
SPECS = {
    "dall-e-2": ModelSpec(((256, 256), (512, 512), (1024, 1024)), 10, True),
    "dall-e-3": ModelSpec(((1024, 1024), (1792, 1024), (1024, 1792)), 1, True),
}


def can_edit(model: str) -> bool:
    """Whether ``model`` can vary and outpaint here (``/images/edits``): gpt-image models only.

    dall-e-3 has no edits; dall-e-2's edits need a square image whose transparency is the mask,
    so a variation (no mask) and any non-square zoom or pan would be refused.
    """
    return model.startswith("gpt-image")


@dataclass(frozen=True)
class OpenAICapabilities(Capabilities):
    """The configured model's abilities; :meth:`for_model` gives another model's."""

    def for_model(self, model: str | None) -> Capabilities:
        if model is None:
            return self
        edits = can_edit(model)
        return dataclasses.replace(self, img2img=edits, outpaint=edits)


def nearest_size(sizes: tuple[tuple[int, int], ...], width: int, height: int) -> tuple[int, int]:
    """The supported size closest in aspect ratio, then in pixel count."""
    return min(
        sizes,
        key=lambda s: (
            round(abs(math.log(s[0] / s[1]) - math.log(width / height)), 6),
            abs(s[0] * s[1] - width * height),
        ),
    )


class OpenAIEngine:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        poll_interval: float = 1.0,
        vision_model: str = DEFAULT_VISION_MODEL,
    ) -> None:
        self.model = model
        self.vision_model = vision_model
        self.poll_interval = poll_interval
        self.service = RemoteService(
            "OpenAI",
            base_url,
            hints=Hints(url="OPENAI_BASE_URL", auth="OPENAI_API_KEY"),
            headers={"Authorization": f"Bearer {api_key}"},
            retry=retry,
            timeouts=timeouts,
            explain=self._explain,
        )
        self._capabilities = OpenAICapabilities(
            name="openai",
            native_size=1024,
            multiple=8,
            img2img=can_edit(model),
            outpaint=can_edit(model),
            upscale=False,
            seeds=False,
            describe=bool(vision_model),
            notes=(
                "OpenAI does not support seeds: --seed is ignored.",
                "Upscale enlarges with a plain resize on this engine (no upscaling model).",
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        env = settings.environ
        api_key = env.get("OPENAI_API_KEY", "").strip()
        if not api_key:
            raise EngineUnavailable("Set OPENAI_API_KEY to use the openai engine.")
        return cls(
            api_key,
            base_url=parse_url(
                env.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL, "OPENAI_BASE_URL"
            ),
            model=env.get("OPENAI_IMAGE_MODEL", "").strip() or settings.model or DEFAULT_MODEL,
            timeouts=Timeouts(render=settings.job_timeout),
            vision_model=env.get("OPENAI_VISION_MODEL", DEFAULT_VISION_MODEL).strip(),
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        return None  # configuration was checked in from_settings; no paid call at start-up

    async def close(self) -> None:
        await self.service.close()

    def _explain(self, status: int, payload: Any) -> EngineError | None:
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return None
        code, message = error.get("code"), " ".join(str(error.get("message", "")).split())[:300]
        if code in MODERATION_CODES:
            return EngineError(
                ResultCode.BANNED_PROMPT, f"OpenAI's safety system refused this request: {message}"
            )
        if code in ("insufficient_quota", "billing_hard_limit_reached"):
            return EngineError(
                ResultCode.FAILED_TO_REQUEST,
                f"OpenAI refused for lack of quota ({message}); check the billing of the "
                "account behind OPENAI_API_KEY.",
            )
        return None

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        reporter = ProgressReporter(progress)
        reporter(0.0)
        model = request.model or self.model
        if request.init_image is not None and not can_edit(model):
            # A job on a --v model can still reach here through the API (buttons are not offered).
            raise EngineError(
                ResultCode.INVALID_PARAMETER,
                f"OpenAI's {model} cannot edit images, so it cannot start from an image, vary or "
                "zoom; use a --v version that runs a gpt-image model for that.",
            )
        spec = SPECS.get(model, GPT_IMAGE)
        width, height = nearest_size(spec.sizes, request.width, request.height)
        # OpenAI refuses an empty prompt; an image-only prompt (a /blend) still says what to do.
        prompt = request.prompt or "One new picture that blends the given image(s)."
        if request.negative_prompt:  # OpenAI has no negative prompt; say it in words
            prompt = f"{prompt}\nAvoid: {request.negative_prompt}"
        common: dict[str, Any] = {"model": model, "prompt": prompt, "size": f"{width}x{height}"}
        if spec.wants_response_format:
            common["response_format"] = "b64_json"
        files: dict[str, FilePart] = {}
        if request.init_image is not None:
            files = await asyncio.to_thread(_edit_files, request)
        encoded: list[str] = []
        while len(encoded) < len(request.seeds):
            n = min(spec.max_n, len(request.seeds) - len(encoded))
            try:
                encoded += await await_with_ticks(
                    self._call(common | {"n": n}, files),
                    interval=self.poll_interval,
                    tick=reporter.async_tick,
                    stop=_nothing_to_stop,
                )
            except EngineError as exc:
                if files:
                    raise _blame_image(exc) from None
                raise
        try:
            images = await asyncio.to_thread(imagecodec.decode_base64_many, encoded)
        except imagecodec.BadImage as exc:
            raise self.service.malformed(f"an image cannot be read ({exc})") from None
        reporter.done()
        return await asyncio.to_thread(
            lambda: [
                imagecodec.fit(i.convert("RGB"), request.width, request.height) for i in images
            ]
        )

    async def _call(self, fields: dict[str, Any], files: dict[str, FilePart]) -> list[str]:
        if files:
            form: dict[str, str | FilePart] = {k: str(v) for k, v in fields.items()}
            answer = await self.service.json(
                "POST", "/images/edits", form=form | files, long=True, submit=True
            )
        else:
            answer = await self.service.json(
                "POST", "/images/generations", json_body=fields, long=True, submit=True
            )
        data = answer.get("data") if isinstance(answer, dict) else None
        encoded = [item.get("b64_json") for item in data or [] if isinstance(item, dict)]
        if not data or len(encoded) != fields["n"] or not all(isinstance(e, str) for e in encoded):
            raise self.service.malformed(f"the answer does not hold {fields['n']} b64_json images")
        return [str(e) for e in encoded]

    async def describe(
        self, image: Image.Image, count: int, progress: ProgressCallback
    ) -> list[str]:
        """/describe through a vision model (OPENAI_VISION_MODEL) on chat completions."""
        progress(0.0, None)
        encoded = await asyncio.to_thread(imagecodec.png_base64, image)
        body = {
            "model": self.vision_model,
            "max_tokens": 120 * count,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": DESCRIBE_ASK.format(count=count)},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
            ]}],
        }  # fmt: skip
        answer = await self.service.json(
            "POST", "/chat/completions", json_body=body, long=True, submit=True
        )
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self.service.malformed("the chat answer has no message") from None
        prompts = prompts_in(text if isinstance(text, str) else "", count)
        if len(prompts) < count:
            raise self.service.malformed(
                f"the vision model wrote {len(prompts)} of {count} prompts"
            )
        progress(1.0, None)
        return prompts

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        progress(0.0, None)
        result = await asyncio.to_thread(imagecodec.enlarge, image, factor)
        progress(1.0, None)
        return result


DESCRIBE_ASK = (
    "Write {count} different prompts for an image generator (Midjourney style) that could have "
    "made this image: the subject, the medium, the style, the light and the composition, comma-"
    "separated. One prompt per line, no numbers, no quotes, no parameters, nothing else."
)


def prompts_in(text: str, count: int) -> list[str]:
    """The prompts of a chat answer, one per line, without the numbering or quotes a model may
    add anyway."""
    found = []
    for line in text.splitlines():
        cleaned = re.sub(r"^\s*(?:[-*•]|\d+[.):]|prompt\s*\d*\s*:)\s*", "", line, flags=re.I)
        cleaned = cleaned.strip().strip('"“”').strip()
        if cleaned and cleaned not in found:
            found.append(cleaned)
    return found[:count]


def _edit_files(request: GenerateRequest) -> dict[str, FilePart]:
    assert request.init_image is not None
    files = {
        "image": FilePart("image.png", imagecodec.encode_png(request.init_image.convert("RGB")))
    }
    if request.mask is not None:
        hole = imagecodec.with_alpha_hole(request.init_image, request.mask)
        files["mask"] = FilePart("mask.png", imagecodec.encode_png(hole))
    return files


def _blame_image(exc: EngineError) -> EngineError:
    """A refused edit whose reason does not name the prompt was refused for its image."""
    if exc.code is ResultCode.BANNED_PROMPT and "prompt" not in exc.message.lower():
        return EngineError(ResultCode.IMAGE_BLOCKED, exc.message)
    return exc


async def _nothing_to_stop() -> None:
    """OpenAI has no cancel: dropping the connection is all we can do."""
