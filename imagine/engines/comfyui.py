"""ComfyUI as an engine: workflow templates queued on ``/prompt``, watched over ``/ws?clientId=``.

One prompt per tile (each template renders one image), all queued at once so ComfyUI runs them
back to back with the checkpoint and the text encodings cached. A tile is done on
``execution_success`` (or ``executing`` with ``node: null`` from older servers) or when its
``/history/{id}`` entry appears; its picture comes from ``/view``. Inputs go up through
``/upload/image``. Cancel deletes our queued prompts, and posts ``/interrupt`` only when
``/queue`` shows that the running prompt is ours (an interrupt would stop another client's).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any, Self

import aiohttp
from PIL import Image
from yarl import URL

from imagine.codes import ResultCode
from imagine.engines import comfyui_protocol, comfyui_workflows, imagecodec
from imagine.engines.base import (
    OUTPAINT_STRENGTH,
    Capabilities,
    EngineCancelled,
    EngineError,
    EngineUnavailable,
    GenerateRequest,
    ProgressCallback,
)
from imagine.engines.remote import FilePart, Hints, RemoteService, RetryPolicy, Timeouts
from imagine.engines.remote_jobs import ProgressReporter, stop_quietly
from imagine.engines.remote_settings import env_int, parse_url
from imagine.settings import Settings

log = logging.getLogger(__name__)


class ComfyUIEngine:
    def __init__(
        self,
        url: str,
        *,
        workflows: Path | None = None,
        checkpoint: str = "",
        native_size: int = 1024,
        steps: int = 20,
        cfg: float = 7.0,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.templates = comfyui_workflows.load_templates(workflows)
        self.checkpoint = checkpoint
        self.steps = steps
        self.cfg = cfg
        self.poll_interval = poll_interval
        self.service = RemoteService(
            "ComfyUI",
            url,
            hints=Hints(url="COMFYUI_URL", auth="the proxy in front of ComfyUI"),
            retry=retry,
            timeouts=timeouts,
            explain=self._explain,
        )
        self._capabilities = Capabilities(
            name="comfyui",
            native_size=native_size,
            multiple=8,
            upscale=False,
            default_steps=steps,
            default_guidance=cfg,
            notes=("Upscale enlarges with a plain resize on this engine (no upscaling model).",),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        env = settings.environ
        raw_url = env.get("COMFYUI_URL", "").strip()
        if not raw_url:
            raise EngineUnavailable(
                "Set COMFYUI_URL to your ComfyUI server (e.g. http://127.0.0.1:8188)."
            )
        folder = None
        if raw_folder := env.get("COMFYUI_WORKFLOWS", "").strip():
            folder = Path(raw_folder).expanduser()
            if not folder.is_dir():
                raise EngineUnavailable(f"COMFYUI_WORKFLOWS={raw_folder!r} is not a folder.")
        return cls(
            parse_url(raw_url, "COMFYUI_URL"),
            workflows=folder,
            checkpoint=env.get("COMFYUI_CHECKPOINT", "").strip() or settings.model,
            native_size=env_int(env, "COMFYUI_NATIVE_SIZE", 1024),
            timeouts=Timeouts(render=settings.job_timeout),
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def start(self) -> None:
        try:
            info = await self.service.json("GET", "/object_info/CheckpointLoaderSimple")
        except EngineError as exc:
            raise EngineUnavailable(exc.message) from None
        available = comfyui_protocol.checkpoints(info)
        if self.checkpoint and available and self.checkpoint not in available:
            raise EngineUnavailable(
                f"ComfyUI has no checkpoint {self.checkpoint!r}; set COMFYUI_CHECKPOINT to one of "
                f"{available[:10]}."
            )
        if not self.checkpoint:
            if not available:
                raise EngineUnavailable(
                    "ComfyUI lists no checkpoint; put one in its models/checkpoints folder "
                    "or set COMFYUI_CHECKPOINT."
                )
            self.checkpoint = available[0]
        log.info("comfyui: %s with checkpoint %s", self.service.base_url, self.checkpoint)

    async def close(self) -> None:
        await self.service.close()

    def _explain(self, status: int, payload: Any) -> EngineError | None:
        return comfyui_protocol.prompt_rejection(self.service.where, status, payload)

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        reporter = ProgressReporter(progress, len(request.seeds))
        reporter(0.0)
        client_id = uuid.uuid4().hex
        ws = await self._connect(client_id)
        queued: list[str] = []
        results: dict[str, Image.Image] = {}
        try:
            values = await self._inputs(request)
            template = self.templates[request.mode]
            for seed in request.seeds:
                workflow = comfyui_workflows.fill(template, values | {"seed": seed})
                body = {"prompt": workflow, "client_id": client_id}
                answer = await self.service.json("POST", "/prompt", json_body=body, submit=True)
                if not isinstance(answer, dict) or not isinstance(answer.get("prompt_id"), str):
                    raise self.service.malformed("/prompt did not return a prompt_id")
                queued.append(answer["prompt_id"])
            await self._wait(ws, queued, results, reporter)
        except (EngineCancelled, asyncio.CancelledError, EngineError):
            # Whatever ended the job, our prompts still queued there would only waste the GPU.
            await stop_quietly(lambda: self._stop([p for p in queued if p not in results]))
            raise
        finally:
            if ws is not None:
                await ws.close()
        reporter.done()
        ordered = [results[prompt_id] for prompt_id in queued]
        return await asyncio.to_thread(
            lambda: [
                imagecodec.fit(i.convert("RGB"), request.width, request.height) for i in ordered
            ]
        )

    async def _inputs(self, request: GenerateRequest) -> dict[str, Any]:
        values: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.width,
            "height": request.height,
            "steps": request.steps or self.steps,
            "cfg": request.guidance if request.guidance is not None else self.cfg,
            "denoise": _denoise(request),
            "checkpoint": request.model or self.checkpoint,
            "filename_prefix": "imagine",
        }
        if request.init_image is not None:
            values["image"] = await self._upload(request.init_image.convert("RGB"))
        if request.mask is not None:
            values["mask"] = await self._upload(request.mask.convert("L"))
        return values

    async def _upload(self, image: Image.Image) -> str:
        data = await asyncio.to_thread(imagecodec.encode_png, image)
        form = {
            "image": FilePart(f"imagine-{uuid.uuid4().hex}.png", data),
            "type": "input",
            "overwrite": "true",
        }
        answer = await self.service.json("POST", "/upload/image", form=form)
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            raise self.service.malformed("/upload/image did not return a file name")
        subfolder = answer.get("subfolder") or ""
        return f"{subfolder}/{answer['name']}" if subfolder else str(answer["name"])

    async def _connect(self, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        url = URL(self.service.url("/ws")).with_query(clientId=client_id)
        url = url.with_scheme("wss" if url.scheme == "https" else "ws")
        try:
            async with asyncio.timeout(self.service.timeouts.connect):  # not wait_for: see webhooks
                return await self.service.session().ws_connect(url, heartbeat=30)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Progress is lost, results are not: /history is polled instead.
            log.warning("comfyui: no websocket at %s (%s); polling history", url, exc)
            return None

    async def _wait(
        self,
        ws: aiohttp.ClientWebSocketResponse | None,
        queued: list[str],
        results: dict[str, Image.Image],
        reporter: ProgressReporter,
    ) -> None:
        """Fill ``results`` (prompt id -> picture) until every queued prompt has one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.service.timeouts.render
        while len(results) < len(queued):
            if loop.time() > deadline:
                raise EngineError(
                    ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND,
                    f"{self.service.where} did not finish within "
                    f"{self.service.timeouts.render:g} s; check its queue and console.",
                )
            event = await comfyui_protocol.next_event(ws, self.poll_interval)
            if event is None:  # quiet: check cancellation, and look for finished prompts
                reporter.tick()
                for prompt_id in [p for p in queued if p not in results]:
                    if (entry := await self._history(prompt_id)) is not None:
                        results[prompt_id] = await self._picture(entry)
                continue
            if isinstance(event, Image.Image):
                reporter.preview(event)
                continue
            kind, data = event.get("type"), event.get("data")
            target = data.get("prompt_id") if isinstance(data, dict) else None
            if not isinstance(data, dict) or target not in queued or target in results:
                continue
            reporter.part(len(results))
            if kind == "progress" and data.get("max"):
                reporter(float(data.get("value", 0)) / float(data["max"]))
            elif kind == "execution_error":
                raise comfyui_protocol.execution_error(self.service.where, data)
            elif kind == "execution_interrupted":
                raise EngineError(
                    ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                    f"{self.service.where} interrupted the job (someone pressed Cancel there?).",
                )
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                results[target] = await self._picture(await self._history_when_written(target))

    async def _history(self, prompt_id: str) -> dict[str, Any] | None:
        answer = await self.service.json("GET", f"/history/{prompt_id}")
        return comfyui_protocol.history_entry(answer, prompt_id, self.service.where)

    async def _history_when_written(self, prompt_id: str) -> dict[str, Any]:
        # ComfyUI announces the end of a prompt just before it writes the history entry.
        for _ in range(20):
            if (entry := await self._history(prompt_id)) is not None:
                return entry
            await asyncio.sleep(min(self.poll_interval, 0.25))
        raise self.service.malformed(f"prompt {prompt_id} finished but has no history entry")

    async def _picture(self, entry: dict[str, Any]) -> Image.Image:
        params = comfyui_protocol.saved_image(entry)
        if params is None:
            raise self.service.malformed("the workflow saved no image (it needs a SaveImage node)")
        _, body = await self.service.request("GET", "/view", params=params)
        try:
            return await asyncio.to_thread(imagecodec.decode_image, body)
        except imagecodec.BadImage as exc:
            raise self.service.malformed(f"/view sent an unreadable image ({exc})") from None

    async def _stop(self, unfinished: list[str]) -> None:
        """Take our prompts off the queue; interrupt the running one only if it is ours (older
        servers' /interrupt stops whatever runs, whoever queued it)."""
        if not unfinished:
            return
        await self.service.request("POST", "/queue", json_body={"delete": unfinished}, retry=False)
        running = comfyui_protocol.running_prompts(
            await self.service.json("GET", "/queue", retry=False)
        )
        for prompt_id in [p for p in unfinished if p in running]:
            # With its prompt_id, newer servers stop it only if it is still the one running.
            await self.service.request(
                "POST", "/interrupt", json_body={"prompt_id": prompt_id}, retry=False
            )

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        progress(0.0, None)
        result = await asyncio.to_thread(imagecodec.enlarge, image, factor)
        progress(1.0, None)
        return result


def _denoise(request: GenerateRequest) -> float:
    if request.mode == "outpaint":
        # Below 1 the sampler starts from the pre-filled border, so the new border continues it.
        return min(request.strength, OUTPAINT_STRENGTH)
    return request.strength if request.mode == "img2img" else 1.0
