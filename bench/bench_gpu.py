# mypy: disable-error-code="no-untyped-call,attr-defined"
"""Benchmark: SD-Turbo, SDXL-Turbo and FLUX.1-schnell on one CUDA GPU, one JSON line per
configuration; without CUDA, one line that says it was skipped (exit 0).

Each model is its real architecture with random weights, built from the published configs in
code (speed does not depend on the weights' values; nothing is downloaded), in fp16 (FLUX in
bf16, as the engine runs them). The text encoders are left out: the pipelines are given
prompt embeddings of the real shapes, since encoding runs once per grid and is a small share of
it. Per configuration: ms per grid (p50 of RUNS after WARMUP), images/s and peak GPU memory;
torch.compile's first call is timed apart from its steady state.

Variants: ``sdpa`` (PyTorch's scaled-dot-product attention, diffusers' default: the baseline),
``classic-attention`` (diffusers' plain AttnProcessor), ``channels_last`` (UNet and VAE),
``compile`` (the UNet through torch.compile), and the decoder: the full VAE or TAESD.
The whole run is budgeted (BENCH_GPU_BUDGET seconds, default 420): a configuration that would
start past it prints a line that says it was skipped. Expected: about 5 minutes on an H100-class
GPU, most of it building FLUX and compiling. Run: ``.venv/bin/python bench/bench_gpu.py``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_diffusers import UNET as SD_UNET
from bench_diffusers import VAE as SD_VAE

RUNS, WARMUP = 10, 3
BUDGET = float(os.environ.get("BENCH_GPU_BUDGET", "420"))
STARTED = time.monotonic()

# stabilityai/sdxl-turbo unet/config.json
SDXL_UNET: dict[str, Any] = {
    **{k: v for k, v in SD_UNET.items() if k not in ("attention_head_dim", "block_out_channels")},
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "projection_class_embeddings_input_dim": 2816,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}
# SDXL's VAE, as madebyollin/sdxl-vae-fp16-fix runs it (no fp32 upcast for the decode).
SDXL_VAE: dict[str, Any] = {**SD_VAE, "scaling_factor": 0.13025, "force_upcast": False}
# black-forest-labs/FLUX.1-schnell transformer/config.json and vae/config.json
FLUX_TRANSFORMER: dict[str, Any] = {
    "attention_head_dim": 128,
    "guidance_embeds": False,
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}
FLUX_VAE: dict[str, Any] = {
    **SD_VAE,
    "latent_channels": 16,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "force_upcast": False,
}


@dataclass(frozen=True)
class Config:
    model: str
    size: int
    steps: int
    variant: str = "sdpa"
    decoder: str = "vae"
    batch: int = 4


CONFIGS = [
    Config("sd-turbo", 512, 1),
    Config("sd-turbo", 512, 1, "classic-attention"),
    Config("sd-turbo", 512, 1, "channels_last"),
    Config("sd-turbo", 512, 1, decoder="taesd"),
    Config("sd-turbo", 512, 1, "compile"),
    Config("sdxl-turbo", 512, 1),
    Config("sdxl-turbo", 512, 1, "channels_last"),
    Config("sdxl-turbo", 512, 1, decoder="taesd"),
    Config("sdxl-turbo", 1024, 4),
    Config("sdxl-turbo", 1024, 4, decoder="taesd"),
    Config("sdxl-turbo", 512, 1, "compile"),
    Config("flux-schnell", 1024, 4),
    Config("flux-schnell", 1024, 4, decoder="taesd"),
]


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def building(dtype: torch.dtype) -> Iterator[None]:
    """Parameters made on the GPU in ``dtype``: no host copy of 12 B random weights."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda"):
            yield
    finally:
        torch.set_default_dtype(previous)


def scheduler(model: str) -> Any:
    from diffusers import EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler

    if model == "flux-schnell":
        return FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )


def build(model: str, decoder: str, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """The pipeline and the keyword arguments of one grid (prompt embeddings of real shapes)."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderTiny,
        FluxPipeline,
        FluxTransformer2DModel,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(0)
    with building(dtype):
        if model == "flux-schnell":
            vae = AutoencoderTiny(latent_channels=16) if decoder == "taesd" else None
            pipe = FluxPipeline(
                scheduler=scheduler(model),
                vae=vae or AutoencoderKL(**FLUX_VAE),
                text_encoder=None,
                tokenizer=None,
                text_encoder_2=None,
                tokenizer_2=None,
                transformer=FluxTransformer2DModel(**FLUX_TRANSFORMER),
            )
            kwargs = {
                "prompt_embeds": torch.randn(1, 256, 4096),
                "pooled_prompt_embeds": torch.randn(1, 768),
                "max_sequence_length": 256,
            }
        elif model == "sdxl-turbo":
            vae = AutoencoderTiny() if decoder == "taesd" else AutoencoderKL(**SDXL_VAE)
            pipe = StableDiffusionXLPipeline(
                vae=vae,
                text_encoder=None,
                text_encoder_2=None,
                tokenizer=None,
                tokenizer_2=None,
                unet=UNet2DConditionModel(**SDXL_UNET),
                scheduler=scheduler(model),
            )
            kwargs = {
                "prompt_embeds": torch.randn(1, 77, 2048),
                "pooled_prompt_embeds": torch.randn(1, 1280),
            }
        else:
            vae = AutoencoderTiny() if decoder == "taesd" else AutoencoderKL(**SD_VAE)
            pipe = StableDiffusionPipeline(
                vae=vae,
                text_encoder=None,
                tokenizer=None,
                unet=UNet2DConditionModel(**SD_UNET),
                scheduler=scheduler(model),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
            kwargs = {"prompt_embeds": torch.randn(1, 77, 1024)}
    pipe.set_progress_bar_config(disable=True)
    return pipe, kwargs


def apply(pipe: Any, variant: str) -> None:
    from diffusers.models.attention_processor import AttnProcessor

    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    if variant == "classic-attention":
        denoiser.set_attn_processor(AttnProcessor())
    elif variant == "channels_last":
        for module in (denoiser, pipe.vae):
            module.to(memory_format=torch.channels_last)
    elif variant == "compile":
        pipe.unet = torch.compile(pipe.unet, fullgraph=False)


def timed(call: Callable[[], Any]) -> float:
    torch.cuda.synchronize()
    started = time.perf_counter()
    call()
    torch.cuda.synchronize()
    return time.perf_counter() - started


def measure(config: Config) -> dict[str, Any]:
    dtype = torch.bfloat16 if config.model.startswith("flux") else torch.float16
    pipe, kwargs = build(config.model, config.decoder, dtype)
    apply(pipe, config.variant)
    seeds = range(1, config.batch + 1)

    def grid() -> Any:
        return pipe(
            **kwargs,
            num_images_per_prompt=config.batch,
            generator=[torch.Generator("cuda").manual_seed(s) for s in seeds],
            height=config.size,
            width=config.size,
            num_inference_steps=config.steps,
            guidance_scale=0.0,
            output_type="pil",
        )

    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        first = timed(grid)
        for _ in range(WARMUP - 1):
            grid()
        times = [timed(grid) for _ in range(RUNS)]
    p50 = statistics.median(times)
    return {
        "bench": "gpu",
        "model": config.model,
        "size": config.size,
        "batch": config.batch,
        "steps": config.steps,
        "dtype": str(dtype).removeprefix("torch."),
        "variant": config.variant,
        "decoder": config.decoder,
        "ms_per_grid_p50": round(p50 * 1000, 1),
        "ms_per_grid_min": round(min(times) * 1000, 1),
        "images_per_s": round(config.batch / p50, 2),
        "first_call_s": round(first, 2),
        "runs": RUNS,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() // 2**20,
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
    }


def main() -> None:
    warnings.simplefilter("ignore")  # library chatter would break the JSON lines
    if not torch.cuda.is_available():
        emit({"bench": "gpu", "skipped": True, "reason": "PyTorch sees no CUDA device here."})
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    for config in CONFIGS:
        elapsed = time.monotonic() - STARTED
        if elapsed > BUDGET:
            emit(
                {
                    "bench": "gpu",
                    **config.__dict__,
                    "skipped": True,
                    "reason": f"the run's budget of {BUDGET:.0f} s was spent ({elapsed:.0f} s)",
                }
            )
            continue
        try:
            emit(measure(config))
        except Exception as exc:  # one failed configuration must not cost the others
            emit(
                {"bench": "gpu", **config.__dict__, "failed": f"{type(exc).__name__}: {exc}"[:300]}
            )
        finally:
            gc.collect()
            torch.cuda.empty_cache()
            if config.variant == "compile":
                torch._dynamo.reset()


if __name__ == "__main__":
    main()
