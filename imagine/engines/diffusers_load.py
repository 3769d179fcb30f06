"""Loading a diffusers model for the engine: its family, per-family defaults, device and dtype.

Imported only from the diffusers engine's worker thread, so importing ``imagine`` never imports
torch. Every failure becomes :class:`EngineUnavailable` with one sentence an operator can act on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderTiny,
    AutoPipelineForImage2Image,
    AutoPipelineForInpainting,
    AutoPipelineForText2Image,
    DiffusionPipeline,
)
from diffusers.utils import logging as diffusers_logging
from huggingface_hub import try_to_load_from_cache
from transformers.utils import logging as transformers_logging

from imagine.engines.base import EngineUnavailable, first_line
from imagine.engines.diffusers_config import OpenVinoConfig
from imagine.engines.diffusers_device import (
    OPENVINO,
    choose_backend,
    dtype_for,
    pick_device,
    tune_for_device,
)
from imagine.engines.diffusers_download import download_once, identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    """What a model family needs: sampling defaults, size, TAESD decoder, prompt handling."""

    name: str
    steps: int
    guidance: float
    native_size: int | None
    """None: read from the model (unet sample size x VAE scale)."""
    taesd: str | None
    """The Hugging Face id of the matching tiny autoencoder."""
    weighted_prompts: bool = True


FAMILIES: dict[str, Family] = {
    # SD-Turbo and SDXL-Turbo were distilled at 512² for 1-4 steps without guidance.
    "sd-turbo": Family("sd-turbo", 1, 0.0, 512, "madebyollin/taesd"),
    "sdxl-turbo": Family("sdxl-turbo", 1, 0.0, 512, "madebyollin/taesdxl"),
    "sd": Family("sd", 25, 7.0, None, "madebyollin/taesd"),
    "sdxl": Family("sdxl", 30, 5.0, 1024, "madebyollin/taesdxl"),
    "flux-schnell": Family("flux-schnell", 4, 0.0, 1024, "madebyollin/taef1", False),
    "flux": Family("flux", 28, 3.5, 1024, "madebyollin/taef1", False),
    "other": Family("other", 25, 5.0, None, None, False),
}


_SD_PIPELINES = (
    "StableDiffusionPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionInpaintPipeline",
)


def detect_family(class_name: str, model: str, config: dict[str, Any]) -> Family:
    """The family from the pipeline class in model_index.json and, for turbo models, the name."""
    turbo = "turbo" in model.lower()
    if class_name.startswith("Flux"):
        # FLUX.1-dev embeds the guidance scale; schnell (timestep-distilled) does not.
        guidance_embeds = bool(config.get("guidance_embeds", "schnell" not in model.lower()))
        return FAMILIES["flux" if guidance_embeds else "flux-schnell"]
    if class_name.startswith("StableDiffusionXL"):
        return FAMILIES["sdxl-turbo" if turbo else "sdxl"]
    if class_name in _SD_PIPELINES:
        return FAMILIES["sd-turbo" if turbo else "sd"]
    return FAMILIES["other"]  # SD3, Kandinsky, ...: AutoPipeline may still run them


@dataclass
class LoadedModel:
    """One set of weights shared by three pipelines (``from_pipe``), kept warm."""

    model: str
    family: Family
    device: torch.device
    text2img: Any
    img2img: Any | None
    inpaint: Any | None
    has_taesd: bool
    native_size: int
    multiple: int
    ip_adapter: bool = False
    """Whether the IP-Adapter (--sref, --oref) is loaded into these pipelines."""
    backend: str = "pytorch"
    """``pytorch``, or ``openvino``: the UNet and VAE run as compiled OpenVINO models."""


def _is_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or Path(model).is_dir()


def _not_found(model: str, offline: bool, what: str = "model") -> EngineUnavailable:
    where = "the Hugging Face cache (HF_HUB_OFFLINE is set, so nothing is downloaded)"
    if not offline:
        where = "the Hugging Face cache and could not be downloaded"
    return EngineUnavailable(
        f"The {what} {model!r} is neither a local diffusers folder nor in {where}; "
        f"download it once with `hf download {model}` or point the setting at a model folder."
    )


def _check_index_file(index: Path) -> None:
    """An EngineUnavailable naming ``index`` and what is wrong with it, if it is not JSON."""
    try:
        parsed = json.loads(index.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        problem = f"it is not UTF-8 text ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        problem = f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    except OSError as exc:
        problem = f"it cannot be read ({exc.strerror or exc})"
    else:
        if isinstance(parsed, dict):
            return
        problem = "it holds no JSON object"
    raise EngineUnavailable(
        f"The model file {index} is not usable: {problem}; repair or replace it, or download "
        "the model again."
    )


def _cached_index(model: str) -> Path | None:
    """The model_index.json of a Hugging Face id in the local cache, if it is there."""
    if _is_path(model):
        return None
    try:
        cached = try_to_load_from_cache(model, "model_index.json")
    except ValueError:  # not a valid repository id
        return None
    return Path(cached) if isinstance(cached, str) else None


def _read_model_index(model: str, offline: bool) -> dict[str, Any]:
    if _is_path(model):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise EngineUnavailable(
                f"IMAGINE_MODEL={model!r} is not a folder that exists; set it to a diffusers "
                "model folder (with model_index.json) or a Hugging Face model id."
            )
        if not (folder / "model_index.json").is_file():
            raise EngineUnavailable(
                f"The folder {str(folder)!r} has no model_index.json, so it is not a diffusers "
                "model folder; point IMAGINE_MODEL at the folder that holds model_index.json."
            )
        _check_index_file(folder / "model_index.json")
    try:
        config: dict[str, Any] = DiffusionPipeline.load_config(model, local_files_only=offline)
    except Exception as exc:
        log.warning("model_index.json of %r could not be read", model, exc_info=True)
        if (cached := _cached_index(model)) is not None:  # there, but unreadable: say so
            _check_index_file(cached)
        raise _not_found(model, offline) from exc
    return config


def _transformer_config(model: str, offline: bool) -> dict[str, Any]:
    try:
        from diffusers import FluxTransformer2DModel

        config: dict[str, Any] = FluxTransformer2DModel.load_config(
            model, subfolder="transformer", local_files_only=offline
        )
    except Exception:
        log.warning("transformer config of %r could not be read", model, exc_info=True)
        return {}
    return config


def load_model(
    model: str,
    *,
    device: str,
    taesd: str | None,
    family_name: str,
    offline: bool,
    openvino: OpenVinoConfig | None = None,
) -> LoadedModel:
    """Load ``model`` for txt2img, img2img and inpainting on one set of weights.

    ``taesd``: "" = no tiny decoder, "auto" = the family's, else a model id or folder.
    ``family_name``: "" = detect, else a key of :data:`FAMILIES`.
    ``openvino``: where and how the OpenVINO backend keeps its exports, when it is chosen.
    """
    if not offline and not _is_path(model):
        download_once(model)
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    index = _read_model_index(model, offline)
    class_name = str(index.get("_class_name", ""))
    if family_name:
        family = FAMILIES[family_name]
    else:
        extra = _transformer_config(model, offline) if class_name.startswith("Flux") else {}
        family = detect_family(class_name, model, extra)
    backend = choose_backend(device, family.name)
    torch_device = pick_device(OPENVINO if backend == OPENVINO else device)
    dtype = dtype_for(torch_device, family.name)
    components: dict[str, Any] = {}
    taesd_id = family.taesd if taesd == "auto" else taesd
    if taesd and not taesd_id:
        log.warning(
            "IMAGINE_TAESD: no TAESD is known for %s models; set IMAGINE_TAESD_MODEL", class_name
        )
    if taesd_id:
        try:
            components["vae"] = AutoencoderTiny.from_pretrained(  # type: ignore[no-untyped-call]
                taesd_id, dtype=dtype, local_files_only=offline
            )
        except Exception as exc:
            log.warning("TAESD %r could not be loaded", taesd_id, exc_info=True)
            raise _not_found(taesd_id, offline, "TAESD decoder (IMAGINE_TAESD=1)") from exc
    try:
        text2img = AutoPipelineForText2Image.from_pretrained(  # type: ignore[no-untyped-call]
            model, dtype=dtype, local_files_only=offline, **components
        )
    except Exception as exc:
        log.warning("pipeline %r could not be loaded", model, exc_info=True)
        reason = first_line(exc)
        raise EngineUnavailable(
            f"The model {model!r} could not be loaded ({reason}); check that it is a complete "
            "diffusers text-to-image model."
        ) from exc
    text2img.to(torch_device)
    if backend != OPENVINO:
        tune_for_device(text2img, torch_device)
    try:
        img2img = AutoPipelineForImage2Image.from_pipe(text2img)
    except ValueError:  # e.g. PixArt, Sana: text-to-image only
        log.warning(
            "%s has no image-to-image pipeline: variations and image prompts are off", class_name
        )
        img2img = None
    try:
        inpaint = AutoPipelineForInpainting.from_pipe(text2img)
    except ValueError:
        log.warning("%s has no inpainting pipeline: outpainting is off", class_name)
        inpaint = None
    for pipe in (text2img, img2img, inpaint):
        if pipe is not None:
            pipe.set_progress_bar_config(disable=True)
    scale = int(getattr(text2img, "vae_scale_factor", 8))
    sample = int(getattr(text2img, "default_sample_size", 64))
    loaded = LoadedModel(
        model=model,
        family=family,
        device=torch_device,
        text2img=text2img,
        img2img=img2img,
        inpaint=inpaint,
        has_taesd=bool(taesd_id),
        native_size=family.native_size or sample * scale,
        # FLUX packs 2x2 latent patches, so its sides are multiples of twice the VAE scale.
        multiple=scale * 2 if family.name.startswith("flux") else scale,
        backend=backend,
    )
    if backend == OPENVINO:
        from imagine.engines.diffusers_openvino import to_openvino

        identities = (identity(model), identity(taesd_id or model))
        to_openvino(loaded, openvino or OpenVinoConfig(), identities, taesd_id or "")
    log.info(
        "diffusers: %s loaded as %s (%s) on %s, %s, TAESD %s",
        model,
        type(text2img).__name__,
        family.name,
        "OpenVINO (CPU)" if backend == OPENVINO else torch_device,
        f"precision {(openvino or OpenVinoConfig()).precision}" if backend == OPENVINO else dtype,
        taesd_id or "off",
    )
    return loaded
