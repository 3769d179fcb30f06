# mypy: disable-error-code="no-untyped-call,attr-defined"
"""Benchmark: would torch.compile bring the diffusers grid under its goal? SD-Turbo's UNet (real
architecture, random weights; see bench_diffusers.py) for a 512² batch of four, one step, on this
CPU: eager against inductor with weight freezing, and what the first compiled call costs.
Prints one JSON line. Run: ``.venv/bin/python bench/bench_unet_compile.py`` (about 4 minutes).

The engine does not compile: each new image size or batch would pay the compile again.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quick import QUICK
from bench_diffusers import BATCH, SIZE, build


def best_seconds(unet: Any, inputs: tuple[Any, ...], repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            unet(inputs[0], inputs[1], encoder_hidden_states=inputs[2])
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as folder:
        unet = build(Path(folder)).unet.eval()
    side = SIZE // 8
    latents = torch.randn(BATCH, 4, side, side).to(memory_format=torch.channels_last)
    inputs = (latents, torch.tensor([999.0]), torch.randn(BATCH, 77, 1024))
    best_seconds(unet, inputs, 1)  # warm-up
    eager = best_seconds(unet, inputs)

    import torch._inductor.config as inductor

    inductor.freezing = True
    compiled = torch.compile(unet)
    started = time.perf_counter()
    best_seconds(compiled, inputs, 1)
    first_call = time.perf_counter() - started
    fast = best_seconds(compiled, inputs)
    result = {
        "bench": "unet_torch_compile_cpu",
        "quick": QUICK,
        "size": SIZE,
        "batch": BATCH,
        "unet_seconds_eager": round(eager, 2),
        "unet_seconds_compiled": round(fast, 2),
        "speedup": round(eager / fast, 2),
        "first_compiled_call_seconds": round(first_call, 1),
        "torch": torch.__version__,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
