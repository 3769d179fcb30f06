# mypy: disable-error-code="no-untyped-call,attr-defined"
"""A tiny, randomly initialised IP-Adapter and CLIP image encoder for a tiny pipeline's UNet, saved
the way h94/IP-Adapter lays them out (``models/<weights>.safetensors`` beside
``models/image_encoder``), so the engine loads them through diffusers' real ``load_ip_adapter``."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

WEIGHT = "models/ip-adapter_tiny.safetensors"
"""IMAGINE_IP_ADAPTER_WEIGHT for the folder :func:`build_tiny_ip_adapter` writes."""
_IMAGE_EMBEDS = 32
_TOKENS = 4  # a plain IP-Adapter's image tokens


def _hidden_size(unet: UNet2DConditionModel, name: str) -> int:
    """The width of the attention ``name`` (as diffusers' loader works it out)."""
    channels = list(unet.config.block_out_channels)
    if name.startswith("mid_block"):
        return int(channels[-1])
    block = int(name.split(".")[1])
    return int(list(reversed(channels))[block] if name.startswith("up_blocks") else channels[block])


def build_tiny_ip_adapter(folder: Path, pipeline: Path) -> Path:
    """The adapter for the UNet of the pipeline folder ``pipeline``, written under ``folder``."""
    torch.manual_seed(3)
    unet = UNet2DConditionModel.from_pretrained(pipeline / "unet")
    cross = int(unet.config.cross_attention_dim)
    tensors = {
        "image_proj.proj.weight": torch.randn(_TOKENS * cross, _IMAGE_EMBEDS) * 0.5,
        "image_proj.proj.bias": torch.zeros(_TOKENS * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key = 1  # the loader numbers the cross-attentions 1, 3, 5, ... in processor order
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = _hidden_size(unet, name)
        tensors[f"ip_adapter.{key}.to_k_ip.weight"] = torch.randn(hidden, cross)
        tensors[f"ip_adapter.{key}.to_v_ip.weight"] = torch.randn(hidden, cross) * 2.0
        key += 2
    target = folder / WEIGHT
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target))
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=_IMAGE_EMBEDS,
        )
    )
    encoder.save_pretrained(target.parent / "image_encoder")
    return folder
