"""Where the diffusers engine runs: a PyTorch device and dtype, or the OpenVINO backend.

``IMAGINE_DEVICE``: empty (or ``auto``) = CUDA when PyTorch sees a GPU, else OpenVINO on the CPU
where the ``openvino`` package is installed and the model has a UNet (Stable Diffusion, SDXL),
else PyTorch on the CPU; ``cpu``, ``cuda``, ``cuda:N`` or ``openvino`` force one.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from imagine.engines.base import EngineUnavailable

OPENVINO = "openvino"
UNET_FAMILIES = ("sd-turbo", "sd", "sdxl-turbo", "sdxl")
"""Families whose denoiser is a UNet, which the OpenVINO backend exports (FLUX's is not)."""


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def choose_backend(requested: str, family: str) -> str:
    """``openvino`` or ``pytorch`` for ``IMAGINE_DEVICE=requested`` and a model of ``family``."""
    if requested == OPENVINO:
        if not openvino_installed():
            raise EngineUnavailable(
                "IMAGINE_DEVICE=openvino needs the Python package 'openvino', which is not "
                "installed; install the local extra with: pip install -e '.[local]', or set "
                "IMAGINE_DEVICE=cpu."
            )
        if family not in UNET_FAMILIES:
            raise EngineUnavailable(
                f"IMAGINE_DEVICE=openvino runs Stable Diffusion and SDXL models, and this one is "
                f"of the {family!r} family; set IMAGINE_DEVICE=cpu (or cuda) for it."
            )
        return OPENVINO
    if requested:
        return "pytorch"
    if torch.cuda.is_available() or family not in UNET_FAMILIES or not openvino_installed():
        return "pytorch"
    return OPENVINO


def pick_device(requested: str) -> torch.device:
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == OPENVINO:
        return torch.device("cpu")  # what stays in PyTorch (text encoders, schedulers) runs here
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise EngineUnavailable(
            f"IMAGINE_DEVICE={requested!r} is not a device; use cpu, cuda, cuda:N or openvino."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailable(
            f"IMAGINE_DEVICE={requested!r} asks for a GPU but PyTorch sees no CUDA device; "
            "unset it to run on the CPU."
        )
    return device


def dtype_for(device: torch.device, family: str) -> torch.dtype:
    if device.type != "cuda":
        return torch.float32  # half precision is slow or unsupported on CPUs
    return torch.bfloat16 if family.startswith("flux") else torch.float16


def tune_for_device(pipe: Any, device: torch.device) -> None:
    """Lay convolution weights out channels-last, on a CPU and on CUDA.

    On a CPU oneDNN runs SD's UNet ~20% faster so (measured); on CUDA, channels-last lets the
    fp16 convolutions use tensor-core kernels without layout changes, which diffusers recommends;
    ``bench/bench_gpu.py`` measures it against the default layout, to be confirmed on a GPU.
    PyTorch's scaled-dot-product attention is diffusers' default processor on both.
    """
    if device.type not in ("cpu", "cuda"):
        return
    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


__all__ = ["OPENVINO", "choose_backend", "dtype_for", "pick_device", "tune_for_device"]
