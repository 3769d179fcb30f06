# mypy: disable-error-code="no-untyped-call,attr-defined"
"""Benchmark: SD-Turbo's architecture on this CPU, PyTorch against OpenVINO, through the
engine's own render path and its own OpenVINO export (:mod:`imagine.engines.diffusers_openvino`).

The UNet, VAE and CLIP text encoder are built from stabilityai/sd-turbo's published configs with
random weights (speed does not depend on the weights' values; no weights can be downloaded here),
and TAESD from AutoencoderTiny's defaults (madebyollin/taesd's architecture). Each backend —
PyTorch fp32, OpenVINO (its default precision for this CPU), OpenVINO with NNCF int8 weights —
runs in a process of its own, one after the other, so each has its own peak RSS: the time to
export (the int8 one compresses the first export), the first grid, and the steady state (median
of REPEATS) of a 512² grid of four tiles in one step with TAESD, on the same seeds. The parent
prints one JSON line with each backend's figures, the speed-ups and the PSNR of each OpenVINO
grid against PyTorch's. Run: ``.venv/bin/python bench/bench_diffusers.py`` (about 10 minutes on
two cores, most of it the one-off export).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import psutil
import torch
import transformers
from _quick import QUICK, pick
from diffusers import (
    AutoencoderTiny,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from imagine.engines.base import GenerateRequest, no_progress
from imagine.engines.diffusers_config import OpenVinoConfig
from imagine.engines.diffusers_device import tune_for_device
from imagine.engines.diffusers_load import FAMILIES, LoadedModel
from imagine.engines.diffusers_render import render

SIZE, BATCH, STEPS, GOAL_SECONDS, REPEATS = pick(512, 256), 4, 1, 12.0, pick(3, 1)
GOAL_SPEEDUP = 2.0
BACKENDS = ("pytorch", "openvino", "openvino-int8")
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
# stabilityai/sd-turbo vae/config.json (the Stable Diffusion KL autoencoder; bench_gpu.py's
# full-VAE decode).
if QUICK:  # a small UNet of the same kind (two blocks, a quarter of the channels): exported,
    # compiled and run in seconds, not minutes; the figures then say nothing of SD-Turbo's speed
    UNET = {
        **UNET, "block_out_channels": [80, 160], "attention_head_dim": [5, 10],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
        "norm_num_groups": 16,
    }  # fmt: skip

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


def build(folder: Path) -> Any:
    """SD-Turbo with TAESD in place of the full VAE, as the engine runs it with IMAGINE_TAESD=1."""
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderTiny(),
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
    pipe.set_progress_bar_config(disable=True)
    return pipe


def loaded(pipe: Any, backend: str) -> LoadedModel:
    return LoadedModel(
        model="sd-turbo-architecture-random-weights",
        family=FAMILIES["sd-turbo"],
        device=torch.device("cpu"),
        text2img=pipe,
        img2img=None,
        inpaint=None,
        has_taesd=True,
        native_size=SIZE,
        multiple=8,
        backend="openvino" if backend.startswith("openvino") else "pytorch",
    )


def grid(model: LoadedModel) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds of this process (all its threads) and the tiles of one grid.

    CPU seconds are the fairer comparison on a shared machine: other work stretches the wall
    time of whichever backend it overlaps, while the work each backend does stays its own."""
    request = GenerateRequest(PROMPT, SIZE, SIZE, tuple(range(1, BATCH + 1)), steps=STEPS)
    started, cpu = time.perf_counter(), time.process_time()
    tiles = render(model, request, no_progress)
    took, cpu_took = time.perf_counter() - started, time.process_time() - cpu
    return took, cpu_took, np.stack([np.asarray(tile, dtype=np.uint8) for tile in tiles])


def run_backend(backend: str, cache: Path) -> dict[str, Any]:
    """One backend in this process: its figures, and its first grid saved beside the cache."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        pipe = build(Path(folder))
        build_seconds = time.perf_counter() - started
    model = loaded(pipe, backend)
    export_seconds = 0.0
    if backend == "pytorch":
        tune_for_device(pipe, torch.device("cpu"))  # as the engine does on load
    else:
        from imagine.engines.diffusers_openvino import to_openvino

        weights = "int8" if backend.endswith("int8") else "full"
        started = time.perf_counter()
        config = OpenVinoConfig(cache_dir=str(cache), weights=weights)
        to_openvino(model, config, ("random", "random"), "taesd")
        export_seconds = time.perf_counter() - started  # export (or compression) and compile
        del pipe
        gc.collect()
    first, _, image = grid(model)
    runs = [grid(model)[:2] for _ in range(REPEATS)]
    np.save(cache / f"{backend}.npy", image)
    return {
        "build_seconds": round(build_seconds, 1),
        "export_and_compile_seconds": round(export_seconds, 1),
        "first_grid_seconds": round(first, 2),
        "grid_seconds": round(statistics.median(wall for wall, _ in runs), 2),
        "grid_cpu_seconds": round(statistics.median(cpu for _, cpu in runs), 2),
        "load_average": round(os.getloadavg()[0], 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "rss_after_mb": psutil.Process().memory_info().rss // 2**20,
    }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return round(10 * np.log10(255.0**2 / mse), 1) if mse else float("inf")


def main() -> None:
    warnings.simplefilter("ignore")  # library deprecation chatter would break the one JSON line
    if len(sys.argv) == 3:  # a child: one backend
        sys.stdout.write(json.dumps(run_backend(sys.argv[1], Path(sys.argv[2]))) + "\n")
        return
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:
        for backend in BACKENDS:
            child = subprocess.run(
                [sys.executable, __file__, backend, cache],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if child.returncode != 0:
                sys.stderr.write(child.stderr[-4000:])
                raise SystemExit(f"the {backend} run failed")
            figures[backend] = json.loads(child.stdout.strip().splitlines()[-1])
        images = {backend: np.load(Path(cache) / f"{backend}.npy") for backend in BACKENDS}
    pytorch = figures["pytorch"]["grid_seconds"]
    openvino = figures["openvino"]["grid_seconds"]
    cpu = {backend: figures[backend]["grid_cpu_seconds"] for backend in BACKENDS}
    import openvino as ov

    result = {
        "bench": "diffusers_sd_turbo_cpu",
        "quick": QUICK,
        "size": SIZE,
        "batch": BATCH,
        "steps": STEPS,
        "decoder": "taesd",
        "median_of": REPEATS,
        **{backend.replace("-", "_"): figures[backend] for backend in BACKENDS},
        "openvino_speedup": round(pytorch / openvino, 2),
        "openvino_int8_speedup": round(pytorch / figures["openvino-int8"]["grid_seconds"], 2),
        "openvino_cpu_speedup": round(cpu["pytorch"] / cpu["openvino"], 2),
        "openvino_int8_cpu_speedup": round(cpu["pytorch"] / cpu["openvino-int8"], 2),
        "psnr_openvino_vs_pytorch_db": psnr(images["openvino"], images["pytorch"]),
        "psnr_int8_vs_openvino_db": psnr(images["openvino-int8"], images["openvino"]),
        "goal_grid_seconds": GOAL_SECONDS,
        "goal_speedup": GOAL_SPEEDUP,
        "meets_goal": openvino <= GOAL_SECONDS and pytorch / openvino >= GOAL_SPEEDUP,
        "openvino_precision": str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "openvino_version": ov.__version__.split("-")[0],
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
