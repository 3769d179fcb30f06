"""The diffusers engine's OpenVINO backend: the UNet and the VAE as compiled OpenVINO models.

The pipelines stay diffusers' own (schedulers, img2img, inpainting, prompt encoding, weighted
prompts, one generator per seed), so every path of the PyTorch backend works unchanged; only the
networks that take the time are swapped for objects that run OpenVINO. The text encoders stay in
PyTorch: they run once per job and /shorten reads them.

Why not optimum-intel's ``OVDiffusionPipeline``: its newest release (2.2.0) needs
transformers < 5.6 and huggingface-hub < 1.22, while diffusers 0.42 needs huggingface-hub
>= 1.32, so the two cannot be installed together; it also wraps the same ``openvino`` calls.

Each network is exported once (``openvino.convert_model``, with dynamic batch and size) into
``IMAGINE_DATA_DIR/openvino/`` (a folder for the UNet, one for the VAE or TAESD, per weights), written to a temporary folder and renamed
into place, so a start that is killed mid-export leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openvino as ov
import torch

from imagine.engines.base import EngineUnavailable, first_line
from imagine.engines.diffusers_config import OpenVinoConfig
from imagine.engines.diffusers_load import LoadedModel
from imagine.engines.diffusers_openvino_modules import (
    OVUNet,
    OVVae,
    UNetExport,
    VaeDecode,
    VaeEncode,
    XLUNetExport,
)

log = logging.getLogger(__name__)

TICK_SECONDS = 20.0
"""How often a long export says it is still going."""


@contextmanager
def _ticking(what: str) -> Iterator[None]:
    """Log ``what`` at the start, every TICK_SECONDS while it runs, and its time at the end:
    ``convert_model`` has no progress callback, and an SD UNet takes minutes on a small CPU."""
    started = time.monotonic()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(TICK_SECONDS):
            log.info("openvino: still %s (%.0f s so far)", what, time.monotonic() - started)

    log.info("openvino: %s", what)
    ticker = threading.Thread(target=tick, name="openvino-export-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        log.info("openvino: done %s in %.1f s", what, time.monotonic() - started)


def _compress(model: Any, weights: str) -> Any:
    if weights != "int8":
        return model
    import nncf

    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)


def _export(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], shapes: list[list[int]]
) -> Any:
    # The tracer warns of every shape test it freezes (those the export relies on are handled
    # in _unet_parts), and torch 2.13 of its own deprecation: none is for an operator to act on.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(module, example_input=example)
    for port, shape in zip(model.inputs, shapes, strict=True):
        port.get_node().set_partial_shape(ov.PartialShape(shape))
    model.validate_nodes_and_infer_types()
    return model


def _unet_parts(unet: Any) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...], list[list[int]]]:
    config = unet.config
    if config.get("time_cond_proj_dim") is not None:
        raise EngineUnavailable(
            "The OpenVINO backend does not run UNets with a guidance embedding (LCM models); "
            "set IMAGINE_DEVICE=cpu for this model."
        )
    # A latent side that no upsampler's factor divides makes the UNet pass each upsampler the
    # size of its skip connection, traced as a shape: then every size runs, not only multiples
    # of 64 pixels (the branch it takes for those is frozen by the trace).
    channels, side, width = int(config.in_channels), 9, int(config.cross_attention_dim)
    sample = torch.randn(2, channels, side, side)
    timestep = torch.tensor([999.0, 999.0])
    text = torch.randn(2, 77, width)
    shapes = [[-1, channels, -1, -1], [-1], [-1, -1, width]]
    if config.get("addition_embed_type") == "text_time":
        pooled = int(unet.add_embedding.linear_1.in_features) - 6 * int(
            config.addition_time_embed_dim
        )
        extra = (torch.randn(2, pooled), torch.tensor([[512.0, 512, 0, 0, 512, 512]] * 2))
        return (
            XLUNetExport(unet),
            (sample, timestep, text, *extra),
            [*shapes, [-1, pooled], [-1, 6]],
        )
    return UNetExport(unet), (sample, timestep, text), shapes


def _vae_parts(vae: Any) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    latent = int(vae.config.latent_channels)
    return VaeDecode(vae), VaeEncode(vae), latent


PARTS = {"unet": ("unet.xml",), "vae": ("vae_decoder.xml", "vae_encoder.xml")}
"""The exports, in a folder each: the UNet's named by the model, the VAE's by the model or
the TAESD that replaces it, so turning TAESD on or off exports nothing again."""


def _folder_name(source: str, part: str, identity: str, weights: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).name or source)[:60]
    return f"{slug}-{part}-{identity}-{weights}-ov{ov.__version__.split('-')[0]}"


def _write(folder: Path, models: dict[str, Any]) -> None:
    """Save ``models`` (file name -> ov.Model) into ``folder`` through a staging folder that is
    renamed into place, so a start killed mid-export leaves nothing half-written."""
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, model in models.items():
        ov.save_model(model, staging / name)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def export(pipe: Any, part: str, what: str, weights: str) -> dict[str, Any]:
    """The OpenVINO models of ``part`` ("unet" or "vae") of the PyTorch pipeline ``pipe``."""
    if part == "unet":
        module, example, shapes = _unet_parts(pipe.unet)
        with _ticking(f"exporting the UNet of {what} (once; minutes for an SD-sized model)"):
            return {"unet.xml": _compress(_export(module, example, shapes), weights)}
    decode, encode, latent = _vae_parts(pipe.vae)
    with _ticking(f"exporting the VAE of {what} (once)"):
        decoder = _export(decode, (torch.randn(1, latent, 8, 8),), [[-1, latent, -1, -1]])
        encoder = _export(encode, (torch.randn(1, 3, 64, 64),), [[-1, 3, -1, -1]])
        return {
            "vae_decoder.xml": _compress(decoder, weights),
            "vae_encoder.xml": _compress(encoder, weights),
        }


def _ensure(pipe: Any, part: str, source: str, identity: str, config: OpenVinoConfig) -> Path:
    """The folder of ``part``'s export, made now if there is none: from the full-weights export
    by compression where there is one (no second trace), else from the PyTorch model."""
    cache = Path(config.cache_dir)
    folder = cache / _folder_name(source, part, identity, config.weights)
    names = PARTS[part]
    if all((folder / name).is_file() for name in names):
        log.info("openvino: using the export of the %s of %s in %s", part, source, folder)
        return folder
    full = cache / _folder_name(source, part, identity, "full")
    if config.weights != "full" and all((full / name).is_file() for name in names):
        with _ticking(f"compressing the {part} of {source} to {config.weights} weights"):
            core = ov.Core()
            _write(folder, {n: _compress(core.read_model(full / n), config.weights) for n in names})
        return folder
    log.info("openvino: no export of the %s of %s in %s yet; making one", part, source, folder)
    try:
        _write(folder, export(pipe, part, source, config.weights))
    except EngineUnavailable:
        raise
    except Exception as exc:
        log.warning("openvino: the export of %s failed", source, exc_info=True)
        reason = first_line(exc)
        raise EngineUnavailable(
            f"The model {source!r} could not be exported to OpenVINO ({reason}); "
            "set IMAGINE_DEVICE=cpu to run it on PyTorch."
        ) from exc
    return folder


def _compile(core: Any, path: Path, precision: str) -> Any:
    config: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = precision
    return core.compile_model(core.read_model(path), "CPU", config)


def to_openvino(
    loaded: LoadedModel,
    config: OpenVinoConfig,
    identities: tuple[str, str],
    vae_source: str = "",
) -> None:
    """Export (once) and compile the UNet and VAE of ``loaded``, and put them in its pipelines
    in place of the PyTorch ones, whose weights are then freed.

    ``identities``: of the UNet's weights and of the VAE's (:func:`diffusers_download.identity`);
    ``vae_source``: the TAESD that replaces the model's VAE, if one does.
    """
    pipe = loaded.text2img
    unet_folder = _ensure(pipe, "unet", loaded.model, identities[0], config)
    vae_folder = _ensure(pipe, "vae", vae_source or loaded.model, identities[1], config)
    core = ov.Core()
    started = time.monotonic()
    unet = OVUNet(pipe.unet, _compile(core, unet_folder / "unet.xml", config.precision))
    vae = OVVae(
        pipe.vae,
        _compile(core, vae_folder / "vae_decoder.xml", config.precision),
        _compile(core, vae_folder / "vae_encoder.xml", config.precision),
    )
    log.info(
        "openvino: compiled in %.1f s (weights %s, precision %s: %s)",
        time.monotonic() - started,
        config.weights,
        config.precision,
        unet.precision,
    )
    for each in (loaded.text2img, loaded.img2img, loaded.inpaint):
        if each is not None:
            # past the pipeline's __setattr__, which would record the class in its config
            each.__dict__["unet"] = unet
            each.__dict__["vae"] = vae


__all__ = ["export", "to_openvino"]
