"""AI Horde (free, crowd-sourced GPUs) as an engine.

A batch is submitted to ``/v2/generate/async`` (n tiles, seed, seed_variation 1), watched through
the light ``/v2/generate/check/{id}`` no faster than its one-second cache, and collected once
from the rate-limited ``/v2/generate/status/{id}``. Queue position and wait time become progress.
A cancel, a timeout, a faulted or an impossible request deletes the request on the Horde.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Self

from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import imagecodec
from imagine.engines.base import (
    Capabilities,
    EngineCancelled,
    EngineError,
    GenerateRequest,
    ProgressCallback,
)
from imagine.engines.captions import interrogated, prompt_variants
from imagine.engines.remote import Hints, RemoteService, RetryPolicy, Timeouts
from imagine.engines.remote_jobs import ProgressReporter, seed_runs, stop_quietly
from imagine.engines.remote_settings import env_int, parse_url
from imagine.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_URL = "https://aihorde.net/api"
ANONYMOUS_KEY = "0000000000"
CLIENT_AGENT = "imagine-bot:0.1.0:self-hosted"
POLL_INTERVAL = 2.0
"""The Horde caches check answers for a second: polling faster only costs it load."""


class HordeEngine:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str = ANONYMOUS_KEY,
        models: tuple[str, ...] = (),
        native_size: int = 512,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self.models = models
        self.poll_interval = poll_interval
        self.anonymous = api_key == ANONYMOUS_KEY
        self.service = RemoteService(
            "AI Horde",
            url,
            hints=Hints(url="HORDE_URL", auth="HORDE_API_KEY"),
            headers={"apikey": api_key, "Client-Agent": CLIENT_AGENT},
            retry=retry,
            timeouts=timeouts,
            explain=self._explain,
        )
        self._capabilities = Capabilities(
            name="horde",
            native_size=native_size,
            multiple=64,
            upscale=False,
            describe=True,
            # What --quality / --stylize scale; guidance is the Horde API's cfg_scale default (5),
            # so --stylize 100 and no --stylize ask for the same thing.
            default_steps=30,
            default_guidance=5.0,
            notes=(
                "AI Horde runs on volunteers' GPUs: jobs can wait in its queue, and the same seed "
                "may differ slightly between workers.",
                "Upscale enlarges with a plain resize on this engine (no upscaling model).",
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        env = settings.environ
        models = tuple(m.strip() for m in env.get("HORDE_MODELS", "").split(",") if m.strip())
        return cls(
            parse_url(env.get("HORDE_URL", "").strip() or DEFAULT_URL, "HORDE_URL"),
            api_key=env.get("HORDE_API_KEY", "").strip() or ANONYMOUS_KEY,
            models=models or ((settings.model,) if settings.model else ()),
            native_size=env_int(env, "HORDE_NATIVE_SIZE", 512),
            timeouts=Timeouts(render=settings.job_timeout),
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        # No request at start-up: the public Horde is far away and rate-limited.
        if self.anonymous:
            log.info("horde: using the anonymous key; set HORDE_API_KEY for priority")

    async def close(self) -> None:
        await self.service.close()

    def _explain(self, status: int, payload: Any) -> EngineError | None:
        if not isinstance(payload, dict):
            return None
        rc, message = str(payload.get("rc", "")), str(payload.get("message", "")).strip()
        if isinstance(payload.get("errors"), dict):
            message += " " + "; ".join(f"{k}: {v}" for k, v in payload["errors"].items())
        if rc == "CorruptPrompt":
            return EngineError(ResultCode.BANNED_PROMPT, f"AI Horde refused the prompt: {message}")
        if rc == "KudosUpfront":
            return EngineError(
                ResultCode.FAILED_TO_REQUEST,
                f"AI Horde wants kudos up front for this request ({message}); set HORDE_API_KEY "
                "to a registered key with kudos, or ask for a smaller size.",
            )
        if rc == "RequestNotFound":
            return EngineError(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                "AI Horde no longer knows this request (it expired); try again.",
            )
        if status == 400 and message:
            return EngineError(
                ResultCode.FAILED_TO_REQUEST, f"AI Horde rejected the request: {message.strip()}"
            )
        return None

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        reporter = ProgressReporter(progress)
        reporter(0.0)
        source = None
        if request.init_image is not None:
            picture = request.init_image.convert("RGB")
            if request.mask is not None:  # transparent = the area to paint
                picture = imagecodec.with_alpha_hole(picture, request.mask)
            source = await asyncio.to_thread(imagecodec.webp_base64, picture)
        pending: list[str] = []
        try:
            for run in seed_runs(request.seeds):
                payload = self._payload(request, run, source)
                answer = await self.service.json(
                    "POST", "/v2/generate/async", json_body=payload, submit=True
                )
                if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
                    raise self.service.malformed("/v2/generate/async did not return an id")
                for warning in answer.get("warnings") or []:
                    log.warning("horde: %s", warning)
                pending.append(answer["id"])
            generations = await self._wait(pending, request, reporter)
        except (EngineCancelled, asyncio.CancelledError, EngineError):
            await stop_quietly(lambda: self._delete(pending))
            raise
        images = await self._pictures(generations, request)
        reporter.done()
        return images

    def _payload(
        self, request: GenerateRequest, run: tuple[int, ...], source: str | None
    ) -> dict[str, Any]:
        prompt = request.prompt
        if request.negative_prompt:
            prompt = f"{prompt} ### {request.negative_prompt}"  # the Horde's negative separator
        params: dict[str, Any] = {
            "width": request.width,
            "height": request.height,
            "seed": str(run[0]),
            "n": len(run),
        }
        if len(run) > 1:
            params["seed_variation"] = 1
        if request.steps is not None:
            params["steps"] = request.steps
        if request.guidance is not None:
            params["cfg_scale"] = request.guidance
        if request.tile:
            params["tiling"] = True
        payload: dict[str, Any] = {
            "prompt": prompt,
            "params": params,
            "nsfw": False,
            "censor_nsfw": True,
            "r2": True,
            "shared": False,
        }
        models = (request.model,) if request.model else self.models
        if models:
            payload["models"] = list(models)
        if source is not None:
            payload["source_image"] = source
            payload["source_processing"] = "img2img" if request.mask is None else "outpainting"
            if request.mask is None:
                params["denoising_strength"] = min(1.0, max(0.01, request.strength))
        return payload

    async def _wait(
        self, pending: list[str], request: GenerateRequest, reporter: ProgressReporter
    ) -> list[dict[str, Any]]:
        """Poll until every request is done; ``pending`` shrinks as requests are collected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.service.timeouts.render
        generations: list[dict[str, Any]] = []
        longest_wait = 0.0
        last_position: int | None = None
        model = request.model or ", ".join(self.models) or "any"
        while pending:
            finished, waits, positions = len(generations), [0.0], [0]
            for request_id in list(pending):
                check = await self.service.json("GET", f"/v2/generate/check/{request_id}")
                if not isinstance(check, dict):
                    raise self.service.malformed("the check answer is not an object")
                if check.get("faulted"):
                    raise EngineError(
                        ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                        "AI Horde marked the request as faulted (a volunteer's worker failed on "
                        "it); try again, and choose other HORDE_MODELS if it keeps happening.",
                    )
                if check.get("is_possible") is False:
                    raise EngineError(
                        ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                        f"No AI Horde worker can serve this request right now (model {model}, "
                        f"{request.width}x{request.height}); try other HORDE_MODELS or a smaller "
                        "size, or wait for workers to come online.",
                    )
                if check.get("done"):
                    generations += await self._status(request_id)
                    pending.remove(request_id)
                    continue
                finished += int(check.get("finished") or 0)
                waits.append(float(check.get("wait_time") or 0))
                positions.append(int(check.get("queue_position") or 0))
            if not pending:
                break
            if max(positions) != last_position:
                last_position = max(positions)
                log.info("horde: queue position %d, about %ds to wait", last_position, max(waits))
            longest_wait = max(longest_wait, max(waits))
            by_wait = 1 - max(waits) / longest_wait if longest_wait else 0.0
            reporter(max(finished / len(request.seeds), by_wait))
            if loop.time() > deadline:
                raise EngineError(
                    ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND,
                    f"AI Horde did not finish within {self.service.timeouts.render:g} s "
                    f"(queue position {last_position}); the request was cancelled. "
                    "Try again later.",
                )
            await asyncio.sleep(self.poll_interval)
        return generations

    async def _status(self, request_id: str) -> list[dict[str, Any]]:
        status = await self.service.json("GET", f"/v2/generate/status/{request_id}")
        generations = status.get("generations") if isinstance(status, dict) else None
        if not isinstance(generations, list) or not all(isinstance(g, dict) for g in generations):
            raise self.service.malformed("the status answer has no generations")
        return generations

    async def _pictures(
        self, generations: list[dict[str, Any]], request: GenerateRequest
    ) -> list[Image.Image]:
        if len(generations) != len(request.seeds):
            raise self.service.malformed(
                f"it returned {len(generations)} images for {len(request.seeds)} tiles"
            )
        if all(g.get("censored") for g in generations):
            raise EngineError(
                ResultCode.IMAGE_BLOCKED,
                "AI Horde's safety filter censored every image of this prompt; rephrase it.",
            )
        order: dict[int | None, int] = {seed: index for index, seed in enumerate(request.seeds)}
        generations.sort(key=lambda g: order.get(_int(g.get("seed")), len(order)))
        blobs = []
        for generation in generations:
            img = generation.get("img")
            if not isinstance(img, str) or not img:
                raise self.service.malformed("a generation has no image")
            if generation.get("censored"):
                log.warning("horde: worker %s censored one tile", generation.get("worker_name"))
            if img.startswith(("http://", "https://")):
                blobs.append(await self.service.fetch(img))
            else:
                try:
                    blobs.append(imagecodec.decode_base64(img))
                except imagecodec.BadImage:
                    raise self.service.malformed("a generation's image is not base64") from None
        try:
            images = await asyncio.to_thread(imagecodec.decode_many, blobs)
        except imagecodec.BadImage as exc:
            raise self.service.malformed(f"an image cannot be read ({exc})") from None
        return await asyncio.to_thread(
            lambda: [
                imagecodec.fit(i.convert("RGB"), request.width, request.height) for i in images
            ]
        )

    async def _delete(self, pending: list[str]) -> None:
        for request_id in pending:
            await self.service.request("DELETE", f"/v2/generate/status/{request_id}", retry=False)

    async def describe(
        self, image: Image.Image, count: int, progress: ProgressCallback
    ) -> list[str]:
        """/describe through the Horde's interrogation: a caption and CLIP's tags, from a
        volunteer's worker, polled like a generation (and deleted if it does not finish)."""
        progress(0.0, None)
        payload = {
            "source_image": await asyncio.to_thread(imagecodec.webp_base64, image),
            "forms": [{"name": "caption"}, {"name": "interrogation"}],
        }
        answer = await self.service.json(
            "POST", "/v2/interrogate/async", json_body=payload, submit=True
        )
        request_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise self.service.malformed("/v2/interrogate/async did not return an id")
        try:
            status = await self._interrogation(request_id, progress)
        except BaseException:  # a timeout or a stop: the volunteers need not finish it
            with contextlib.suppress(EngineError):
                await self.service.request(
                    "DELETE", f"/v2/interrogate/status/{request_id}", retry=False
                )
            raise
        caption, tags = interrogated(status)
        if not caption:
            raise self.service.malformed("the interrogation has no caption")
        progress(1.0, None)
        return prompt_variants(caption, tags, count)

    async def _interrogation(self, request_id: str, progress: ProgressCallback) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.service.timeouts.render
        while True:
            status = await self.service.json("GET", f"/v2/interrogate/status/{request_id}")
            state = status.get("state") if isinstance(status, dict) else None
            if state == "done":
                return dict(status)
            if state in ("faulted", "cancelled"):
                raise EngineError(
                    ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                    f"AI Horde could not describe the image (the interrogation {state}).",
                )
            if loop.time() > deadline:
                raise EngineError(
                    ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND,
                    "AI Horde took too long to describe the image; try again later.",
                )
            progress(0.3, None)
            await asyncio.sleep(self.poll_interval)

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        progress(0.0, None)
        result = await asyncio.to_thread(imagecodec.enlarge, image, factor)
        progress(1.0, None)
        return result


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
