"""/shorten for the diffusers engine: the model's own CLIP tokenizer and text encoder.

Token counts come from the pipeline's tokenizer, word by word (CLIP's BPE never merges across
spaces, so they add up to the prompt's count). A word's weight is how far the text embedding
moves when the word is left out: every such ablation, and the whole text, goes through the text
encoder in one batch. The embedding compared is both CLIP's pooled one and the mean over the
tokens it reads, since SD's UNet attends to every token and SDXL also takes the pooled one.

Each ``::`` part is encoded on its own, as :mod:`imagine.engines.diffusers_prompts` renders
them, so the token limit holds per part. Runs in the engine's worker thread.
"""

from __future__ import annotations

from typing import Any

import torch

from imagine.engines.base import PromptAnalysis
from imagine.engines.diffusers_load import LoadedModel
from imagine.prompt.shorten import Piece, analysis, normalised, part_weights, pieces


def clip_parts(loaded: LoadedModel) -> tuple[Any, Any] | None:
    """The pipeline's (tokenizer, text encoder) when every tokenizer it has is CLIP's; None for
    FLUX, SD3 and others that also read the prompt through T5 (with another limit)."""
    pipe = loaded.text2img
    tokenizers = [getattr(pipe, name, None) for name in ("tokenizer", "tokenizer_2", "tokenizer_3")]
    if tokenizers[0] is None or getattr(pipe, "text_encoder", None) is None:
        return None
    if not all(t is None or type(t).__name__.startswith("CLIPTokenizer") for t in tokenizers):
        return None
    return pipe.tokenizer, pipe.text_encoder


def describe_tokenizer(loaded: LoadedModel) -> str:
    """Capabilities.tokenizer: what counts, in words; "" when /shorten must estimate."""
    parts = clip_parts(loaded)
    if parts is None:
        return ""
    return f"the model's own CLIP tokenizer ({int(parts[0].model_max_length)} tokens)"


def _embeddings(tokenizer: Any, encoder: Any, texts: list[str]) -> torch.Tensor:
    """One row per text: its pooled embedding and its mean token embedding, each unit length."""
    batch = tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    device = encoder.device
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    with torch.inference_mode():
        output = encoder(input_ids=ids)
    hidden = output.last_hidden_state.float()
    pooled = getattr(output, "pooler_output", None)
    pooled = output.text_embeds if pooled is None else pooled
    keep = mask.unsqueeze(-1).float()
    mean = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
    unit = torch.nn.functional.normalize
    return torch.cat([unit(pooled.float(), dim=-1), unit(mean, dim=-1)], dim=-1)


def analyse(loaded: LoadedModel, text: str) -> PromptAnalysis:
    """Token counts, cut words and weights of ``text`` as this model reads it."""
    parts = clip_parts(loaded)
    assert parts is not None, "analyse() needs a CLIP tokenizer (see describe_tokenizer)"
    tokenizer, encoder = parts
    limit = int(tokenizer.model_max_length) - 2  # less the start and end tokens
    found = pieces(text)
    tokens = [
        len(tokenizer(p.text, add_special_tokens=False).input_ids) if p.kind == "word" else 0
        for p in found
    ]
    part_of, part_weight = part_weights(found)
    # The words each part's text encoder reads: those within the limit of their part.
    readable: dict[int, list[int]] = {}
    used: dict[int, int] = {}
    for index, piece in enumerate(found):
        if piece.kind != "word":
            continue
        part = part_of[index]
        used[part] = used.get(part, 0) + tokens[index]
        if used[part] <= limit:
            readable.setdefault(part, []).append(index)
    texts: list[str] = []
    rows: list[tuple[int, int, int]] = []  # (word, row of its part's whole text, row left out)
    for words in readable.values():
        whole = len(texts)
        texts.append(_joined(found, words))
        for word in words:
            rows.append((word, whole, len(texts)))
            texts.append(_joined(found, [w for w in words if w != word]))
    raw = [0.0] * len(found)
    if texts:
        embedded = _embeddings(tokenizer, encoder, texts)
        strongest = max(abs(w) for w in part_weight) or 1.0
        for word, whole, left_out in rows:
            moved = 1.0 - float((embedded[whole] * embedded[left_out]).sum()) / 2.0
            raw[word] = max(0.0, moved) * abs(part_weight[part_of[word]]) / strongest
    return analysis(
        found, tokens, normalised(raw), limit, describe_tokenizer(loaded), per_part=True
    )


def _joined(found: list[Piece], words: list[int]) -> str:
    return " ".join(found[i].text for i in words)
