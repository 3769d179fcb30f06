"""Multi-prompts (``a::2 b::1 c::-0.5``) as a weighted combination of text embeddings.

Each part is encoded on its own; the positive parts are averaged with their weights into the
prompt embedding, and the negative-weight parts (with the ``--no`` text) into the negative one,
the side classifier-free guidance steers away from. Stable Diffusion and SDXL only: FLUX gets
the flattened prompt.
"""

from __future__ import annotations

from typing import Any

import torch

from imagine.engines.base import GenerateRequest

Encoded = tuple[torch.Tensor, torch.Tensor | None]
"""(per-token embeddings, pooled embedding or None)."""


def _encoder(pipe: Any, device: torch.device) -> Any:
    is_xl = getattr(pipe, "text_encoder_2", None) is not None

    def encode(text: str) -> Encoded:
        if is_xl:
            embeds, _, pooled, _ = pipe.encode_prompt(
                prompt=text,
                device=device,
                num_images_per_prompt=1,
                do_classifier_free_guidance=False,
            )
            return embeds, pooled
        embeds, _ = pipe.encode_prompt(text, device, 1, False)
        return embeds, None

    return encode


def _mix(parts: list[tuple[Encoded, float]]) -> Encoded:
    total = sum(weight for _, weight in parts)
    (embeds, pooled), first_weight = parts[0]
    embeds = embeds * (first_weight / total)
    pooled = None if pooled is None else pooled * (first_weight / total)
    for (more_embeds, more_pooled), weight in parts[1:]:
        embeds = embeds + more_embeds * (weight / total)
        if pooled is not None and more_pooled is not None:
            pooled = pooled + more_pooled * (weight / total)
    return embeds, pooled


def _unconditional(pipe: Any, encode: Any) -> Encoded:
    # SDXL was trained with zeros, not the empty prompt's embedding, as its unconditional input.
    if getattr(pipe.config, "force_zeros_for_empty_prompt", False):
        embeds, pooled = encode("")
        return torch.zeros_like(embeds), None if pooled is None else torch.zeros_like(pooled)
    result: Encoded = encode("")
    return result


def weighted_prompt_kwargs(
    pipe: Any, request: GenerateRequest, device: torch.device
) -> dict[str, torch.Tensor]:
    """Pipeline keyword arguments (``prompt_embeds`` ...) for ``request.weighted``."""
    encode = _encoder(pipe, device)
    positive = [(text, weight) for text, weight in request.weighted if weight > 0 and text.strip()]
    negative = [(text, -weight) for text, weight in request.weighted if weight < 0 and text.strip()]
    if request.negative_prompt.strip():
        negative.append((request.negative_prompt, 1.0))
    if not positive:
        positive = [(request.prompt, 1.0)]
    with torch.inference_mode():
        embeds, pooled = _mix([(encode(text), weight) for text, weight in positive])
        if negative:
            neg_embeds, neg_pooled = _mix([(encode(text), weight) for text, weight in negative])
        else:
            neg_embeds, neg_pooled = _unconditional(pipe, encode)
    kwargs = {"prompt_embeds": embeds, "negative_prompt_embeds": neg_embeds}
    if pooled is not None and neg_pooled is not None:
        kwargs["pooled_prompt_embeds"] = pooled
        kwargs["negative_pooled_prompt_embeds"] = neg_pooled
    return kwargs
