"""The banned-word prefilter: whole words, any case, not fooled by dots, spaces or leetspeak."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
    }
)
_LEET_ONE_AS_L = str.maketrans({"1": "l"})
_SEPARATORS = re.compile(r"[.\-_*'`~^,;:/\\\"()\[\]{}]+")
_WORDS = re.compile(r"[a-z]+")


def _fold(text: str) -> str:
    """Lower case, no accents, full-width and other compatibility forms folded (ｂａｄ → bad)."""
    decomposed = unicodedata.normalize("NFKD", text)
    # Invisible format characters (soft hyphen, zero-width space and joiners) split no word.
    return "".join(
        c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    ).lower()


def _candidates(text: str) -> Iterator[tuple[str, ...]]:
    """Word sequences to check: as written, with separators removed, and spelled-out letters
    joined; each distinct sequence once (most prompts have no leetspeak: one variant, not three)."""
    folded = _fold(text)
    seen: set[tuple[str, ...]] = set()
    for variant in dict.fromkeys(
        (folded, folded.translate(_LEET_ONE_AS_L).translate(_LEET), folded.translate(_LEET))
    ):
        words = _WORDS.findall(variant)
        chunks = [_SEPARATORS.sub("", chunk) for chunk in variant.split()]
        for sequence in (
            tuple(words),
            tuple(w for c in chunks for w in _WORDS.findall(c)),
            _joined(words),
        ):
            if sequence not in seen:
                seen.add(sequence)
                yield sequence


def _joined(words: list[str]) -> tuple[str, ...]:
    """b a d / b.a.d / b-a-d: runs of single letters are one word too."""
    joined: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1:
            run += word
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(word)
    if run:
        joined.append(run)
    return tuple(joined)


class Prefilter:
    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases: dict[tuple[str, ...], str] = {}
        for phrase in phrases:
            words = tuple(_WORDS.findall(_fold(phrase)))
            if words:
                self._phrases[words] = phrase.strip()
        self._longest = max((len(words) for words in self._phrases), default=0)

    @classmethod
    def load(cls, path: Path | None) -> Prefilter:
        """The list at ``path``, or the shipped default list."""
        if path is None:
            text = resources.files("imagine").joinpath("data/banned_words.txt").read_text("utf-8")
        else:
            try:
                text = path.read_text("utf-8")
            except OSError as exc:
                raise ValueError(f"IMAGINE_BANNED_WORDS_FILE cannot be read: {exc}.") from exc
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return cls(line for line in lines if line)

    def __len__(self) -> int:
        return len(self._phrases)

    def find(self, text: str) -> str | None:
        """The first banned phrase ``text`` contains, as listed, or None."""
        for words in _candidates(text):
            for start in range(len(words)):
                for size in range(1, self._longest + 1):
                    key = tuple(words[start : start + size])
                    if len(key) < size:
                        break
                    if key in self._phrases:
                        return self._phrases[key]
        return None
