"""The local engine: a Hugging Face diffusers pipeline in this process (``IMAGINE_ENGINE=diffusers``).

Settings (read from ``settings.environ``):

- ``IMAGINE_MODEL``: a Hugging Face id or a local diffusers folder; default ``stabilityai/sd-turbo``.
  SDXL-Turbo (``stabilityai/sdxl-turbo``) and FLUX.1-schnell (``black-forest-labs/FLUX.1-schnell``)
  work by changing only this: the pipeline class comes from the model's own ``model_index.json``
  and the steps/guidance defaults from its family (``diffusers_load.FAMILIES``).
- ``IMAGINE_MODEL_FAMILY``: force a family (e.g. ``sd-turbo`` for a local folder of a turbo model
  whose name does not say so).
- ``IMAGINE_TAESD=1``: decode with the tiny TAESD autoencoder (``IMAGINE_TAESD_MODEL``, default
  the family's: madebyollin/taesd, taesdxl or taef1): much faster on a CPU, slightly softer.
- ``IMAGINE_DEVICE``: ``cpu``, ``cuda``, ``cuda:N`` or ``openvino``; default CUDA (half
  precision) when available, else OpenVINO where installed (SD and SDXL models), else the CPU
  (float32). ``IMAGINE_OPENVINO_WEIGHTS`` (``full``, ``int8``) and
  ``IMAGINE_OPENVINO_PRECISION`` (``auto``, ``f32``, ``bf16``, ``f16``): see
  :mod:`imagine.engines.diffusers_openvino`.
- ``HF_HUB_OFFLINE=1``: never download; the model must be a folder or in the cache.
- ``IMAGINE_UPSCALER`` / ``IMAGINE_UPSCALER_GPU``: see :mod:`imagine.upscaler`.
- ``IMAGINE_CAPTION_MODEL`` (``Settings.caption_model``): the BLIP captioner /describe loads on
  its first use (default ``Salesforce/blip-image-captioning-base``; empty: no /describe).
- ``IMAGINE_IP_ADAPTER``, ``IMAGINE_IP_ADAPTER_WEIGHT``, ``IMAGINE_IP_ADAPTER_ENCODER``: the
  IP-Adapter ``--sref`` and ``--oref`` load on their first use; see
  :mod:`imagine.engines.diffusers_references`.

It honours ``--stop`` (on models of more than one step), ``--style raw`` (on models with
classifier-free guidance), ``--sref`` and ``--oref`` (SD and SDXL, with an IP-Adapter).

/shorten reads prompts with the model's own CLIP tokenizer and text encoder
(:mod:`imagine.engines.diffusers_analyse`) when it has them (SD, SDXL; not FLUX).

torch and diffusers are imported in :meth:`DiffusersEngine.start`, in the worker thread, so
choosing another engine never imports them. One model is loaded and kept warm; every run goes
through a single worker thread and a lock, so only one run uses the pipelines at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Self, TypeVar

from PIL import Image

from imagine.codes import ResultCode
from imagine.engines.base import (
    Capabilities,
    EngineError,
    EngineUnavailable,
    GenerateRequest,
    ProgressCallback,
    PromptAnalysis,
)
from imagine.engines.diffusers_config import FAMILY_NAMES, DiffusersConfig
from imagine.engines.diffusers_references import AdapterConfig
from imagine.settings import Settings
from imagine.upscaler import CHOICES, Upscaler, shared_upscaler

if TYPE_CHECKING:
    from imagine.engines.diffusers_caption import Captioner
    from imagine.engines.diffusers_load import LoadedModel

log = logging.getLogger(__name__)
T = TypeVar("T")


class DiffusersEngine:
    def __init__(self, config: DiffusersConfig, upscaler: Upscaler | None = None) -> None:
        self.config = config
        self.upscaler = upscaler or Upscaler()
        self._loaded: LoadedModel | None = None
        self._captioner: Captioner | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="diffusers")
        self._capabilities = Capabilities(
            name="diffusers",
            weighted_prompts=True,
            parallel=1,
            known_before_start=False,
            describe=bool(config.caption_model),
            honours=("--stop", *(("--sref", "--oref") if config.references.adapter else ())),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        choice = settings.environ.get("IMAGINE_UPSCALER", "").strip().lower() or "auto"
        if choice not in CHOICES:
            raise EngineUnavailable(
                f"IMAGINE_UPSCALER={choice!r} is not an upscaler; use one of {', '.join(CHOICES)}."
            )
        return cls(DiffusersConfig.from_settings(settings), shared_upscaler(settings.environ))

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def _in_worker(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def start(self) -> None:
        await self._in_worker(self._start)

    def _start(self) -> None:
        with self._lock:
            self._loaded = self._load(self.config.model)
            upscale = self.upscaler.status()
            self._capabilities = _capabilities(
                self._loaded, upscale.real, upscale.describe(), self.config.references
            )
            self._capabilities = dataclasses.replace(
                self._capabilities,
                describe=bool(self.config.caption_model),
                tokenizer=self._tokenizer(self._loaded),
            )

    def _load(self, model: str) -> LoadedModel:
        try:
            from imagine.engines.diffusers_load import load_model
        except ModuleNotFoundError as exc:
            raise EngineUnavailable(
                f"The diffusers engine needs the Python package {exc.name!r}, which is not "
                "installed; install the local extra with: pip install -e '.[local]'."
            ) from exc
        return load_model(
            model,
            device=self.config.device,
            taesd=self.config.taesd,
            family_name=self.config.family,
            offline=self.config.offline,
            openvino=self.config.openvino,
        )

    async def close(self) -> None:
        # A run still going ends at its next step (the service's progress callback cancels it).
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._loaded = None

    async def generate(
        self, request: GenerateRequest, progress: ProgressCallback
    ) -> list[Image.Image]:
        return await self._in_worker(self._generate, request, progress)

    def _generate(self, request: GenerateRequest, progress: ProgressCallback) -> list[Image.Image]:
        from imagine.engines.diffusers_render import render

        with self._lock:
            if self._loaded is None:
                raise EngineError(
                    ResultCode.INTERNAL_ERROR, "The diffusers engine was not started."
                )
            # no --v: the configured model, also after a --v job swapped another one in
            wanted = request.model or self.config.model
            if wanted != self._loaded.model:
                self._switch(wanted)
            assert self._loaded is not None
            if self._loaded.backend == "openvino" and request.tile:
                raise EngineError(
                    ResultCode.INVALID_PARAMETER,
                    "--tile needs the PyTorch backend: the OpenVINO one runs compiled networks "
                    "whose padding cannot be made circular; set IMAGINE_DEVICE=cpu for it.",
                )
            if self._loaded.backend != "openvino" and (
                request.style_images or request.omni_image is not None
            ):
                from imagine.engines.diffusers_references import ensure_adapter

                ensure_adapter(self._loaded, self.config.references, self.config.offline)
            return render(self._loaded, request, progress)

    def _switch(self, model: str) -> None:
        """Swap the warm model for ``model``: one model in memory at a time."""
        log.info("diffusers: switching model to %s", model)
        self._loaded = None
        gc.collect()  # free the old weights before loading the new ones
        try:
            self._loaded = self._load(model)
        except Exception as exc:  # not only EngineUnavailable: CUDA out of memory, a bad pipe
            log.warning(
                "diffusers: %s could not be loaded; back to %s",
                model,
                self.config.model,
                exc_info=True,
            )
            if model != self.config.model:
                self._loaded = self._load(self.config.model)
            sentence = (
                str(exc)
                if isinstance(exc, EngineUnavailable)
                else f"The model {model!r} could not be loaded."
            )
            raise EngineError(ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND, sentence) from exc

    async def upscale(
        self, image: Image.Image, factor: int, progress: ProgressCallback
    ) -> Image.Image:
        return await asyncio.to_thread(self._upscale, image, factor, progress)

    async def describe(
        self, image: Image.Image, count: int, progress: ProgressCallback
    ) -> list[str]:
        if not self.config.caption_model:
            raise EngineError(
                ResultCode.INVALID_PARAMETER,
                "/describe is off on this server: IMAGINE_CAPTION_MODEL is empty; set it to a "
                "BLIP captioning model (e.g. Salesforce/blip-image-captioning-base).",
            )
        return await self._in_worker(self._describe, image, count, progress)

    def _describe(self, image: Image.Image, count: int, progress: ProgressCallback) -> list[str]:
        try:
            from imagine.engines.diffusers_caption import load_captioner
        except ModuleNotFoundError as exc:
            raise EngineError(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                f"/describe needs the Python package {exc.name!r}, which is not installed; "
                "install the local extra with: pip install -e '.[local]'.",
            ) from exc
        from imagine.engines.diffusers_device import pick_device

        with self._lock:
            progress(0.0, None)
            if self._captioner is None:
                # Loaded on first use: most servers never describe, and BLIP is ~1 GB.
                device = self._loaded.device if self._loaded else pick_device(self.config.device)
                self._captioner = load_captioner(
                    self.config.caption_model, device, self.config.offline
                )
            progress(0.5, None)
            prompts = self._captioner.captions(image, count)
        if not prompts:
            raise EngineError(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                "The image captioner wrote nothing for this image.",
            )
        progress(1.0, None)
        return prompts

    async def analyse_prompt(self, text: str) -> PromptAnalysis:
        return await self._in_worker(self._analyse, text)

    def _analyse(self, text: str) -> PromptAnalysis:
        from imagine.engines.diffusers_analyse import analyse

        with self._lock:
            if self._loaded is None or not self._tokenizer(self._loaded):
                # Not started, or no CLIP of its own (FLUX): the rules of thumb it is.
                from imagine.prompt.shorten import estimate

                return estimate(text)
            return analyse(self._loaded, text)

    @staticmethod
    def _tokenizer(loaded: LoadedModel) -> str:
        from imagine.engines.diffusers_analyse import describe_tokenizer

        return describe_tokenizer(loaded)

    def _upscale(self, image: Image.Image, factor: int, progress: ProgressCallback) -> Image.Image:
        progress(0.0, None)
        result = self.upscaler.upscale(image, factor)
        progress(1.0, None)
        return result


def _capabilities(
    loaded: LoadedModel, real_upscaler: bool, upscaler: str, references: AdapterConfig
) -> Capabilities:
    honours = ["--stop"]
    if loaded.family.guidance > 1.0:
        honours.append("--style raw")
    # the IP-Adapter patches the UNet's attention, which a compiled OpenVINO UNet cannot take
    if references.supports(loaded.family.name) and loaded.backend != "openvino":
        honours += ["--sref", "--oref"]
    notes: list[str] = []
    if loaded.family.guidance <= 1.0:
        notes.append(
            "This model runs without classifier-free guidance by default, "
            "so --no and negative weights have little effect."
        )
    if not real_upscaler:
        notes.append(f"Upscales use {upscaler}.")
    if loaded.backend == "openvino":
        notes.append(
            "This server renders with OpenVINO on its CPU: --sref, --oref and --tile are off."
        )
    return Capabilities(
        name="diffusers (OpenVINO)" if loaded.backend == "openvino" else "diffusers",
        native_size=loaded.native_size,
        multiple=loaded.multiple,
        img2img=loaded.img2img is not None,
        outpaint=loaded.inpaint is not None,
        inpaint=loaded.inpaint is not None,  # a painted mask goes through the same pipeline
        upscale=real_upscaler,
        upscaler=upscaler,
        default_steps=loaded.family.steps,
        default_guidance=loaded.family.guidance,
        seeds=True,
        weighted_prompts=loaded.family.weighted_prompts,
        max_batch=4,
        parallel=1,  # one pipeline, one render at a time (its own worker thread)
        notes=tuple(notes),
        honours=tuple(honours),
    )


__all__ = ["FAMILY_NAMES", "DiffusersConfig", "DiffusersEngine"]
