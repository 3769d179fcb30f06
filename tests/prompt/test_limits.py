"""Numbers past what a float holds, and prompts past the job limit: refused with one sentence."""

from __future__ import annotations

import pytest

from imagine.codes import ResultCode
from imagine.prompt import PromptError, parse

HUGE = "1" + "0" * 308  # 1e308 is a float; two of them add up to inf
HUGE_SHOWN = "1" + "0" * 58 + "…"
HOW = " Multi-prompts look like `hot::2 dog::1`."


def refusal(msg: str) -> PromptError:
    with pytest.raises(PromptError) as caught:
        parse(msg)
    assert caught.value.code is ResultCode.INVALID_PARAMETER
    return caught.value


@pytest.mark.parametrize(
    ("msg", "sentence"),
    [
        (f"a::{HUGE} b::{HUGE}",
         f"Invalid parameter: the weight ::{HUGE_SHOWN} is too large; use a number between -10000 "
         "and 10000."),
        (f"a::{HUGE}",
         f"Invalid parameter: the weight ::{HUGE_SHOWN} is too large; use a number between -10000 "
         "and 10000."),
        ("a::10000.5 b",
         "Invalid parameter: the weight ::10000.5 is too large; use a number between -10000 and "
         "10000."),
        (f"a::2 b::-{HUGE}9",
         f"Invalid parameter: the weight ::-1{'0' * 57}… is too far below 0; use a number between "
         "-10000 and 10000."),
        ("a::inf", "Invalid parameter: the weight ::inf is not a plain number (to start a part "
                   "with it, put a space after the ::)."),
        ("a::NaN b", "Invalid parameter: the weight ::NaN is not a plain number (to start a part "
                     "with it, put a space after the ::)."),
        ("a::-1e309", "Invalid parameter: the weight ::-1e309 is not a plain number (to start a "
                      "part with it, put a space after the ::)."),
        ("a::1e5 b::+2", "Invalid parameter: the weight ::1e5 is not a plain number (to start a "
                         "part with it, put a space after the ::)."),
        ("a::0.00001 --no b",
         "Invalid parameter: a negative `::` weight (or a --no item, which weighs -0.5) is more "
         "than 10000 times the positive weights together."),
        ("https://x.io/a.png a::1 b::-10001",
         "Invalid parameter: the weight ::-10001 is too far below 0; use a number between -10000 "
         "and 10000."),
        ("a::10000 b::0." + "0" * 310 + "1",
         "Invalid parameter: a `::` weight is too small beside the others to count; leave it out "
         "or make it larger."),
    ],
)  # fmt: skip
def test_weights_out_of_bounds_are_refused_in_a_sentence(msg: str, sentence: str) -> None:
    error = refusal(msg)
    assert error.message == sentence + HOW
    assert error.parameter == "::"


@pytest.mark.parametrize(
    ("msg", "parts"),
    [
        ("a::10000 b::-10000 c::1", [("a", 10000 / 10001), ("b", -10000 / 10001), ("c", 1 / 10001)]),
        ("a:: inf", [("a", 0.5), ("inf", 0.5)]),  # a space after :: starts a part with anything
        ("castle::4k render::3d", [("castle", 1 / 3), ("4k render", 1 / 3), ("3d", 1 / 3)]),
        ("a::0.0001 --no b", [("a", 1.0), ("b", -5000.0)]),
    ],
)  # fmt: skip
def test_weights_within_bounds_and_words_after_a_separator_are_kept(
    msg: str, parts: list[tuple[str, float]]
) -> None:
    [prompt] = parse(msg)
    assert [words for words, _ in prompt.parts] == [words for words, _ in parts]
    assert [weight for _, weight in prompt.parts] == pytest.approx([weight for _, weight in parts])


@pytest.mark.parametrize(
    ("msg", "parameter"),
    [
        ("a --iw 1e999", "--iw"),
        ("a --iw inf", "--iw"),
        ("a --iw nan", "--iw"),
        ("a --iw 1" + "0" * 400, "--iw"),
        ("a --s 1e400", "--stylize"),
        ("a --s " + "9" * 5000, "--stylize"),
        ("a --seed " + "9" * 5000, "--seed"),
        ("a --seed -1", "--seed"),
        ("a --chaos nan", "--chaos"),
        ("a --c inf", "--chaos"),
        ("a --c 1e2", "--chaos"),
        ("a --q nan", "--quality"),
        ("a --q 1e999", "--quality"),
        ("a --stop 1e400", "--stop"),
        ("a --w -inf", "--weird"),
        ("a --r 1e1", "--repeat"),
        ("a --ar 1e5:1", "--ar"),
        ("a --ar 1:1" + "0" * 400, "--ar"),
    ],
)
def test_numeric_parameters_past_any_float_are_refused(msg: str, parameter: str) -> None:
    error = refusal(msg)
    assert error.parameter == parameter
    assert error.message.startswith(f"Invalid parameter: {parameter} ")


@pytest.mark.parametrize(
    ("msg", "sentence"),
    [
        ("{a,b,c}{a,b,c}{a,b,c}{a,b,c} cat",
         "Invalid parameter: the {} permutations make 81 prompts; the limit is 40."),
        ("{} {a,b,c,d,e,f,g} {1,2,3,4,5,6,7} cat {}",  # empty braces are one (empty) option
         "Invalid parameter: the {} permutations make 49 prompts; the limit is 40."),
        ("{,}{,}{,}{,}{,}{,} cat",  # empty options count
         "Invalid parameter: the {} permutations make 64 prompts; the limit is 40."),
        ("a {red, {dark, light} blue} car {" + ",".join(map(str, range(14))) + "}",
         "Invalid parameter: the {} permutations make 42 prompts; the limit is 40."),
        ("{" + "," * 1000 + "} cat",
         "Invalid parameter: the {} permutations make 1,001 prompts; the limit is 40."),
        ("{a,b}" * 30,
         "Invalid parameter: the {} permutations make more than 1,000,000 prompts; the limit is "
         "40."),
    ],
)  # fmt: skip
def test_too_many_permutations_are_refused_in_one_sentence(msg: str, sentence: str) -> None:
    error = refusal(msg)
    assert error.message == sentence
    assert error.parameter == "{}"


@pytest.mark.parametrize(
    ("msg", "jobs"),
    [("{a,b,c,d,e} cat --r 9", 45), ("{a --r 40, b}", 41), ("{a,b} --r 21", 42)],
)
def test_repeat_past_the_limit_says_how_many_jobs(msg: str, jobs: int) -> None:
    error = refusal(msg)
    assert error.message == (
        f"Invalid parameter: --repeat with the {{}} permutations makes {jobs} jobs; "
        "the limit is 40."
    )
    assert error.parameter == "--repeat"


def test_forty_jobs_are_allowed() -> None:
    assert len(parse("{a,b} --r 20")) == 40
    assert len(parse("{a,b,c,d}{1,2,3,4,5,6,7,8,9,10} cat")) == 40
