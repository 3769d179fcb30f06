"""/shorten without a model: the token estimate, the weights, and the shorter prompts."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from imagine.engines.base import PromptAnalysis, WordWeight
from imagine.prompt import PromptError, parse
from imagine.prompt.shorten import (
    CLIP_LIMIT,
    Piece,
    compose,
    estimate,
    estimated_tokens,
    pieces,
    shorter,
)

PROMPT = "a photo of a cat, highly detailed, 8k, trending on artstation"


def weights(text: str) -> dict[str, float]:
    return {word.word: word.weight for word in estimate(text).words}


def test_the_estimate_counts_as_clip_roughly_does() -> None:
    analysis = estimate(PROMPT)
    assert analysis.limit == CLIP_LIMIT
    assert "estimate" in analysis.tokenizer
    tokens = {word.word: word.tokens for word in analysis.words}
    # CLIP: "cat" ","; "8" "k" ","; a common word is one token, a long rare one several.
    assert tokens["cat,"] == 2
    assert tokens["8k,"] == 3
    assert tokens["photo"] == 1
    assert estimated_tokens("photography") == 1
    assert estimated_tokens("bioluminescent") >= 3
    assert estimated_tokens("Beksiński") >= 3


def test_the_subject_weighs_most_and_filler_little() -> None:
    weight = weights(PROMPT)
    assert max(weight.values()) == 1.0
    assert weight["photo"] >= 0.9
    assert weight["cat,"] >= 0.9
    for filler in ("a", "of", "highly", "detailed,", "8k,", "trending", "on", "artstation"):
        assert weight[filler] < 0.15, filler


def test_earlier_and_first_use_weigh_more() -> None:
    weight = estimate("castle, dragon, forest, dragon").words
    castle, dragon, forest, again = (w.weight for w in weight)
    assert castle > dragon > forest > again
    assert again < 0.3  # said twice, the second time adds little


def test_words_past_the_limit_are_cut_and_weigh_nothing() -> None:
    text = " ".join(f"colour{n}" for n in range(40))  # "colour" "1" "2": 2 or 3 tokens each
    analysis = estimate(text)
    used = 0
    for word in analysis.words:
        used += word.tokens
        assert word.cut == (used > CLIP_LIMIT)
        if word.cut:
            assert word.weight == 0.0
    assert analysis.words[-1].cut
    assert not any(word.word in prompt.split() for prompt in shorter(analysis) for word in
                   analysis.words if word.cut)  # fmt: skip


def test_shorter_prompts_drop_filler_first_and_end_with_the_subject() -> None:
    prompts = shorter(estimate("a red fox sitting in the snow at dawn, masterpiece, 8k"), 5)
    assert len(prompts) == 5
    assert len(set(prompts)) == 5
    assert [len(p) for p in prompts] == sorted((len(p) for p in prompts), reverse=True)
    assert "red fox" in prompts[-1]
    assert "8k" not in prompts[2]
    assert "masterpiece" not in prompts[-2]


def test_weights_and_links_stay_with_their_words() -> None:
    prompts = shorter(estimate("https://x.io/a.png hot::2 dog::1 on a plate::0.5"), 5)
    assert all(p.startswith("https://x.io/a.png ") for p in prompts)
    assert "https://x.io/a.png hot::2 dog::1 plate::0.5" in prompts
    assert prompts[-1].endswith("hot::2")
    assert shorter(estimate("space::ship"))[0] == "space::ship"
    assert shorter(estimate("space::ship"))[1:] == ["space"]  # no dangling ::


def test_a_prompt_is_never_left_with_only_negative_parts() -> None:
    analysis = PromptAnalysis(
        words=(
            WordWeight("ugly", 1, 1.0),
            WordWeight("::-0.5", 0, 0.0),
            WordWeight("cat", 1, 0.2),
        ),
        limit=75,
        tokenizer="test",
    )
    assert shorter(analysis) == ["ugly::-0.5 cat", "cat"]


def test_short_prompts_give_fewer_and_empty_ones_none() -> None:
    assert shorter(estimate("cat")) == ["cat"]
    assert shorter(estimate("a cat")) == ["a cat", "cat"]
    assert shorter(estimate("")) == []
    assert shorter(estimate(", ;")) == [","]  # nothing weighs anything: the first word
    assert shorter(estimate("x" * 400)) == []  # its one word does not fit


FRAGMENTS = [
    "cat", "a", "the", "red", "car,", "dog.", "8k", "highly", "detailed", "trending", "on",
    "artstation", "é", "Beksiński", "::", "::2", "::-0.5", "::0", "::.5", ":", ",", "x:",
    "https://x.io/a.png", "photography", "bioluminescent", "12345", "very", "very",
]  # fmt: skip
texts = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), min_size=30, max_size=90).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
)


def _subsequence(small: list[str], big: list[str]) -> bool:
    rest = iter(big)
    return all(any(word == other for other in rest) for word in small)


@given(texts, st.integers(1, 8))
@example("a:::2 b", 5)
@example("space::ship", 5)
def test_shorter_properties(text: str, count: int) -> None:
    analysis = estimate(text)
    prompts = shorter(analysis, count)
    assert len(prompts) <= count
    assert len(set(prompts)) == len(prompts)
    readable = [w.word for w in analysis.words if not w.cut]
    for prompt in prompts:
        assert prompt.strip()
        assert len(prompt) <= len(text)
        words = [piece.text for piece in pieces(prompt)]
        # Only words the model reads, in their order (the last may lose a trailing comma).
        assert _subsequence(words[:-1], readable)
        assert any(words[-1] == w or w.startswith(words[-1]) for w in readable)
    if any(w.weight > 0 and not w.cut for w in analysis.words):
        assert prompts


@given(texts)
def test_pieces_compose_back_to_themselves(text: str) -> None:
    found = pieces(text)
    assert len(compose(found)) <= len(" ".join(text.split()))
    assert pieces(compose(found)) == found
    assert all(isinstance(piece, Piece) and piece.text for piece in found)


@given(st.lists(st.sampled_from([f for f in FRAGMENTS if f != "::0"]), min_size=1, max_size=80))
def test_prompts_that_parse_stay_parseable(words: list[str]) -> None:
    text = " ".join(words)
    try:
        parse(text)
    except PromptError:
        return
    for prompt in shorter(estimate(text)):
        parse(prompt)
