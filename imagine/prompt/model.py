"""One parsed prompt: what to draw and how, stored with the job so 🔄 and variations repeat it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from imagine.prompt.permutations import escape
from imagine.prompt.weights import NO_WEIGHT

SCHEMA = 1
"""Version of the :meth:`ImaginePrompt.to_dict` layout, stored alongside it."""


def format_number(value: float) -> str:
    """The shortest digits that read back as ``value``, never in exponent notation (the prompt
    language has none): 1e-05 → "0.00001", 2.0 → "2"."""
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _weighted(text: str, weight: float) -> str:
    # "a:" + "::1" would read as "a" then ":1"; a space keeps the colon with the text.
    gap = " " if text.endswith(":") else ""
    return f"{text}{gap}::{format_number(weight)}"


@dataclass(frozen=True)
class ImaginePrompt:
    image_urls: tuple[str, ...] = ()
    """Leading http(s) image links; the first is the img2img init image."""
    parts: tuple[tuple[str, float], ...] = ()
    """Multi-prompt parts, text then ``--no`` items, weights divided by the positive total."""
    negative: tuple[str, ...] = ()
    """The parts with a negative weight (``--no`` items included), in order."""
    aspect: tuple[int, int] = (1, 1)
    seed: int | None = None
    chaos: int = 0
    stylize: int = 100
    quality: float = 1.0
    stop: int = 100
    weird: int = 0
    style: str | None = None
    tile: bool = False
    image_weight: float = 1.0
    version: str | None = None
    """``"6"``, ``"5.2"``, ``"niji 6"`` or ``"niji"``; None: the server's default model."""
    speed: str | None = None
    """``"fast"``, ``"relax"`` or ``"turbo"``: a priority hint for the queue."""
    zoom: float | None = None
    """Custom Zoom's factor (``--zoom``, 1–2); None on any other prompt."""
    draft: bool = False
    """``--draft``: half the steps at a smaller size (:func:`imagine.prompt.mapping.draft_size`)."""
    style_refs: tuple[str, ...] = ()
    """``--sref`` links: images whose style (not content) the render takes."""
    style_weight: int = 100
    """``--sw`` 0–1000: how strongly the style references pull."""
    omni_ref: str | None = None
    """``--oref`` (``--cref``) link: an image whose subject the render puts in."""
    omni_weight: int = 100
    """``--ow`` (``--cw``) 1–1000: how strongly the omni reference pulls."""

    @property
    def references(self) -> tuple[str, ...]:
        """The reference links, style first then omni: the order their images are stored in."""
        return (*self.style_refs, *((self.omni_ref,) if self.omni_ref else ()))

    @property
    def text(self) -> str:
        """The positive parts joined: the prompt for an engine that cannot weigh parts."""
        return ", ".join(words for words, weight in self.parts if weight > 0)

    @property
    def negative_prompt(self) -> str:
        return ", ".join(self.negative)

    def _prompt_text(self) -> tuple[str, list[str]]:
        """The text to print and the items to print as ``--no``, chosen so they parse back."""
        first, rest = (self.parts[0], self.parts[1:]) if self.parts else (None, ())
        no_safe = all(weight == NO_WEIGHT and "," not in words for words, weight in rest)
        if first is not None and first[1] == 1.0 and no_safe:
            return first[0], [words for words, _ in rest]
        if first is not None and no_safe and first[1] == NO_WEIGHT and "," not in first[0]:
            return "", [words for words, _ in self.parts]  # image prompt with --no only
        return " ".join(_weighted(words, weight) for words, weight in self.parts), []

    def normalised(self) -> str:
        """This prompt in canonical form: ``parse(p.normalised()) == [p]`` for a parsed ``p``."""
        text, no_items = self._prompt_text()
        # fsum, as the parser sums them: a plain sum can round 1e-20 above a total of 0.
        if not no_items and not self.image_urls and math.fsum(w for _, w in self.parts) <= 0:
            # Written out as `::` weights, the --no items would make the text's weights add up
            # to 0 or less, which the parser refuses: give them back as --no.
            for candidate in self._no_renderings():
                if _reparses(candidate, self):
                    return candidate
        return self._render(text, no_items)

    def _no_renderings(self) -> list[str]:
        """Renderings that print a trailing run of equally weighted parts as ``--no`` items,
        the text's weights scaled so those items come back at their weight (longest run first)."""
        renderings = []
        last = self.parts[-1][1] if self.parts else 0.0
        if last >= 0:
            return []
        run = 0
        for words, weight in reversed(self.parts):
            if weight != last or "," in words or not words.strip():
                break
            run += 1
        for count in range(run, 0, -1):
            head, tail = self.parts[:-count], self.parts[-count:]
            scale = NO_WEIGHT / last
            if not head or math.fsum(w * scale for _, w in head) <= 0:
                continue
            text = " ".join(_weighted(words, weight * scale) for words, weight in head)
            renderings.append(self._render(text, [words for words, _ in tail]))
        return renderings

    def _render(self, text: str, no_items: list[str]) -> str:
        pieces = [*self.image_urls, text] if text else [*self.image_urls]
        if self.aspect != (1, 1):
            pieces.append(f"--ar {self.aspect[0]}:{self.aspect[1]}")
        if no_items:
            pieces.append("--no " + ", ".join(no_items))
        numbers = (
            ("chaos", self.chaos, 0),
            ("stylize", self.stylize, 100),
            ("quality", self.quality, 1.0),
            ("stop", self.stop, 100),
            ("weird", self.weird, 0),
            ("iw", self.image_weight, 1.0),
        )
        pieces.extend(
            f"--{name} {format_number(v)}" for name, v, default in numbers if v != default
        )
        if self.seed is not None:
            pieces.append(f"--seed {self.seed}")
        if self.style is not None:
            pieces.append(f"--style {self.style}")
        if self.tile:
            pieces.append("--tile")
        if self.version is not None:
            niji = self.version.startswith("niji")
            pieces.append(f"--{self.version}" if niji else f"--v {self.version}")
        if self.speed is not None:
            pieces.append(f"--{self.speed}")
        if self.zoom is not None:
            pieces.append(f"--zoom {format_number(self.zoom)}")
        if self.draft:
            pieces.append("--draft")
        if self.style_refs:
            pieces.append("--sref " + " ".join(self.style_refs))
            if self.style_weight != 100:
                pieces.append(f"--sw {self.style_weight}")
        if self.omni_ref:
            pieces.append(f"--oref {self.omni_ref}")
            if self.omni_weight != 100:
                pieces.append(f"--ow {self.omni_weight}")
        return escape(" ".join(pieces))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (lists for tuples) with a ``schema`` number."""
        # Field by field, not dataclasses.asdict: asdict deep-copies every value, which made it
        # the costliest step of accepting a job.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["image_urls"] = list(self.image_urls)
        data["parts"] = [[words, weight] for words, weight in self.parts]
        data["negative"] = list(self.negative)
        data["aspect"] = list(self.aspect)
        data["style_refs"] = list(self.style_refs)
        data["schema"] = SCHEMA
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImaginePrompt:
        """The prompt :meth:`to_dict` stored. Raises ValueError for a dict it did not write."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"Not a stored prompt: unknown schema {data.get('schema')!r}")
        try:
            width, height = data["aspect"]
            return cls(
                image_urls=tuple(str(url) for url in data["image_urls"]),
                parts=tuple((str(words), float(weight)) for words, weight in data["parts"]),
                negative=tuple(str(words) for words in data["negative"]),
                aspect=(int(width), int(height)),
                seed=None if data["seed"] is None else int(data["seed"]),
                chaos=int(data["chaos"]),
                stylize=int(data["stylize"]),
                quality=float(data["quality"]),
                stop=int(data["stop"]),
                weird=int(data["weird"]),
                style=None if data["style"] is None else str(data["style"]),
                tile=bool(data["tile"]),
                image_weight=float(data["image_weight"]),
                version=None if data["version"] is None else str(data["version"]),
                speed=None if data["speed"] is None else str(data["speed"]),
                zoom=None if data.get("zoom") is None else float(data["zoom"]),
                # absent from prompts stored before --draft, --sref and --oref existed
                draft=bool(data.get("draft", False)),
                style_refs=tuple(str(url) for url in data.get("style_refs", ())),
                style_weight=int(data.get("style_weight", 100)),
                omni_ref=None if data.get("omni_ref") is None else str(data["omni_ref"]),
                omni_weight=int(data.get("omni_weight", 100)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Not a stored prompt: {exc}") from exc


def _reparses(text: str, prompt: ImaginePrompt) -> bool:
    from imagine.prompt.errors import PromptError
    from imagine.prompt.parse import parse  # parse builds ImaginePrompts: imported late

    try:
        return parse(text) == [prompt]
    except PromptError:
        return False
