from __future__ import annotations

import pytest

from imagine.prefilter import Prefilter

words = Prefilter(["gore", "bad word"])


@pytest.mark.parametrize(
    "text",
    [
        "gore",
        "GORE",
        "so much gore!",
        "g.o.r.e",
        "g o r e",
        "g-o-r-e",
        "g0r3",
        "ｇｏｒｅ",
        "góre",
        "a bad word here",
        "BAD   WORD",
        "b4d w0rd",
        "go\u00adre",  # a soft hyphen
        "g\u200bore",  # a zero-width space
        "go\u200dre\ufeff",  # a zero-width joiner and a byte-order mark
    ],
)
def test_found(text: str) -> None:
    assert words.find(text) in ("gore", "bad word")


@pytest.mark.parametrize("text", ["gorge", "a goretex jacket", "bad", "word", "a badword"])
def test_not_found(text: str) -> None:
    assert words.find(text) is None


def test_default_list_loads() -> None:
    default = Prefilter.load(None)
    assert len(default) > 10
    assert default.find("nsfw art") == "nsfw"
