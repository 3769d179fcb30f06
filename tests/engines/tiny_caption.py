# mypy: disable-error-code="no-untyped-call"
"""A tiny, randomly initialised BLIP captioner saved to a folder, for /describe tests.

It has the parts of ``Salesforce/blip-image-captioning-base`` (a ViT vision encoder, a BERT text
decoder, a ``BertTokenizer`` whose start token is ``[DEC]``, a ``BlipImageProcessor``) at a size
that captions in milliseconds. Its captions are random words from its small vocabulary; the
engine loads it through its real ``from_pretrained`` path with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
    BlipTextConfig,
    BlipVisionConfig,
)

WORDS = (
    *("a", "an", "the", "of", "on", "in", "with", "and", "cat", "dog", "fox", "red", "blue"),
    *("green", "orange", "sitting", "standing", "picture", "photo", "painting", "tree", "sky"),
    *("sea", "house", "car", "man", "woman", "beach", "forest", "city", "night"),
)
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]")


def _tokenizer(folder: Path) -> BertTokenizer:
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join([*SPECIAL, ",", ".", *WORDS]) + "\n", encoding="utf-8")
    return BertTokenizer(vocab=str(vocab), bos_token="[DEC]")


def build_tiny_blip(folder: Path) -> Path:
    """Build the tiny captioner, ``save_pretrained`` it (model and processor) to ``folder``."""
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(folder)
    text = BlipTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        encoder_hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        projection_dim=32,
        # BLIP's decoder starts from [DEC] and stops at [SEP], as the real one does.
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.sep_token_id,
        sep_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = BlipVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=32,
        # BLIP's default (1e-10) would leave a random vision encoder blind to the image.
        initializer_range=0.2,
    )
    config = BlipConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        projection_dim=32,
        image_text_hidden_size=32,
    )
    BlipForConditionalGeneration(config).save_pretrained(folder)
    images = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder
