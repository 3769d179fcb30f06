"""The banned-word prefilter: whole words, any case, not fooled by look-alike letters, dots,
spaces or leetspeak.

Look-alike letters (Cyrillic а, Greek Ν, Armenian ո, small capitals ɴ) are folded to the Latin
letters they imitate with disarm's ``normalize_confusables``: Unicode's TR39 confusables data
(Unicode 17) in a maintained, typed Rust library. confusable-homoglyphs (untyped, last release
2024) lists look-alikes both ways with no fold toward Latin, confusables (2021) and homoglyphs
(2020) are older, and ICU's spoof checker needs the ICU C library (or a 65 MB wheel bundling it).

Only characters outside ASCII are folded, never the whole TR39 skeleton: the skeleton also merges
ASCII letters (m ≡ rn, l ≡ I), which would refuse "pom" as "porn" and read "NUDITY" as "nudlty".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path

from disarm import normalize_confusables

_LEET = {
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
_LEET_ONE_AS_L = {**_LEET, "1": "l"}
_LEETSPEAK = re.compile(f"[{re.escape(''.join(_LEET))}]")
_SEPARATORS = re.compile(r"[.\-_*'`~^,;:/\\\"()\[\]{}]+")
_WORDS = re.compile(r"[a-z]+")
_SINGLE_LETTER_GAP = re.compile(r"(?<![a-z])([a-z])[^a-z]+(?=[a-z](?![a-z]))")
"""A one-letter word and what separates it from a next one-letter word (the gap is dropped)."""


def _plain(text: str) -> str:
    """No accents and no invisible format characters (soft hyphen, zero-width space and
    joiners: they split no word); full-width and other compatibility forms folded (ｂａｄ → bad)."""
    decomposed = unicodedata.normalize("NFKD", text)
    # Each distinct character looked up once, and one regex to drop them: a per-character loop
    # (or str.translate, outside ASCII) costs more than the rest of the prefilter.
    hidden = "".join(
        sorted(
            c
            for c in set(decomposed)
            if unicodedata.combining(c) or unicodedata.category(c) == "Cf"
        )
    )
    return re.sub(f"[{re.escape(hidden)}]", "", decomposed) if hidden else decomposed


def _fold(text: str) -> str:
    """Lower case, plain, look-alike letters as the Latin ones they imitate (nаked → naked)."""
    if text.isascii():  # most prompts: nothing to decompose, strip or fold but case
        return text.lower()
    # Confusables on the cased text (Greek Ν is an N; its lower case ν looks like a v), then
    # again after lower case (Cyrillic П looks like no Latin letter, its lower case п like n).
    folded = normalize_confusables(_plain(text)).lower()
    return folded if folded.isascii() else normalize_confusables(folded)


def _candidates(text: str) -> Iterator[tuple[str, ...]]:
    """Word sequences to check: as written, with separators removed, and spelled-out letters
    joined; each distinct sequence once (most prompts have no leetspeak: one variant, not three)."""
    folded = _fold(text)
    seen: set[tuple[str, ...]] = set()
    variants = [folded]
    if _LEETSPEAK.search(folded):
        variants += [_unleet(folded, _LEET_ONE_AS_L), _unleet(folded, _LEET)]
    for variant in dict.fromkeys(variants):
        words = _WORDS.findall(variant)
        # Separators are never whitespace, so removing them from the whole text is removing
        # them within each whitespace-separated chunk.
        for sequence in (
            tuple(words),
            tuple(_WORDS.findall(_SEPARATORS.sub("", variant))),
            _joined(variant),
        ):
            if sequence not in seen:
                seen.add(sequence)
                yield sequence


def _unleet(text: str, table: Mapping[str, str]) -> str:
    # A regex, not str.translate, which outside ASCII looks up every character.
    return _LEETSPEAK.sub(lambda match: table[match[0]], text)


def _joined(text: str) -> tuple[str, ...]:
    """b a d / b.a.d / b-a-d: runs of single letters are one word too."""
    return tuple(_WORDS.findall(_SINGLE_LETTER_GAP.sub(r"\1", text)))


class Prefilter:
    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases: dict[tuple[str, ...], str] = {}
        for phrase in phrases:
            words = tuple(_WORDS.findall(_fold(phrase)))
            if words:
                self._phrases[words] = phrase.strip()
        self._longest = max((len(words) for words in self._phrases), default=0)
        self._first_words = frozenset(words[0] for words in self._phrases)

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
            for start, word in enumerate(words):
                if word not in self._first_words:  # most words start no phrase: one set lookup
                    continue
                for size in range(1, self._longest + 1):
                    key = words[start : start + size]
                    if len(key) < size:
                        break
                    if key in self._phrases:
                        return self._phrases[key]
        return None
