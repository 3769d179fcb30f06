"""Real-world Midjourney prompts and what they parse to; the errors users see for bad ones."""

from __future__ import annotations

from typing import Any

import pytest

from imagine.codes import ResultCode
from imagine.prompt import ImaginePrompt, PromptError, parse

DISCORD_PNG = "https://cdn.discordapp.com/attachments/1084/1102/mountain.png"


def single(text: str, **fields: Any) -> ImaginePrompt:
    return ImaginePrompt(parts=((text, 1.0),), **fields)


# (message as typed, the prompts it parses to)
REAL_WORLD: list[tuple[str, list[ImaginePrompt]]] = [
    ("vibrant california poppies", [single("vibrant california poppies")]),
    ("vibrant california poppies --ar 5:4", [single("vibrant california poppies", aspect=(5, 4))]),
    (
        "a cinematic still of a lighthouse in a storm, dramatic lighting --ar 16:9 --v 6",
        [single("a cinematic still of a lighthouse in a storm, dramatic lighting",
                aspect=(16, 9), version="6")],
    ),
    (
        "portrait of an old fisherman, 85mm, film grain --aspect 2:3 --style raw --v 5.2",
        [single("portrait of an old fisherman, 85mm, film grain", aspect=(2, 3), style="raw",
                version="5.2")],
    ),
    ("woodcut birch forest --q .25", [single("woodcut birch forest", quality=0.25)]),
    ("woodcut birch forest --quality 2", [single("woodcut birch forest", quality=2.0)]),
    ("fox in the snow --seed 123", [single("fox in the snow", seed=123)]),
    ("fox in the snow --seed 4294967295", [single("fox in the snow", seed=4294967295)]),
    ("watermelon owl hybrid --c 50", [single("watermelon owl hybrid", chaos=50)]),
    ("watermelon owl hybrid --chaos 100", [single("watermelon owl hybrid", chaos=100)]),
    ("child's drawing of a cat --s 50", [single("child's drawing of a cat", stylize=50)]),
    ("child's drawing of a cat --stylize 1000", [single("child's drawing of a cat", stylize=1000)]),
    ("splatter art painting of acorns --stop 90", [single("splatter art painting of acorns", stop=90)]),
    ("cyanotype cat --weird 250", [single("cyanotype cat", weird=250)]),
    ("cyanotype cat --w 3000", [single("cyanotype cat", weird=3000)]),
    ("watercolor koi fish --tile", [single("watercolor koi fish", tile=True)]),
    ("cute kitsune spirit --niji 6", [single("cute kitsune spirit", version="niji 6")]),
    ("cute kitsune spirit --niji 5 --style expressive",
     [single("cute kitsune spirit", version="niji 5", style="expressive")]),
    ("cute kitsune spirit --niji", [single("cute kitsune spirit", version="niji")]),
    ("lunar base at dawn --version 6.0 --fast", [single("lunar base at dawn", version="6", speed="fast")]),
    ("lunar base at dawn --relax", [single("lunar base at dawn", speed="relax")]),
    ("lunar base at dawn --turbo", [single("lunar base at dawn", speed="turbo")]),
    # Phones and Discord turn -- into an em dash (or an en dash).
    ("neon tokyo street at night —ar 9:16 —s 750",
     [single("neon tokyo street at night", aspect=(9, 16), stylize=750)]),
    ("neon tokyo street at night –c 10 —no cars", [
        ImaginePrompt(parts=(("neon tokyo street at night", 1.0), ("cars", -0.5)),
                      negative=("cars",), chaos=10)
    ]),
    # Parameters in any order, any case, aspect ratios reduced.
    ("isometric dungeon --V 6 --AR 1920:1080 --Seed 7",
     [single("isometric dungeon", version="6", aspect=(16, 9), seed=7)]),
    # --no is comma-separated and equal to ::-.5 (Midjourney's own equivalence).
    ("still life gouache painting --no fruit", [
        ImaginePrompt(parts=(("still life gouache painting", 1.0), ("fruit", -0.5)),
                      negative=("fruit",))
    ]),
    ("still life gouache painting:: fruit::-.5", parse("still life gouache painting --no fruit")),
    ("a bustling market --no people, red cars, text", [
        ImaginePrompt(
            parts=(("a bustling market", 1.0), ("people", -0.5), ("red cars", -0.5), ("text", -0.5)),
            negative=("people", "red cars", "text"),
        )
    ]),
    # Multi-prompts: weights belong to the text before them; the positive ones add up to 1.
    ("hot dog", [single("hot dog")]),
    ("hot:: dog", [ImaginePrompt(parts=(("hot", 0.5), ("dog", 0.5)))]),
    ("hot::2 dog", [ImaginePrompt(parts=(("hot", 2 / 3), ("dog", 1 / 3)))]),
    ("space ship::3 cyberpunk::1 --no wings", [
        ImaginePrompt(parts=(("space ship", 0.75), ("cyberpunk", 0.25), ("wings", -0.125)),
                      negative=("wings",))
    ]),
    ("tulips:: red::-0.5 yellow::.5", [
        ImaginePrompt(parts=(("tulips", 2 / 3), ("red", -1 / 3), ("yellow", 1 / 3)),
                      negative=("red",))
    ]),
    # Image prompts lead the message; Discord wraps links in <…> to stop embeds.
    (f"{DISCORD_PNG} a watercolor version --iw 2",
     [single("a watercolor version", image_urls=(DISCORD_PNG,), image_weight=2.0)]),
    (f"<{DISCORD_PNG}> <https://i.imgur.com/kX2.jpg> blend of both --iw .5", [
        single("blend of both", image_urls=(DISCORD_PNG, "https://i.imgur.com/kX2.jpg"),
               image_weight=0.5)
    ]),
    (f"{DISCORD_PNG} https://i.imgur.com/kX2.jpg", [
        ImaginePrompt(image_urls=(DISCORD_PNG, "https://i.imgur.com/kX2.jpg"))
    ]),
    ("a photo of https://example.com, the website",
     [single("a photo of https://example.com, the website")]),
    # Permutations: one job each, in order; nested; \, keeps a comma.
    ("a {red, green, yellow} bird", [single("a red bird"), single("a green bird"),
                                     single("a yellow bird")]),
    ("a naturalist illustration of a bird --c {20,80}", [
        single("a naturalist illustration of a bird", chaos=20),
        single("a naturalist illustration of a bird", chaos=80),
    ]),
    ("a {sculpture, painting} of a {seagull {on a pier, on a beach}, poodle} --ar {16:9, 1:1}",
     [single(f"a {kind} of a {what}", aspect=aspect)
      for kind in ("sculpture", "painting")
      for what in ("seagull on a pier", "seagull on a beach", "poodle")
      for aspect in ((16, 9), (1, 1))]),
    ("{salt\\, pepper, oil} on a plate", [single("salt, pepper on a plate"),
                                          single("oil on a plate")]),
    ("a cat --{fast, relax}", [single("a cat", speed="fast"), single("a cat", speed="relax")]),
    ("red panda astronaut --repeat 3", [single("red panda astronaut")] * 3),
    ("{red, blue} panda --r 2", [single("red panda"), single("red panda"),
                                 single("blue panda"), single("blue panda")]),
    # Whitespace of any kind separates words; multiple spaces collapse.
    ("  a   quiet\tlake \n at dawn  --ar 3:2 ", [single("a quiet lake at dawn", aspect=(3, 2))]),
]  # fmt: skip


@pytest.mark.parametrize(("msg", "expected"), REAL_WORLD, ids=[row[0][:50] for row in REAL_WORLD])
def test_real_world_prompt_parses_as_expected(msg: str, expected: list[ImaginePrompt]) -> None:
    assert parse(msg) == expected


def test_the_table_has_at_least_thirty_prompts() -> None:
    assert len(REAL_WORLD) >= 30


# (message, parameter named, words the message must contain, result code)
ERRORS: list[tuple[str, str | None, str, ResultCode]] = [
    ("a cat --foo", "--foo", "Unrecognized parameter(s): `--foo`", ResultCode.INVALID_PARAMETER),
    ("a cat --foo 1 --hd", "--foo", "`--foo`, `--hd`", ResultCode.INVALID_PARAMETER),
    ("a cat --chaos 101", "--chaos", "--chaos must be between 0 and 100, got 101",
     ResultCode.INVALID_PARAMETER),
    ("a cat --c -1", "--chaos", "between 0 and 100", ResultCode.INVALID_PARAMETER),
    ("a cat --s 1001", "--stylize", "between 0 and 1000", ResultCode.INVALID_PARAMETER),
    ("a cat --stop 5", "--stop", "between 10 and 100", ResultCode.INVALID_PARAMETER),
    ("a cat --weird 3001", "--weird", "between 0 and 3000", ResultCode.INVALID_PARAMETER),
    ("a cat --seed 4294967296", "--seed", "between 0 and 4294967295", ResultCode.INVALID_PARAMETER),
    ("a cat --seed 99999999999999999999999999", "--seed", "between 0 and 4294967295",
     ResultCode.INVALID_PARAMETER),
    ("a cat --r 41", "--repeat", "between 1 and 40", ResultCode.INVALID_PARAMETER),
    ("a cat --c 2.5", "--chaos", "whole number", ResultCode.INVALID_PARAMETER),
    ("a cat --iw 3.5", "--iw", "between 0 and 3", ResultCode.INVALID_PARAMETER),
    ("a cat --q 3", "--quality", "one of .25, .5, 1 or 2", ResultCode.INVALID_PARAMETER),
    ("a cat --ar 5:1", "--ar", "at most 4:1", ResultCode.INVALID_PARAMETER),
    ("a cat --ar 1.5:1", "--ar", "two whole numbers", ResultCode.INVALID_PARAMETER),
    ("a cat --ar 0:3", "--ar", "greater than 0", ResultCode.INVALID_PARAMETER),
    ("a cat --ar", "--ar", "needs a value", ResultCode.INVALID_PARAMETER),
    ("a cat --ar 16:9 in space", "--ar", "parameters go at the end", ResultCode.INVALID_PARAMETER),
    ("a cat --tile please", "--tile", "takes no value", ResultCode.INVALID_PARAMETER),
    ("a cat --style fancy", "--style", "raw", ResultCode.INVALID_PARAMETER),
    ("a cat --v six", "--v", "version number", ResultCode.INVALID_PARAMETER),
    ("a cat --v 6 --niji 6", "--niji", "cannot be combined with --v", ResultCode.INVALID_PARAMETER),
    ("a cat --fast --relax", "--relax", "cannot be combined with --fast",
     ResultCode.INVALID_PARAMETER),
    ("a cat --ar 1:1 --aspect 2:3", "--ar", "more than once", ResultCode.INVALID_PARAMETER),
    ("a cat --no", "--no", "at least one word", ResultCode.INVALID_PARAMETER),
    ("a cat --no dog::2", "--no", "not `::` weights", ResultCode.INVALID_PARAMETER),
    ("", None, "The prompt is empty", ResultCode.INVALID_PARAMETER),
    ("   --ar 16:9", None, "The prompt is empty", ResultCode.INVALID_PARAMETER),
    ("--no people", None, "The prompt is empty", ResultCode.INVALID_PARAMETER),
    ("cat::-1", "::", "add up to more than 0", ResultCode.INVALID_PARAMETER),
    ("cat::0 dog::0", "::", "add up to more than 0", ResultCode.INVALID_PARAMETER),
    ("a {red, blue car", "{}", "never closed", ResultCode.INVALID_PARAMETER),
    ("a red} car", "{}", "no `{` before it", ResultCode.INVALID_PARAMETER),
    ("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}",
     "{}", "the limit is 40", ResultCode.INVALID_PARAMETER),
    ("{a,b,c,d,e} cat --r 9", "--repeat", "the limit is 40", ResultCode.INVALID_PARAMETER),
    ("https:// a cat", None, "Invalid link: `https://`", ResultCode.INVALID_LINK),
    ("<https://example.com/a.png a cat", None, "does not close with >", ResultCode.INVALID_LINK),
    ("https://example..com/a.png cat", None, "Invalid link", ResultCode.INVALID_LINK),
    ("https://example.com:99999/a.png cat", None, "not a valid web address",
     ResultCode.INVALID_LINK),
    (":: https://example.com/a.png cat", None, "must come first", ResultCode.INVALID_LINK),
]  # fmt: skip


@pytest.mark.parametrize(
    ("msg", "parameter", "words", "code"), ERRORS, ids=[e[0][:40] for e in ERRORS]
)
def test_bad_prompts_fail_with_a_message_naming_the_fault(
    msg: str, parameter: str | None, words: str, code: ResultCode
) -> None:
    with pytest.raises(PromptError) as caught:
        parse(msg)
    error = caught.value
    assert words in error.message
    assert str(error) == error.message
    assert error.parameter == parameter
    assert error.code is code
    if code is ResultCode.INVALID_PARAMETER and parameter is not None:
        assert error.message.startswith(("Invalid parameter: ", "Unrecognized parameter(s): "))


def test_out_of_range_message_matches_midjourney_wording() -> None:
    with pytest.raises(
        PromptError, match=r"^Invalid parameter: --chaos must be between 0 and 100, got 101$"
    ):
        parse("a cat --chaos 101")


def test_an_image_alone_is_a_prompt_and_keeps_its_negatives() -> None:
    [prompt] = parse(f"{DISCORD_PNG} --no text, watermark --iw 3")
    assert prompt.image_urls == (DISCORD_PNG,)
    assert prompt.text == ""
    assert prompt.negative_prompt == "text, watermark"
    assert prompt.image_weight == 3.0


def test_flattened_text_and_negative_prompt_for_engines_without_weights() -> None:
    [prompt] = parse("neon city:: rain::2 blur::-1 --no people, cars")
    assert prompt.text == "neon city, rain"
    assert prompt.negative_prompt == "blur, people, cars"
    assert sum(weight for _, weight in prompt.parts if weight > 0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("msg", "canonical"),
    [
        ("cat —ar 32:18 —c 5 —seed 9 --tile --niji 6 --fast", "cat --ar 16:9 --chaos 5 --seed 9 --tile --niji 6 --fast"),
        ("  cat   --no  dog ,  wet fur ", "cat --no dog, wet fur"),
        ("hot::2 dog", "hot::0.6666666666666666 dog::0.3333333333333333"),
        ("a literal \\{brace\\} and \\\\ slash", "a literal \\{brace\\} and \\\\ slash"),
        ("<https://example.com/a.png> --iw 0.00001", "https://example.com/a.png --iw 0.00001"),
    ],
)  # fmt: skip
def test_normalised_form_is_canonical_and_reads_back(msg: str, canonical: str) -> None:
    [prompt] = parse(msg)
    assert prompt.normalised() == canonical
    assert parse(canonical) == [prompt]


def test_stored_form_is_json_and_reads_back() -> None:
    [prompt] = parse(f"{DISCORD_PNG} hot::2 dog --no cats --ar 3:2 --seed 1 --v 6 --style raw")
    data = prompt.to_dict()
    assert data["parts"] == [["hot", 2 / 3], ["dog", 1 / 3], ["cats", -1 / 6]]
    assert data["aspect"] == [3, 2]
    assert ImaginePrompt.from_dict(data) == prompt
    with pytest.raises(ValueError, match="Not a stored prompt"):
        ImaginePrompt.from_dict({"schema": 1, "parts": []})
