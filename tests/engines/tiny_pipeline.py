# mypy: disable-error-code="no-untyped-call,attr-defined"
"""A tiny, randomly initialised Stable Diffusion pipeline saved to a folder, for engine tests.

It has the real architecture's parts (UNet2DConditionModel, AutoencoderKL with the usual 8x
downscale, CLIPTextModel with a CLIPTokenizer, an Euler scheduler) at a size that runs a 64x64
batch of four in well under a second on a CPU, and an AutoencoderTiny for the TAESD path. The
engine loads it back through its real ``from_pretrained`` path with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
_MERGES = ("c a", "ca t</w>", "d o", "do g</w>", "r e", "re d</w>", "s e", "se a</w>")


def _write_tokenizer_files(folder: Path) -> Path:
    """A byte-level BPE vocabulary over ASCII letters and digits, plus a few merged words."""
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = [_BOS, _EOS, *symbols, *(f"{s}</w>" for s in symbols)]
    tokens += [merge.replace(" ", "") for merge in _MERGES]
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges = "#version: 0.2\n" + "\n".join(_MERGES) + "\n"
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    return folder


def _tokenizer(folder: Path) -> CLIPTokenizer:
    files = _write_tokenizer_files(folder)
    tokenizer: CLIPTokenizer = CLIPTokenizer.from_pretrained(str(files), model_max_length=77)
    return tokenizer


def _text_config(tokenizer: CLIPTokenizer) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _louder(text_encoder: torch.nn.Module) -> torch.nn.Module:
    """Random weights make the prompt's pull on the picture faint next to the seed's; stronger
    text embeddings make it visible, as it is in a trained model."""
    norm = next(m for n, m in text_encoder.named_modules() if n.endswith("final_layer_norm"))
    with torch.no_grad():
        norm.weight.mul_(30.0)
    return text_encoder


def _vae() -> AutoencoderKL:
    # Four blocks give the real 8x latent downscale, so sizes behave as with a real model.
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        sample_size=64,
        # Like SD's 0.18215, chosen so that encoded images have about unit variance, the scale
        # the scheduler's noise levels assume (this random encoder's output is about 0.25).
        scaling_factor=4.0,
    )
    # A trained VAE's posterior is nearly deterministic; a random one's variance would drown
    # img2img's init image in sampling noise. Pin the log-variance half of its output at -30.
    with torch.no_grad():
        vae.quant_conv.weight[4:].zero_()
        vae.quant_conv.bias[4:].fill_(-30.0)
    return vae


def _scheduler() -> EulerDiscreteScheduler:
    """SD-Turbo's: Euler with trailing timesteps, so one step starts from pure noise."""
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )


def build_tiny_pipeline(folder: Path) -> Path:
    """Build the tiny SD pipeline, ``save_pretrained`` it to ``folder``; return the folder."""
    torch.manual_seed(0)
    tokenizer = _tokenizer(folder / "_vocab")
    pipeline = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_louder(CLIPTextModel(_text_config(tokenizer))),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(
            sample_size=8,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
        ),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
    return folder


def build_tiny_sdxl(folder: Path) -> Path:
    """The same at SDXL's shape: two text encoders (the second pooled) and time conditioning."""
    torch.manual_seed(0)
    tokenizer = _tokenizer(folder / "_vocab")
    pipeline = StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=_louder(CLIPTextModel(_text_config(tokenizer))),
        text_encoder_2=_louder(CLIPTextModelWithProjection(_text_config(tokenizer))),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=UNet2DConditionModel(
            sample_size=8,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            # six size/crop numbers of 8 features each, plus the 32-wide pooled text embedding
            projection_class_embeddings_input_dim=6 * 8 + 32,
            cross_attention_dim=64,  # both encoders' 32 features, concatenated
        ),
        scheduler=_scheduler(),
    )
    pipeline.save_pretrained(folder)
    return folder


def build_tiny_taesd(folder: Path) -> Path:
    """A tiny AutoencoderTiny (the TAESD architecture, 8x downscale, 4 latent channels)."""
    torch.manual_seed(1)
    taesd = AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    )
    taesd.save_pretrained(folder)
    return folder
