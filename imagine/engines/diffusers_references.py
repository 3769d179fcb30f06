"""``--sref`` and ``--oref`` on Stable Diffusion and SDXL, through an IP-Adapter (runs in the
engine's worker thread).

Settings (read from ``settings.environ`` by :class:`~imagine.engines.diffusers_config.DiffusersConfig`):

- ``IMAGINE_IP_ADAPTER``: the adapter's Hugging Face id or folder; default ``h94/IP-Adapter``;
  set it empty to turn ``--sref``/``--oref`` off.
- ``IMAGINE_IP_ADAPTER_WEIGHT``: the weight file inside it, with its subfolder; default the
  family's (``models/ip-adapter_sd15.safetensors``, SDXL ``sdxl_models/ip-adapter_sdxl.safetensors``).
- ``IMAGINE_IP_ADAPTER_ENCODER``: the CLIP image encoder (an id or a folder); default the
  adapter's own, in ``image_encoder`` beside the weight file.

Loaded on the first job that uses a reference, with a log line; it stays loaded. Two copies of
the adapter are loaded: the first takes the ``--sref`` images on the style layer only
(InstantStyle: the middle attention of the first up block with attention, ``up_blocks.0`` on
SDXL, ``up_blocks.1`` on SD 1.5), the second the ``--oref`` image on every layer. The weights:

- ``--sw`` → style scale ``min(2, sw/100)``: 1.0 at the default 100 (InstantStyle's), 0 at 0;
- ``--ow`` → scale ``min(1.5, 0.6·ow/100)``: 0.6 at the default 100, IP-Adapter's usual
  "reference, not a copy"; 1.5 from 250 up.

A copy without an image gets a blank one at scale 0, which diffusers skips: a render without
references (or at ``--sw 0``) is the render the model gives without the adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from PIL import Image

from imagine.codes import ResultCode
from imagine.engines.base import EngineError, GenerateRequest, first_line

if TYPE_CHECKING:
    from imagine.engines.diffusers_load import LoadedModel

log = logging.getLogger(__name__)

DEFAULT_ADAPTER = "h94/IP-Adapter"
DEFAULT_WEIGHTS = {
    "sd": "models/ip-adapter_sd15.safetensors",
    "sd-turbo": "models/ip-adapter_sd15.safetensors",
    "sdxl": "sdxl_models/ip-adapter_sdxl.safetensors",
    "sdxl-turbo": "sdxl_models/ip-adapter_sdxl.safetensors",
}
"""The families an IP-Adapter exists for, and the adapter file each takes by default."""
MAX_STYLE_SCALE = 2.0
MAX_OMNI_SCALE = 1.5
OMNI_SCALE = 0.6
"""The ``--oref`` scale at the default ``--ow 100``."""


@dataclass(frozen=True)
class AdapterConfig:
    adapter: str = DEFAULT_ADAPTER
    """"" = no IP-Adapter: the engine refuses --sref and --oref."""
    weight: str = ""
    """"" = the family's default (:data:`DEFAULT_WEIGHTS`)."""
    encoder: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AdapterConfig:
        return cls(
            adapter=environ.get("IMAGINE_IP_ADAPTER", DEFAULT_ADAPTER).strip(),
            weight=environ.get("IMAGINE_IP_ADAPTER_WEIGHT", "").strip(),
            encoder=environ.get("IMAGINE_IP_ADAPTER_ENCODER", "").strip(),
        )

    def supports(self, family: str) -> bool:
        return bool(self.adapter) and (bool(self.weight) or family in DEFAULT_WEIGHTS)


def style_scale(weight: int) -> float:
    return min(MAX_STYLE_SCALE, weight / 100)


def omni_scale(weight: int) -> float:
    return min(MAX_OMNI_SCALE, OMNI_SCALE * weight / 100)


def _not_loaded(config: AdapterConfig, weight: str, exc: Exception) -> EngineError:
    reason = first_line(exc)
    return EngineError(
        ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
        f"The IP-Adapter for --sref and --oref could not be loaded from {config.adapter!r} "
        f"({weight}: {reason}); ask the server's operator to download it once (`hf download "
        f"{config.adapter} {weight}` and its image_encoder) or to set IMAGINE_IP_ADAPTER to a "
        "folder, or leave out --sref and --oref.",
    )


def ensure_adapter(loaded: LoadedModel, config: AdapterConfig, offline: bool) -> None:
    """Load the adapter (twice: style, omni) into ``loaded``'s pipelines, once."""
    if loaded.ip_adapter:
        return
    if not config.supports(loaded.family.name):
        raise EngineError(
            ResultCode.INVALID_PARAMETER,
            f"This server's model ({loaded.family.name}) has no IP-Adapter, so it cannot use "
            "--sref or --oref; leave them out.",
        )
    weight = config.weight or DEFAULT_WEIGHTS[loaded.family.name]
    path = PurePosixPath(weight)
    subfolder = "" if str(path.parent) == "." else str(path.parent)
    pipe = loaded.text2img
    try:
        if config.encoder:
            from transformers import CLIPVisionModelWithProjection

            encoder: Any = CLIPVisionModelWithProjection.from_pretrained(
                config.encoder, dtype=pipe.dtype, local_files_only=offline
            )
            pipe.register_modules(image_encoder=encoder.to(loaded.device))
        pipe.load_ip_adapter(
            [config.adapter, config.adapter],
            subfolder=[subfolder, subfolder],
            weight_name=[path.name, path.name],
            local_files_only=offline,
        )
    except Exception as exc:
        log.warning("diffusers: the IP-Adapter %s could not be loaded", weight, exc_info=True)
        raise _not_loaded(config, weight, exc) from exc
    for other in (loaded.img2img, loaded.inpaint):  # the same unet: they need the encoder too
        if other is not None:
            other.register_modules(
                image_encoder=pipe.image_encoder, feature_extractor=pipe.feature_extractor
            )
    loaded.ip_adapter = True
    log.info("diffusers: IP-Adapter %s (%s) loaded for --sref and --oref", config.adapter, weight)


def _style_layer(unet: Any, scale: float) -> dict[str, Any]:
    """InstantStyle's style-only scale: the middle attention of the first up block with any."""
    block = next(i for i, up in enumerate(unet.up_blocks) if hasattr(up, "attentions"))
    count = int(unet.config.layers_per_block) + 1
    layers = [0.0] * count
    layers[count // 2] = scale
    return {"up": {f"block_{block}": layers}}


def reference_kwargs(loaded: LoadedModel, request: GenerateRequest) -> dict[str, Any]:
    """The pipeline's ``ip_adapter_image`` for ``request``, its scales set; {} without the
    adapter loaded."""
    if not loaded.ip_adapter:
        return {}
    blank = Image.new("RGB", (64, 64))
    styles = [image.convert("RGB") for image in request.style_images] or [blank]
    omni = request.omni_image.convert("RGB") if request.omni_image is not None else blank
    style = style_scale(request.style_weight) if request.style_images else 0.0
    other = omni_scale(request.omni_weight) if request.omni_image is not None else 0.0
    loaded.text2img.set_ip_adapter_scale([_style_layer(loaded.text2img.unet, style), other])
    return {"ip_adapter_image": [styles, [omni]]}
