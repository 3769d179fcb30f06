"""AUTOMATIC1111 / Forge WebUI (started with ``--api``) as an engine.

txt2img and img2img (outpaint = img2img with a mask) render a batch in one call; progress
comes from polling ``/sdapi/v1/progress`` (its ``current_image`` is the preview); upscale runs
a real super-resolution model through ``/sdapi/v1/extra-single-image``; cancel posts
``/sdapi/v1/interrupt``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Self

from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import imagecodec
from imagine.engines.base import (
    OUTPAINT_STRENGTH,
    Capabilities,
    EngineError,
    EngineUnavailable,
    GenerateRequest,
    ProgressCallback,
)
from imagine.engines.captions import prompt_variants
from imagine.engines.remote import Hints, RemoteService, RetryPolicy, Timeouts
from imagine.engines.remote_jobs import (
    ProgressReporter,
    await_with_ticks,
    seed_runs,
    stop_quietly,
)
from imagine.engines.remote_settings import basic_auth, env_int, parse_url
from imagine.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_STEPS, DEFAULT_GUIDANCE = 20, 7.0
DEFAULT_UPSCALER = "R-ESRGAN 4x+"
"""A1111's name for RealESRGAN_x4plus, which every install ships."""


class A1111Engine:
    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        model: str = "",
        upscaler: str = DEFAULT_UPSCALER,
        native_size: int = 1024,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.model = model
        self.upscaler = upscaler
        self.poll_interval = poll_interval
        self.service = RemoteService(
            "AUTOMATIC1111",
            url,
            hints=Hints(url="A1111_URL (and that the WebUI runs with --api)", auth="A1111_AUTH"),
            headers=basic_auth(*auth) if auth else None,
            retry=retry,
            timeouts=timeouts,
        )
        # The API's own defaults are 50 steps (not the UI's 20), so we always send ours.
        self._capabilities = Capabilities(
            name="a1111",
            native_size=native_size,
            multiple=8,
            default_steps=DEFAULT_STEPS,
            default_guidance=DEFAULT_GUIDANCE,
            describe=True,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        env = settings.environ
        raw_url = env.get("A1111_URL", "").strip()
        if not raw_url:
            raise EngineUnavailable(
                "Set A1111_URL to your AUTOMATIC1111 or Forge WebUI started with --api "
                "(e.g. http://127.0.0.1:7860)."
            )
        auth = None
        if raw_auth := env.get("A1111_AUTH", "").strip():
            user, sep, password = raw_auth.partition(":")
            if not sep or not user:
                raise EngineUnavailable(
                    "A1111_AUTH must look like user:password (as in --api-auth)."
                )
            auth = (user, password)
        return cls(
            parse_url(raw_url, "A1111_URL"),
            auth=auth,
            model=settings.model,
            upscaler=env.get("A1111_UPSCALER", "").strip() or DEFAULT_UPSCALER,
            native_size=env_int(env, "A1111_NATIVE_SIZE", 1024),
            timeouts=Timeouts(render=settings.job_timeout),
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        try:
            await self.service.json(
                "GET", "/sdapi/v1/progress", params={"skip_current_image": "true"}
            )
        except EngineError as exc:
            raise EngineUnavailable(exc.message) from None
        log.info("a1111: connected to %s", self.service.base_url)

    async def close(self) -> None:
        await self.service.close()

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        runs = seed_runs(request.seeds)
        reporter = ProgressReporter(progress, len(runs))
        reporter(0.0)
        init_b64 = mask_b64 = None
        if request.init_image is not None:
            init_b64 = await asyncio.to_thread(imagecodec.png_base64, request.init_image)
        if request.mask is not None:
            mask_b64 = await asyncio.to_thread(imagecodec.png_base64, request.mask.convert("L"))
        images: list[Image.Image] = []
        for index, run in enumerate(runs):
            reporter.part(index)
            payload = self._payload(request, run, init_b64, mask_b64)
            path = "/sdapi/v1/txt2img" if init_b64 is None else "/sdapi/v1/img2img"
            try:
                answer = await await_with_ticks(
                    self.service.json("POST", path, json_body=payload, long=True, submit=True),
                    interval=self.poll_interval,
                    tick=lambda: self._poll_progress(reporter),
                    stop=self._interrupt,
                )
            except EngineError as exc:
                if exc.code is ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND:
                    await stop_quietly(self._interrupt)  # the WebUI is still rendering it
                raise
            images += await self._tiles(answer, run, request)
        reporter.done()
        return images

    def _payload(
        self, request: GenerateRequest, run: tuple[int, ...], init: str | None, mask: str | None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": run[0],
            "batch_size": len(run),
            "n_iter": 1,
            "width": request.width,
            "height": request.height,
            "steps": request.steps or DEFAULT_STEPS,
            "cfg_scale": request.guidance if request.guidance is not None else DEFAULT_GUIDANCE,
            "send_images": True,
            "save_images": False,
        }
        if request.tile:
            payload["tiling"] = True
        if model := request.model or self.model:
            payload["override_settings"] = {"sd_model_checkpoint": model}
        if init is not None:
            payload |= {
                "init_images": [init],
                "denoising_strength": request.strength,
                "resize_mode": 0,
            }
        if mask is not None:
            # white = repaint; "original" fill keeps the service's pre-filled border as a start,
            # and below 1.0 the border grows from it instead of from noise (any checkpoint)
            payload |= {
                "denoising_strength": min(request.strength, OUTPAINT_STRENGTH),
                "mask": mask,
                "mask_blur": 4,
                "inpainting_fill": 1,
                "inpaint_full_res": False,
                "inpainting_mask_invert": 0,
            }
        return payload

    async def _tiles(
        self, answer: Any, run: tuple[int, ...], request: GenerateRequest
    ) -> list[Image.Image]:
        encoded = answer.get("images") if isinstance(answer, dict) else None
        if not isinstance(encoded, list) or not all(isinstance(item, str) for item in encoded):
            raise self.service.malformed("the answer has no list of images")
        info = _info(answer.get("info"))
        # A grid (opts.return_grid) or extension outputs may surround the tiles.
        first = info.get("index_of_first_image")
        if not isinstance(first, int):
            first = max(0, len(encoded) - len(run))
        encoded = encoded[first : first + len(run)]
        if len(encoded) != len(run):
            raise self.service.malformed(f"it sent {len(encoded)} images for a batch of {len(run)}")
        if info.get("all_seeds") not in (None, list(run)):
            log.warning(
                "a1111: asked for seeds %s, the WebUI used %s", list(run), info["all_seeds"]
            )
        try:
            tiles = await asyncio.to_thread(imagecodec.decode_base64_many, encoded)
        except imagecodec.BadImage as exc:
            raise self.service.malformed(f"an image cannot be read ({exc})") from None
        return await asyncio.to_thread(
            lambda: imagecodec.fit_many(
                [t.convert("RGB") for t in tiles], request.width, request.height
            )
        )

    async def _poll_progress(self, reporter: ProgressReporter) -> None:
        try:
            state = await self.service.json(
                "GET", "/sdapi/v1/progress", params={"skip_current_image": "false"}, retry=False
            )
            fraction = float(state.get("progress") or 0.0)
            preview = None
            if isinstance(current := state.get("current_image"), str) and current:
                preview = await asyncio.to_thread(
                    lambda: imagecodec.decode_image(imagecodec.decode_base64(current))
                )
        except (EngineError, imagecodec.BadImage, AttributeError, TypeError, ValueError):
            reporter.tick()  # a missed poll only costs a progress update
            return
        reporter(fraction, preview)

    async def _interrupt(self) -> None:
        await self.service.request("POST", "/sdapi/v1/interrupt", retry=False)

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        progress(0.0, None)
        payload = {
            "image": await asyncio.to_thread(imagecodec.png_base64, image),
            "resize_mode": 0,
            "upscaling_resize": factor,
            "upscaler_1": self.upscaler,
        }
        answer = await self.service.json(
            "POST", "/sdapi/v1/extra-single-image", json_body=payload, long=True, submit=True
        )
        encoded = answer.get("image") if isinstance(answer, dict) else None
        if not isinstance(encoded, str) or not encoded:
            raise self.service.malformed("the upscale answer has no image")
        try:
            result = await asyncio.to_thread(
                lambda: imagecodec.decode_image(imagecodec.decode_base64(encoded))
            )
        except imagecodec.BadImage as exc:
            raise self.service.malformed(f"the upscaled image cannot be read ({exc})") from None
        progress(1.0, None)
        size = (image.width * factor, image.height * factor)
        return await asyncio.to_thread(lambda: imagecodec.fit(result.convert("RGB"), *size))

    async def describe(
        self, image: Image.Image, count: int, progress: ProgressCallback
    ) -> list[str]:
        """/describe through the WebUI's interrogators: CLIP's caption, and DeepDanbooru's tags
        where the WebUI has them (its absence costs the tags only). Four prompts from those."""
        progress(0.0, None)
        encoded = await asyncio.to_thread(imagecodec.png_base64, image)
        answer = await self.service.json(
            "POST", "/sdapi/v1/interrogate", json_body={"image": encoded, "model": "clip"},
            long=True,
        )  # fmt: skip
        caption = answer.get("caption") if isinstance(answer, dict) else None
        if not isinstance(caption, str) or not caption.strip():
            raise self.service.malformed("the interrogate answer has no caption")
        progress(0.5, None)
        tags: list[str] = []
        try:
            booru = await self.service.json(
                "POST", "/sdapi/v1/interrogate",
                json_body={"image": encoded, "model": "deepdanbooru"}, long=True, retry=False,
            )  # fmt: skip
            raw = booru.get("caption") if isinstance(booru, dict) else None
            if isinstance(raw, str):
                tags = [t.strip().replace("_", " ") for t in raw.split(",") if t.strip()]
        except EngineError as exc:  # a WebUI without DeepDanbooru: the caption alone
            log.info("AUTOMATIC1111: no DeepDanbooru tags (%s)", exc.message)
        progress(1.0, None)
        return prompt_variants(caption, tags, count)


def _info(raw: Any) -> dict[str, Any]:
    """A1111's ``info`` is a JSON document inside a string."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
