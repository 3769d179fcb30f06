"""Mapping parsed prompts onto engine requests: sizes, steps, guidance, models, seeds."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagine.engines.base import Capabilities, GenerateRequest
from imagine.prompt import (
    ImaginePrompt,
    PromptError,
    chaos_guidance,
    image_strength,
    parse,
    plan_generation,
    resolve_size,
    tile_seeds,
)

PLACEHOLDER = Capabilities(name="placeholder", is_placeholder=True, native_size=512, multiple=8)
SDXL = Capabilities(name="sdxl", native_size=1024, multiple=64, weighted_prompts=True)
MODELS = {"6": "stabilityai/sdxl-turbo", "niji 6": "cagliostrolab/animagine-xl-3.1"}


@dataclass(frozen=True)
class TunedCapabilities(Capabilities):
    """An engine that declares its defaults, so --quality and --stylize can scale them."""

    default_steps: int = 20
    default_guidance: float = 7.0


def plan(
    msg: str,
    capabilities: Capabilities = PLACEHOLDER,
    *,
    models: Mapping[str, str] = MODELS,
    default_model: str | None = None,
) -> GenerateRequest:
    [prompt] = parse(msg)
    return plan_generation(
        prompt, capabilities, seeds=(1, 2, 3, 4), models=models, default_model=default_model
    )


@pytest.mark.parametrize(
    ("aspect", "native", "multiple", "size"),
    [
        ((1, 1), 512, 8, (512, 512)),
        ((16, 9), 512, 8, (680, 384)),
        ((9, 16), 512, 8, (384, 680)),
        ((16, 9), 1024, 64, (1344, 768)),
        ((4, 1), 512, 8, (1024, 256)),
        ((1, 4), 1024, 64, (512, 2048)),
        ((3, 2), 1024, 8, (1256, 840)),
        ((4, 1), 64, 64, (128, 64)),
    ],
)
def test_sizes_keep_the_pixel_budget_and_the_multiple(
    aspect: tuple[int, int], native: int, multiple: int, size: tuple[int, int]
) -> None:
    assert resolve_size(aspect, native, multiple) == size


@given(
    st.integers(1, 400).flatmap(lambda h: st.tuples(st.integers(-(-h // 4), 4 * h), st.just(h))),
    st.sampled_from([512, 768, 1024]),
    st.sampled_from([8, 16, 64]),
)
def test_sizes_are_close_to_the_ratio_and_budget(
    aspect: tuple[int, int], native: int, multiple: int
) -> None:
    width, height = resolve_size(aspect, native, multiple)
    assert width % multiple == 0
    assert height % multiple == 0
    assert width >= multiple
    assert height >= multiple
    slack = multiple / native  # rounding moves each side by at most multiple/2 of >= native/2
    ratio = (width / height) / (aspect[0] / aspect[1])
    assert (1 - slack) / (1 + slack) <= ratio <= (1 + slack) / (1 - slack)
    assert (1 - slack) ** 2 <= width * height / native**2 <= (1 + slack) ** 2


def test_a_prompt_without_parameters_leaves_every_engine_default_alone() -> None:
    request = plan("a lighthouse", TunedCapabilities(name="tuned"))
    assert (request.width, request.height) == (512, 512)
    assert request.steps is None
    assert request.guidance is None
    assert request.model is None
    assert request.prompt == "a lighthouse"
    assert request.negative_prompt == ""
    assert request.seeds == (1, 2, 3, 4)
    assert request.strength == pytest.approx(0.7)
    assert not request.tile
    assert dict(request.extra) == {
        "chaos": 0, "weird": 0, "stop": 100, "style": None, "quality": 1.0, "stylize": 100,
    }  # fmt: skip


def test_parameters_reach_the_request() -> None:
    request = plan("a lighthouse --ar 16:9 --no fog, boats --tile --c 30 --w 200 --stop 80 "
                   "--style raw")  # fmt: skip
    assert (request.width, request.height) == (680, 384)
    assert request.negative_prompt == "fog, boats"
    assert request.tile
    assert request.weighted == ()  # the placeholder cannot weigh parts: it gets flat text
    assert request.extra["chaos"] == 30
    assert request.extra["weird"] == 200
    assert request.extra["stop"] == 80
    assert request.extra["style"] == "raw"


def test_weighted_parts_go_to_engines_that_take_them() -> None:
    request = plan("hot::2 dog --no mustard", SDXL)
    assert request.weighted == (("hot", 2 / 3), ("dog", 1 / 3), ("mustard", -1 / 6))
    assert request.prompt == "hot, dog"
    assert request.negative_prompt == ""  # the negatives are in `weighted`: counted once
    assert (request.width, request.height) == (1024, 1024)


@pytest.mark.parametrize(("quality", "steps"), [(".25", 5), (".5", 10), ("1", None), ("2", 40)])
def test_quality_scales_the_engine_default_steps(quality: str, steps: int | None) -> None:
    assert plan(f"a cat --q {quality}", TunedCapabilities(name="tuned")).steps == steps


def test_quality_without_engine_defaults_is_left_to_the_engine() -> None:
    request = plan("a cat --q 2")
    assert request.steps is None
    assert request.extra["quality"] == 2.0


def test_stylize_lowers_guidance_as_it_rises() -> None:
    tuned = TunedCapabilities(name="tuned")
    literal, default, free = (plan(f"a cat --s {s}", tuned).guidance for s in (0, 100, 1000))
    assert default is None
    assert literal is not None
    assert free is not None
    assert literal > 7.0 > free > 0
    assert plan("a cat --s 0").guidance is None  # no engine default to scale


@pytest.mark.parametrize(("iw", "strength"), [("0", 0.95), ("1", 0.7), ("2", 0.45), ("3", 0.2)])
def test_image_weight_keeps_more_of_the_image(iw: str, strength: float) -> None:
    [prompt] = parse(f"https://example.com/a.png a cat --iw {iw}")
    assert image_strength(prompt) == pytest.approx(strength)


def test_versions_choose_models_through_the_map() -> None:
    assert plan("a cat --v 6").model == "stabilityai/sdxl-turbo"
    assert plan("a cat --v 6.0").model == "stabilityai/sdxl-turbo"
    assert plan("a cat --niji 6").model == "cagliostrolab/animagine-xl-3.1"
    assert plan("a cat", default_model="my/model").model == "my/model"


def test_an_unmapped_version_names_the_parameter_and_what_is_available() -> None:
    with pytest.raises(PromptError) as caught:
        plan("a cat --v 5.2")
    assert caught.value.parameter == "--v"
    assert caught.value.message == (
        "Invalid parameter: --v 5.2 is not available: this server has --v 6, --niji 6."
    )
    with pytest.raises(PromptError) as caught:
        plan("a cat --niji 5", models={})
    assert caught.value.parameter == "--niji"
    assert "no model versions configured (IMAGINE_MODELS)" in caught.value.message


def test_a_seed_gives_consecutive_tile_seeds_without_chaos() -> None:
    [prompt] = parse("a cat --seed 41")
    assert tile_seeds(prompt) == (41, 42, 43, 44)
    [top] = parse("a cat --seed 4294967294")
    assert tile_seeds(top) == (4294967294, 4294967295, 0, 1)


def test_without_a_seed_the_first_seed_reproduces_the_grid() -> None:
    [prompt] = parse("a cat --c 40")
    seeds = tile_seeds(prompt, rng=random.Random(7))
    assert len(set(seeds)) == 4
    [again] = parse(f"a cat --c 40 --seed {seeds[0]}")
    assert tile_seeds(again) == seeds
    [calm] = parse("a cat")
    first, *rest = tile_seeds(calm, count=3, rng=random.Random(7))
    assert rest == [first + 1, first + 2]


def test_chaos_changes_the_grid_reproducibly() -> None:
    grids = {c: tile_seeds(parse(f"a cat --seed 5 --c {c}")[0]) for c in (0, 10, 90)}
    assert grids[10] == tile_seeds(parse("a cat --seed 5 --c 10")[0])
    assert len({grids[0][1:], grids[10][1:], grids[90][1:]}) == 3
    assert all(grid[0] == 5 for grid in grids.values())
    assert all(0 <= seed < 2**32 for grid in grids.values() for seed in grid)


def test_chaos_jitters_guidance_per_tile_within_half() -> None:
    assert chaos_guidance(7.0, 0, 123) == 7.0
    jittered = [chaos_guidance(7.0, 100, seed) for seed in range(50)]
    assert all(3.5 <= g <= 10.5 for g in jittered)
    assert len(set(jittered)) > 40
    assert jittered == [chaos_guidance(7.0, 100, seed) for seed in range(50)]
    assert all(abs(chaos_guidance(7.0, 10, s) - 7.0) <= 0.35 for s in range(50))


def test_the_plan_uses_prompt_fields_not_reparsing() -> None:
    prompt = ImaginePrompt(parts=(("a fox", 1.0),), aspect=(2, 1))
    request = plan_generation(prompt, PLACEHOLDER, seeds=(9,), models={}, default_model=None)
    assert (request.width, request.height) == (728, 360)
    assert request.seeds == (9,)
