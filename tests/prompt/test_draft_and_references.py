"""--draft, --sref/--sw, --oref/--ow (and --cref/--cw), and what engines honour: parsed, stored,
mapped onto an engine's request, and reported when an engine does not carry a parameter out."""

from __future__ import annotations

import dataclasses

import pytest

from imagine import actions
from imagine.codes import ResultCode
from imagine.engines.base import (
    Capabilities,
    GenerateRequest,
    capabilities_from_json,
    capabilities_json,
)
from imagine.prompt import (
    ImaginePrompt,
    PromptError,
    check_references,
    ignored_parameters,
    parse,
    plan_generation,
)

SREF = "https://example.com/style.png"
OREF = "https://example.com/subject.png"
SD = Capabilities(name="sd", native_size=512, multiple=8, default_steps=25, default_guidance=7.0)


def one(msg: str) -> ImaginePrompt:
    [prompt] = parse(msg)
    return prompt


def plan(prompt: ImaginePrompt, capabilities: Capabilities = SD) -> GenerateRequest:
    return plan_generation(prompt, capabilities, seeds=(1, 2, 3, 4), models={}, default_model=None)


def test_draft_is_a_flag_that_round_trips() -> None:
    prompt = one("a lighthouse --draft --ar 16:9")
    assert prompt.draft
    assert not one("a lighthouse").draft
    assert parse(prompt.normalised()) == [prompt]
    assert ImaginePrompt.from_dict(prompt.to_dict()) == prompt
    with pytest.raises(PromptError, match="--draft takes no value"):
        parse("a lighthouse --draft 2")


def test_references_parse_with_their_weights_and_old_names() -> None:
    prompt = one(f"a cat --sref {SREF} <https://example.com/b.png> --sw 250 --cref {OREF} --cw 40")
    assert prompt.style_refs == (SREF, "https://example.com/b.png")
    assert prompt.style_weight == 250
    assert prompt.omni_ref == OREF
    assert prompt.omni_weight == 40
    assert prompt.references == (SREF, "https://example.com/b.png", OREF)
    assert parse(prompt.normalised()) == [prompt]
    assert ImaginePrompt.from_dict(prompt.to_dict()) == prompt
    defaults = one(f"a cat --oref {OREF}")
    assert (defaults.style_weight, defaults.omni_weight, defaults.style_refs) == (100, 100, ())


def test_a_prompt_stored_before_these_parameters_still_loads() -> None:
    data = one("a cat").to_dict()
    for name in ("draft", "style_refs", "style_weight", "omni_ref", "omni_weight"):
        del data[name]
    assert ImaginePrompt.from_dict(data) == one("a cat")


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        ("a cat --sref", "--sref needs an image link"),
        ("a cat --sref 1234", "--sref takes image links"),
        ("a cat --sref random", "no style codes"),
        (f"a cat --oref {OREF} {SREF}", "--oref takes one image link"),
        ("a cat --sw 50", "--sw is the weight of --sref"),
        ("a cat --ow 50", "--ow is the weight of --oref"),
        (f"a cat --sref {SREF} --sw 1001", "--sw must be between 0 and 1000"),
        (f"a cat --oref {OREF} --ow 0", "--ow must be between 1 and 1000"),
        (f"a cat --oref {OREF} --cref {OREF}", "more than once"),
        (f"a cat --sref {' '.join([SREF] * 6)}", "at most 5"),
    ],
)
def test_bad_references_are_refused_in_words(msg: str, words: str) -> None:
    with pytest.raises(PromptError, match=words):
        parse(msg)


def test_reference_links_are_checked_like_image_links() -> None:
    with pytest.raises(PromptError) as caught:
        parse("a cat --sref https://exa mple.com/a.png")
    assert caught.value.code is ResultCode.INVALID_PARAMETER  # "mple.com/a.png" is no link
    with pytest.raises(PromptError) as caught:
        parse("a cat --sref <https://example.com/a.png")
    assert caught.value.code is ResultCode.INVALID_LINK


def test_draft_halves_the_steps_and_shrinks_the_size() -> None:
    full, draft = plan(one("a lighthouse")), plan(one("a lighthouse --draft"))
    assert (full.width, full.height, full.steps) == (512, 512, None)
    assert (draft.width, draft.height, draft.steps) == (384, 384, 12)
    assert draft.extra["draft"] is True
    wide = plan(one("a lighthouse --draft --ar 16:9 --q 2"))
    assert wide.steps == 25  # 25 × 2, halved
    assert wide.width % 8 == 0
    assert wide.height % 8 == 0
    assert wide.width * wide.height < 512 * 512 * 0.6
    turbo = Capabilities(name="turbo", default_steps=1, default_guidance=0.0)
    assert plan(one("a lighthouse --draft"), turbo).steps == 1  # never fewer than one


def test_draft_settings_are_recorded() -> None:
    settings = actions.describe(plan(one("a lighthouse --draft")), SD)
    assert settings["draft"] is True
    assert (settings["width"], settings["steps"]) == (384, 12)
    assert "draft" not in actions.describe(plan(one("a lighthouse")), SD)


def test_style_raw_lowers_the_guidance_only_where_honoured() -> None:
    raw = dataclasses.replace(SD, honours=("--style raw",))
    assert plan(one("a cat --style raw"), raw).guidance == pytest.approx(5.25)
    assert plan(one("a cat --style raw"), SD).guidance is None
    assert ignored_parameters(one("a cat --style raw"), raw, plan(one("a cat"), raw)) == []


def test_parameters_an_engine_does_not_carry_out_are_named() -> None:
    prompt = one("a cat --weird 250 --stop 50 --style cute")
    assert ignored_parameters(prompt, SD, plan(prompt)) == [
        "--stop 50",
        "--weird 250",
        "--style cute",
    ]
    stops = Capabilities(name="d", default_steps=25, honours=("--stop", "--weird"))
    assert ignored_parameters(prompt, stops, plan(prompt, stops)) == ["--style cute"]
    one_step = Capabilities(name="d", default_steps=1, honours=("--stop",))
    stopped = one("a cat --stop 50")
    assert ignored_parameters(stopped, one_step, plan(stopped, one_step)) == ["--stop 50"]
    assert ignored_parameters(one("a cat"), SD, plan(one("a cat"))) == []


def test_engines_that_cannot_use_references_refuse_them() -> None:
    with pytest.raises(PromptError) as caught:
        check_references(one(f"a cat --sref {SREF}"), SD)
    assert caught.value.message.startswith("The sd engine cannot use style references (--sref); ")
    assert caught.value.code is ResultCode.INVALID_PARAMETER
    with pytest.raises(PromptError, match=r"cannot use omni references \(--oref\)"):
        check_references(one(f"a cat --oref {OREF}"), SD)
    able = Capabilities(name="able", honours=("--sref", "--oref"))
    check_references(one(f"a cat --sref {SREF} --oref {OREF}"), able)
    check_references(one("a cat"), SD)


def test_honours_survive_publishing() -> None:
    able = Capabilities(name="able", honours=("--stop", "--sref"))
    assert capabilities_from_json(capabilities_json(able)) == able


def test_a_draft_upscale_offers_enhance_on_engines_with_img2img() -> None:
    size = (384, 384)
    assert actions.ENHANCE in actions.buttons_for("upscale", SD, size, "U1", draft=True)
    assert actions.ENHANCE not in actions.buttons_for("upscale", SD, size, "U1")
    no_img2img = Capabilities(name="t2i", img2img=False)
    assert actions.ENHANCE not in actions.buttons_for("upscale", no_img2img, size, "U1", draft=True)
    assert actions.ENHANCE not in actions.buttons_for("imagine", SD, size, "imagine")


@pytest.mark.parametrize(
    "action",
    ["Upscale (Subtle)", "Upscale (Creative)", "Redo Upscale (Subtle)", "Redo Upscale (Creative)"],
)
def test_a_subtle_or_creative_upscale_offers_its_redos(action: str) -> None:
    buttons = actions.buttons_for("upscale", SD, (1024, 1024), action)
    assert buttons[-2:] == ["Redo Upscale (Subtle)", "Redo Upscale (Creative)"]
    assert not set(actions.UPSCALES) & set(buttons)
    no_img2img = Capabilities(name="t2i", img2img=False)
    assert actions.buttons_for("upscale", no_img2img, (1024, 1024), action)[-1] == (
        "Redo Upscale (Subtle)"
    )


def test_a_u_result_offers_upscales_and_an_old_2x_upscale_offers_none() -> None:
    assert actions.buttons_for("upscale", SD, (512, 512), "U1")[-2:] == [
        "Upscale (Subtle)",
        "Upscale (Creative)",
    ]
    old = actions.buttons_for("upscale", SD, (1024, 1024), "Upscale (2x)")
    assert not [b for b in old if "Upscale" in b]
