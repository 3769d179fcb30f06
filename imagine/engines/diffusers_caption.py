"""/describe for the diffusers engine: a BLIP captioner (``IMAGINE_CAPTION_MODEL``), loaded lazily.

Imported only from the engine's worker thread, like :mod:`imagine.engines.diffusers_load`. BLIP
writes plain captions ("a cat sitting on a couch"); beam search gives the likeliest ones, and
nucleus sampling, seeded by the image itself, more when the beams agree. The same image always
gets the same prompts.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipProcessor
from transformers.utils import logging as transformers_logging

from imagine.codes import ResultCode
from imagine.engines.base import EngineError, first_line

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 40
SAMPLING_ROUNDS = 3
"""Seeded sampling rounds tried when the beams give fewer distinct captions than asked for."""
_ARTEFACTS = re.compile(r"\b(?:arafed|araffe|arafly|arafy|araf)\b\s*", re.IGNORECASE)
"""Words BLIP-base makes up from its training captions' noise ("arafed cat on a couch")."""


_SETTING = (
    "set IMAGINE_CAPTION_MODEL to a BLIP captioning model (a Hugging Face id or a folder), or "
    "empty to turn /describe off"
)


def _unloadable(model: str, offline: bool, exc: Exception) -> EngineError:
    """One sentence for the operator: what is wrong with the captioner, and what to set."""
    folder = Path(model).expanduser()
    if model.startswith(("/", "./", "../", "~")) and not folder.is_dir():
        sentence = f"IMAGINE_CAPTION_MODEL={model!r} is not a folder that exists; {_SETTING}."
    elif folder.is_dir():
        sentence = (
            f"The folder {model!r} (IMAGINE_CAPTION_MODEL) holds no BLIP captioning model "
            f"with its processor; {_SETTING}."
        )
    elif isinstance(exc, OSError):
        where = "and HF_HUB_OFFLINE is set" if offline else "and could not be downloaded"
        sentence = (
            f"The image captioner {model!r} that /describe needs is not in the Hugging Face "
            f"cache {where}; download it once with `hf download {model}`, or {_SETTING}."
        )
    else:
        reason = first_line(exc, 160)
        sentence = f"The image captioner {model!r} could not be loaded ({reason}); {_SETTING}."
    return EngineError(ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND, sentence)


def clean(caption: str) -> str:
    """A caption as a prompt: BLIP's made-up words out, punctuation against its word."""
    caption = _ARTEFACTS.sub("", caption)
    caption = re.sub(r"\s+([,.!?;:'])", r"\1", caption)
    return re.sub(r"\s+", " ", caption).strip(" .,")


@dataclass
class Captioner:
    model: str
    network: Any
    processor: Any
    device: torch.device

    def _generate(self, image: Image.Image, count: int, **options: Any) -> list[str]:
        inputs = self.processor(images=image.convert("RGB"), return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.network.dtype)
        with torch.inference_mode():
            output = self.network.generate(
                pixel_values=pixels,
                max_new_tokens=MAX_NEW_TOKENS,
                num_return_sequences=count,
                **options,
            )
        texts: list[str] = self.processor.batch_decode(output, skip_special_tokens=True)
        return [clean(text) for text in texts]

    def captions(self, image: Image.Image, count: int) -> list[str]:
        """``count`` distinct captions of ``image``, the likeliest first (fewer only if the model
        keeps writing the same few)."""
        found: list[str] = []

        def add(texts: list[str]) -> None:
            found.extend(t for t in texts if t and t not in found)

        # BLIP's own captioning settings, less its habit of repeating a phrase.
        add(self._generate(image, count, num_beams=max(count, 4), no_repeat_ngram_size=3))
        seed = int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:4], "big")
        for round_ in range(SAMPLING_ROUNDS):
            if len(found) >= count:
                break
            # Seeded from the pixels, and without touching the process-wide generator.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed + round_)
                add(
                    self._generate(
                        image, count * 2, do_sample=True, top_p=0.9, no_repeat_ngram_size=3
                    )
                )
        return found[:count]


def load_captioner(model: str, device: torch.device, offline: bool) -> Captioner:
    """The BLIP captioner ``model`` on ``device``, or an EngineError saying what to set."""
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        processor = BlipProcessor.from_pretrained(model, local_files_only=offline)
        network: Any = BlipForConditionalGeneration.from_pretrained(
            model, dtype=dtype, local_files_only=offline
        )
    except Exception as exc:  # OSError (not found), ValueError (not a BLIP), a corrupt file
        log.warning("captioner %r could not be loaded", model, exc_info=True)
        raise _unloadable(model, offline, exc) from exc
    network.to(device).eval()
    log.info("diffusers: captioner %s loaded on %s, %s", model, device, dtype)
    return Captioner(model=model, network=network, processor=processor, device=device)
