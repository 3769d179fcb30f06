"""Properties of the prompt language over any text: only PromptError, stable normal form."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imagine.codes import ResultCode
from imagine.prompt import MAX_JOBS, ImaginePrompt, PromptError, parse

# Fragments of real prompts and of every piece of syntax, so random messages reach deep paths.
FRAGMENTS = [
    "cat", "a red car", "Dog", "é", "::", "::2", "::-0.5", "::0", "::.5", "::-1", ":", "::1e5",
    "{", "}", ",", "{a, b}", "{x,{y,z}}", "\\", "\\,", "\\{", "https://x.io/a.png",
    "<https://x.io/b.png>", "http://", "https://[::1]:99/c.jpg", "HTTPS://X.IO/D", "<https://a",
    "--ar", "—ar", "–aspect", "16:9", "1:5", "0:1", "--no", "—no", "a, b", "--seed", "123",
    "4294967296", "--tile", "--v", "--version", "6", "5.2", "--niji", "--q", ".5", "3",
    "--iw", "2", "0.00001", "--r", "--repeat", "40", "--c", "100", "101", "--s", "1000",
    "--stop", "10", "--w", "--weird", "--style", "raw", "--fast", "--relax", "--turbo",
    "--foo", "—", "--", "-1", "0", "0000", " ", "\t", "\n",
]  # fmt: skip

messages = st.one_of(
    st.text(),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=12).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join),
)


def _check_error(error: PromptError) -> None:
    assert str(error) == error.message
    assert error.code in (ResultCode.INVALID_PARAMETER, ResultCode.INVALID_LINK)
    if error.parameter is not None:
        assert error.parameter in error.message
    elif error.code is ResultCode.INVALID_PARAMETER:
        assert error.message.startswith("The prompt is empty")
    else:
        assert error.message.startswith("Invalid link:")


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages)
@example("hot::2 dog --no a, b")
@example(":: https://x.io/a.png cat")
@example("a::1e-300 b::-1")
@example("a: ::2 b")
@example("a::5 b::.3 c::1 d::5 e::11")  # normalised weights add up to 0.9999999999999999
@example("0::-0.5 0 --no 0")  # --no items would push the text's weights to 0 as `::` parts
@example("a::2 b::-1.9 --no c, d")
@example("a::1" + "0" * 308 + " b::1" + "0" * 308)  # each weight a float, their sum is not
def test_parse_raises_only_prompt_errors_and_normal_forms_are_stable(msg: str) -> None:
    _check_message(msg)


def _check_message(msg: str) -> None:
    try:
        prompts = parse(msg)
    except PromptError as error:
        _check_error(error)
        return
    assert 1 <= len(prompts) <= MAX_JOBS
    for prompt in prompts:
        canonical = prompt.normalised()
        assert parse(canonical) == [prompt], canonical
        stored = json.loads(json.dumps(prompt.to_dict()))
        assert ImaginePrompt.from_dict(stored) == prompt
        positive = [weight for _, weight in prompt.parts if weight > 0]
        assert positive or prompt.image_urls
        assert prompt.text or prompt.image_urls


# Numbers as users type them and as they overflow: huge, tiny, long, signed, inf, nan, exponents.
NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.floats().map(repr),
    st.from_regex(r"-?[0-9]{0,400}\.?[0-9]{0,400}", fullmatch=True),
    st.sampled_from(["inf", "-inf", "nan", "+2", "1e999", "-1e309", "1" + "0" * 308, "10000"]),
)
NUMERIC_PARAMETERS = ["iw", "s", "seed", "c", "q", "stop", "w", "r"]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b c", "", "d:"]), NUMBERS), min_size=1, max_size=4),
    st.lists(
        st.tuples(st.sampled_from(NUMERIC_PARAMETERS), NUMBERS),
        max_size=3,
        unique_by=lambda item: item[0],
    ),
    st.booleans(),
)
@example([("a", "1" + "0" * 308), ("b", "1" + "0" * 308)], [], False)  # was an OverflowError
@example([("a", "0." + "0" * 320 + "1")], [], True)  # --no over a subnormal weight
@example([("a", "10000"), ("b", "-9999.5")], [("iw", "1e999")], True)
def test_any_numbers_as_weights_and_parameters_give_prompts_or_prompt_errors(
    parts: list[tuple[str, str]], parameters: list[tuple[str, str]], no: bool
) -> None:
    msg = " ".join(f"{words}::{number}" for words, number in parts)
    msg += "".join(f" --{name} {number}" for name, number in parameters)
    _check_message(msg + (" --no x, y" if no else ""))
