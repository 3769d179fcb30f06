"""The torch modules the OpenVINO backend exports, and the stand-ins that run the compiled
models inside diffusers' pipelines with the interface those pipelines call.

A stand-in keeps its original's ``config`` (pipelines read ``in_channels``, ``scaling_factor``,
``force_upcast``...) and, for SDXL, the tiny ``add_embedding`` whose input width the pipeline
checks; the original's weights are not kept.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput


class UNetExport(torch.nn.Module):
    """A UNet as ``(sample, timestep[batch], text) -> noise``, the shape that is exported."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor
    ) -> torch.Tensor:
        out: torch.Tensor = self.unet(sample, timestep, text, return_dict=False)[0]
        return out


class XLUNetExport(UNetExport):
    """SDXL's UNet, which also takes the pooled text embedding and the size/crop numbers."""

    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        text: torch.Tensor,
        text_embeds: torch.Tensor,
        time_ids: torch.Tensor,
    ) -> torch.Tensor:
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        out: torch.Tensor = self.unet(
            sample, timestep, text, added_cond_kwargs=added, return_dict=False
        )[0]
        return out


class VaeDecode(torch.nn.Module):
    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.vae.decode(latents, return_dict=False)[0]
        return out


class VaeEncode(torch.nn.Module):
    """The KL autoencoder's posterior parameters (mean and log-variance), or TAESD's latents."""

    def __init__(self, vae: Any) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        encoded = self.vae.encode(pixels)
        if hasattr(encoded, "latent_dist"):
            out: torch.Tensor = encoded.latent_dist.parameters
            return out
        latents: torch.Tensor = encoded.latents
        return latents


class _Compiled:
    """One compiled model and its infer request; one call at a time (the engine's own lock
    already serialises runs, this guards previews and direct callers alike)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.lock = threading.Lock()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        arrays = [np.ascontiguousarray(x.detach().to(torch.float32).cpu().numpy()) for x in inputs]
        with self.lock:
            self.request.infer(arrays)
            # the request reuses its output buffer on the next call: copy out of it
            return torch.from_numpy(self.request.get_output_tensor(0).data.copy())


class _StandIn(torch.nn.Module):
    """No parameters of its own: dtype and device say what the pipeline must feed it."""

    def __init__(self, original: Any) -> None:
        super().__init__()
        self.config = original.config
        self.precision = ""

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class OVUNet(_StandIn):
    def __init__(self, original: Any, compiled: Any) -> None:
        super().__init__(original)
        self.xl = original.config.get("addition_embed_type") == "text_time"
        if self.xl:
            self.add_embedding = original.add_embedding
        self.run = _Compiled(compiled)
        self.precision = str(compiled.get_property("INFERENCE_PRECISION_HINT"))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        *args: Any,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> Any:
        steps = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1)
        steps = steps.expand(sample.shape[0])
        inputs = [sample, steps, encoder_hidden_states]
        if self.xl:
            assert added_cond_kwargs is not None
            inputs += [added_cond_kwargs["text_embeds"], added_cond_kwargs["time_ids"]]
        noise = self.run(*inputs)
        return UNet2DConditionOutput(sample=noise) if return_dict else (noise,)


class _Latents:
    """TAESD's encoder output (diffusers' ``retrieve_latents`` reads ``.latents``)."""

    def __init__(self, latents: torch.Tensor) -> None:
        self.latents = latents


class OVVae(_StandIn):
    def __init__(self, original: Any, decoder: Any, encoder: Any) -> None:
        super().__init__(original)
        self.kl = hasattr(original, "quant_conv") or type(original).__name__ == "AutoencoderKL"
        self.decoder_run = _Compiled(decoder)
        self.encoder_run = _Compiled(encoder)

    def decode(self, latents: torch.Tensor, return_dict: bool = True, **kwargs: Any) -> Any:
        pixels = self.decoder_run(latents)
        return DecoderOutput(sample=pixels) if return_dict else (pixels,)

    def encode(self, pixels: torch.Tensor, return_dict: bool = True) -> Any:
        out = self.encoder_run(pixels)
        if not self.kl:
            return _Latents(out) if return_dict else (out,)
        posterior = DiagonalGaussianDistribution(out)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the OpenVINO VAE is called through encode() and decode()")


__all__ = ["OVUNet", "OVVae", "UNetExport", "VaeDecode", "VaeEncode", "XLUNetExport"]
