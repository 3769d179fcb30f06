# mypy: disable-error-code="no-untyped-call,attr-defined"
"""Benchmark: SD-Turbo's architecture on this CPU, through the engine's own render path.

The UNet, VAE and CLIP text encoder are built from stabilityai/sd-turbo's published configs with
random weights (speed does not depend on the weights' values; no weights can be downloaded here),
and TAESD from AutoencoderTiny's defaults (madebyollin/taesd's architecture). It times a 512²
grid of four tiles in one step, with the full VAE and with TAESD, and the batched call against
four single calls. Prints one JSON line. Run: ``.venv/bin/python bench/bench_diffusers.py``.
"""

from __future__ import annotations

import json
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from imagine.engines.base import GenerateRequest, no_progress
from imagine.engines.diffusers_load import FAMILIES, LoadedModel, tune_for_device
from imagine.engines.diffusers_render import render

SIZE, BATCH, STEPS, GOAL_SECONDS, REPEATS = 512, 4, 1, 12.0, 2
PROMPT = "a lighthouse on a cliff at sunset, oil painting"

# stabilityai/sd-turbo unet/config.json (the Stable Diffusion 2.1 UNet).
UNET: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": [5, 10, 20, 20],
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "only_cross_attention": False,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "use_linear_projection": True,
}
# stabilityai/sd-turbo vae/config.json (the Stable Diffusion KL autoencoder).
VAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 768,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# stabilityai/sd-turbo text_encoder/config.json (OpenCLIP ViT-H/14's text tower).
TEXT_ENCODER: dict[str, Any] = {
    "hidden_act": "gelu",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 16,
    "num_hidden_layers": 23,
    "projection_dim": 512,
    "vocab_size": 49408,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}


def _tokenizer(folder: Path) -> Any:
    """A CLIP tokenizer over single letters: tokenising costs nothing next to the networks."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [",", "."]
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(f"{c}</w>" for c in letters)]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


def build(folder: Path) -> tuple[Any, Any]:
    """SD-Turbo with the full VAE, and the same pipeline with TAESD in place of the VAE."""
    torch.manual_seed(0)
    full = StableDiffusionPipeline(
        vae=AutoencoderKL(**VAE),
        text_encoder=CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER)),
        tokenizer=_tokenizer(folder),
        unet=UNet2DConditionModel(**UNET),
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            timestep_spacing="trailing",
            steps_offset=1,
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    tiny = StableDiffusionPipeline(**{**full.components, "vae": AutoencoderTiny()})
    for pipe in (full, tiny):
        pipe.set_progress_bar_config(disable=True)
        tune_for_device(pipe, torch.device("cpu"))  # as the engine does on load
    return full, tiny


def loaded(pipe: Any, taesd: bool) -> LoadedModel:
    return LoadedModel(
        model="sd-turbo architecture, random weights",
        family=FAMILIES["sd-turbo"],
        device=torch.device("cpu"),
        text2img=pipe,
        img2img=None,
        inpaint=None,
        has_taesd=taesd,
        native_size=SIZE,
        multiple=8,
    )


def seconds(model: LoadedModel, seeds: tuple[int, ...], repeats: int = REPEATS) -> float:
    """Best of ``repeats`` runs: the least disturbed by other work on the machine."""
    request = GenerateRequest(PROMPT, SIZE, SIZE, seeds, steps=STEPS)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        render(model, request, no_progress)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    warnings.simplefilter("ignore")  # library deprecation chatter would break the one JSON line
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        full, tiny = build(Path(folder))
        build_seconds = time.perf_counter() - started
    with_taesd, with_vae = loaded(tiny, True), loaded(full, False)
    seeds = tuple(range(1, BATCH + 1))
    seconds(with_taesd, seeds, 1)  # warm-up: first-call allocations and kernel selection
    grid_taesd = seconds(with_taesd, seeds)
    grid_vae = seconds(with_vae, seeds)
    singles_taesd = sum(seconds(with_taesd, (seed,)) for seed in seeds)
    result = {
        "bench": "diffusers_sd_turbo_cpu",
        "size": SIZE,
        "batch": BATCH,
        "steps": STEPS,
        "best_of": REPEATS,
        "grid_seconds_taesd": round(grid_taesd, 2),
        "grid_seconds_full_vae": round(grid_vae, 2),
        "four_single_calls_seconds_taesd": round(singles_taesd, 2),
        "batched_speedup": round(singles_taesd / grid_taesd, 2),
        "goal_grid_seconds_taesd": GOAL_SECONDS,
        "meets_goal": grid_taesd <= GOAL_SECONDS,
        "build_seconds": round(build_seconds, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
