"""/describe and /shorten on the local engines: the placeholder's reading of pixels, its masks,
and the diffusers engine's BLIP captioner and CLIP analysis on tiny random models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagine import images
from imagine.engines import create_engine
from imagine.engines.base import (
    Describer,
    Engine,
    EngineError,
    GenerateRequest,
    PromptAnalyser,
    no_progress,
)
from imagine.engines.placeholder import PlaceholderEngine, colour_name
from imagine.prompt.shorten import shorter
from imagine.settings import DEFAULT_CAPTION_MODEL, Settings
from tests.engines.conftest import TinyModels, diffusers_settings

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def teal_and_orange() -> Image.Image:
    image = Image.new("RGB", (512, 384), (0, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.rectangle((256, 0, 512, 384), fill=(255, 140, 0))
    draw.ellipse((200, 140, 312, 244), fill=(20, 20, 20))
    return image


def test_colour_names() -> None:
    assert colour_name(0, 128, 128) == "teal"
    assert colour_name(255, 140, 0) == "orange"
    assert colour_name(10, 10, 10) == "black"
    assert colour_name(128, 128, 128) == "grey"
    assert colour_name(250, 250, 250) == "white"
    assert colour_name(120, 60, 20) == "brown"
    assert colour_name(255, 170, 200) == "pink"
    assert colour_name(20, 20, 90) == "navy"


async def test_the_placeholder_describes_colours_light_and_layout() -> None:
    engine = PlaceholderEngine()
    assert engine.capabilities.describe
    assert isinstance(engine, Describer)
    prompts = await engine.describe(teal_and_orange(), 4, no_progress)
    assert len(set(prompts)) == 4
    assert prompts[0] == "a softly lit, mostly teal and orange image with a dark centre"
    assert all("teal" in prompt for prompt in prompts)
    assert prompts == await engine.describe(teal_and_orange(), 4, no_progress)
    assert "--ar" not in " ".join(prompts)


async def test_the_placeholder_sees_dark_and_bright() -> None:
    engine = PlaceholderEngine()
    dark = await engine.describe(Image.new("RGB", (64, 64), (5, 5, 5)), 4, no_progress)
    bright = await engine.describe(Image.new("RGB", (64, 64), (250, 250, 250)), 4, no_progress)
    assert dark[0] == "a dark, mostly black image"
    assert bright[0] == "a bright, mostly white image"
    gradient = Image.linear_gradient("L").convert("RGB")  # black at the top, white below
    assert "lighter at the bottom" in (await engine.describe(gradient, 4, no_progress))[1]


def _masked_request(init: Image.Image, mask: Image.Image) -> GenerateRequest:
    return GenerateRequest(
        prompt="a bird",
        width=init.width,
        height=init.height,
        seeds=(1, 2),
        init_image=init,
        mask=mask,
        strength=1.0,
    )


def _changed(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Where two images differ, as a boolean array."""
    difference = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    result: np.ndarray = difference.max(axis=-1) > 0
    return result


@pytest.mark.parametrize("mode", ["L", "RGBA"])
async def test_the_placeholder_repaints_only_the_painted_region(mode: str) -> None:
    init = Image.new("RGB", (128, 96), (40, 90, 200))
    region = (30, 20, 90, 70)
    if mode == "L":  # white = repaint
        mask = Image.new("L", init.size, 0)
        ImageDraw.Draw(mask).ellipse(region, fill=255)
    else:  # transparent = keep, opaque = repaint
        mask = Image.new("RGBA", init.size, (0, 0, 0, 0))
        ImageDraw.Draw(mask).ellipse(region, fill=(0, 0, 0, 255))
    inside = np.zeros((96, 128), dtype=bool)
    inside[25:65, 40:80] = True  # well within the ellipse
    engine = PlaceholderEngine()
    for tile in await engine.generate(_masked_request(init, mask), no_progress):
        changed = _changed(tile, init)
        ellipse = Image.new("L", init.size, 0)
        ImageDraw.Draw(ellipse).ellipse(region, fill=255)
        outside = np.asarray(ellipse) == 0
        assert not changed[outside].any()  # every pixel outside the mask is the source's
        assert changed[inside].mean() > 0.5  # the pattern is drawn inside it


async def test_the_placeholder_outpaints_around_the_kept_image() -> None:
    source = Image.new("RGB", (64, 64), (200, 30, 30))
    canvas, mask = images.zoom_canvas(source, 2.0, (128, 128))
    engine = PlaceholderEngine()
    tiles = await engine.generate(_masked_request(canvas, mask), no_progress)
    kept = (32, 32, 96, 96)
    for tile in tiles:
        assert tile.crop(kept).tobytes() == canvas.crop(kept).tobytes()
        assert _changed(tile, canvas).mean() > 0.3  # the border is repainted


# --- the diffusers engine ------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers", reason="the local extra is not installed")
    from tests.engines.tiny_caption import build_tiny_blip

    return build_tiny_blip(tmp_path_factory.mktemp("models") / "tiny-blip")


@pytest.fixture
async def describing(
    settings: Settings, tiny_models: TinyModels, tiny_blip: Path
) -> AsyncIterator[Engine]:
    chosen = diffusers_settings(settings, tiny_models.pipeline).with_(caption_model=str(tiny_blip))
    engine = create_engine(chosen)
    await engine.start()
    yield engine
    await engine.close()


def test_the_captioner_setting() -> None:
    assert Settings.from_env({}).caption_model == DEFAULT_CAPTION_MODEL
    assert Settings.from_env({"IMAGINE_CAPTION_MODEL": " "}).caption_model == ""
    assert Settings.from_env({"IMAGINE_CAPTION_MODEL": "/m/blip"}).caption_model == "/m/blip"


async def test_diffusers_describes_through_blip(describing: Engine) -> None:
    assert isinstance(describing, Describer)
    assert describing.capabilities.describe
    assert getattr(describing, "_captioner", None) is None  # not loaded until asked
    fractions: list[float] = []

    def progress(fraction: float, preview: Image.Image | None = None) -> None:
        fractions.append(fraction)

    prompts = await describing.describe(teal_and_orange(), 4, progress)
    assert len(prompts) == 4
    assert len(set(prompts)) == 4
    assert all(prompt and prompt == prompt.strip() for prompt in prompts)
    assert fractions[-1] == 1.0
    # The same picture gets the same prompts; another gets others.
    assert await describing.describe(teal_and_orange(), 4, no_progress) == prompts
    other = Image.new("RGB", (64, 64), (250, 250, 250))
    assert await describing.describe(other, 4, no_progress) != prompts


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing", "is not a folder that exists"),
        ("not-blip", "holds no BLIP captioning model"),
        ("hub", "is not in the Hugging Face cache and HF_HUB_OFFLINE is set"),
    ],
)
async def test_an_unloadable_captioner_is_a_sentence_for_the_operator(
    settings: Settings, tiny_models: TinyModels, tmp_path: Path, where: str, says: str
) -> None:
    caption_model = {
        "missing": str(tmp_path / "no-such-blip"),
        "not-blip": str(tiny_models.pipeline),
        "hub": "imagine-tests/no-such-blip",
    }[where]
    chosen = diffusers_settings(settings, tiny_models.pipeline).with_(caption_model=caption_model)
    engine = create_engine(chosen)
    await engine.start()  # the captioner is not needed to start
    try:
        assert engine.capabilities.describe
        assert isinstance(engine, Describer)
        with pytest.raises(EngineError) as raised:
            await engine.describe(teal_and_orange(), 4, no_progress)
        message = raised.value.message
        assert says in message
        assert "IMAGINE_CAPTION_MODEL" in message
        assert caption_model in message
        assert "Traceback" not in message
        assert "\n" not in message
    finally:
        await engine.close()


async def test_no_captioner_no_describe(settings: Settings, tiny_models: TinyModels) -> None:
    chosen = diffusers_settings(settings, tiny_models.pipeline).with_(caption_model="")
    engine = create_engine(chosen)
    await engine.start()
    try:
        assert not engine.capabilities.describe
        assert isinstance(engine, Describer)
        with pytest.raises(EngineError, match="IMAGINE_CAPTION_MODEL"):
            await engine.describe(teal_and_orange(), 4, no_progress)
    finally:
        await engine.close()


def _reference_weights(folder: Path, texts: list[str]) -> list[float]:
    """How far each of texts[1:] moves the embedding from texts[0], one forward at a time."""
    import torch
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
    encoder = CLIPTextModel.from_pretrained(str(folder / "text_encoder"))
    rows = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=77, return_tensors="pt").input_ids
        with torch.inference_mode():
            output = encoder(input_ids=ids)
        pooled = torch.nn.functional.normalize(output.pooler_output[0], dim=-1)
        mean = torch.nn.functional.normalize(output.last_hidden_state[0].mean(dim=0), dim=-1)
        rows.append((pooled, mean))
    moved = [1.0 - (float(rows[0][0] @ p) + float(rows[0][1] @ m)) / 2.0 for p, m in rows[1:]]
    top = max(moved)
    return [value / top for value in moved]


async def test_diffusers_analyses_with_its_own_tokenizer(
    engine: Engine, tiny_models: TinyModels
) -> None:
    from transformers import CLIPTokenizer

    assert isinstance(engine, PromptAnalyser)
    assert engine.capabilities.tokenizer == "the model's own CLIP tokenizer (77 tokens)"
    words = ["a", "red", "cat", "by", "the", "sea"]
    loaded: Any = getattr(engine, "_loaded")  # noqa: B009 - count the encoder's forwards
    calls: list[int] = []
    hook = loaded.text2img.text_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        analysis = await engine.analyse_prompt(" ".join(words))
    finally:
        hook.remove()
    assert calls == [1]  # the whole text and every ablation: one batch
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_models.pipeline / "tokenizer"))
    assert analysis.limit == 75
    assert [w.word for w in analysis.words] == words
    assert [w.tokens for w in analysis.words] == [
        len(tokenizer(word, add_special_tokens=False).input_ids) for word in words
    ]
    assert max(w.weight for w in analysis.words) == 1.0
    texts = [" ".join(words)] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    expected = _reference_weights(tiny_models.pipeline, texts)
    assert [w.weight for w in analysis.words] == pytest.approx(expected, abs=2e-3)


async def test_diffusers_cuts_each_part_at_the_limit(engine: Engine) -> None:
    assert isinstance(engine, PromptAnalyser)
    word = "zyxwvutsrq"  # no merges in the tiny vocabulary: ten tokens
    whole = await engine.analyse_prompt(" ".join([word] * 10))
    assert [w.tokens for w in whole.words] == [10] * 10
    assert [w.cut for w in whole.words] == [False] * 7 + [True] * 3
    assert all(w.weight == 0 for w in whole.words if w.cut)
    # Multi-prompt parts are encoded apart, each with its own 75 tokens.
    parts = await engine.analyse_prompt(" ".join([word] * 5) + ":: " + " ".join([word] * 5))
    assert not any(w.cut for w in parts.words)
    prompts = shorter(whole, 5)
    assert len(prompts) == 5
    assert all(len(p.split()) <= 7 for p in prompts)


async def test_sdxl_analyses_too(settings: Settings, tiny_sdxl: Path) -> None:
    engine = create_engine(diffusers_settings(settings, tiny_sdxl))
    await engine.start()
    try:
        assert engine.capabilities.tokenizer.startswith("the model's own CLIP tokenizer")
        assert isinstance(engine, PromptAnalyser)
        analysis = await engine.analyse_prompt("hot::2 dog::1 on a plate")
        assert [w.word for w in analysis.words] == ["hot", "::2", "dog", "::1", "on", "a", "plate"]
        assert (analysis.words[1].tokens, analysis.words[1].weight) == (0, 0.0)
        assert max(w.weight for w in analysis.words) == 1.0
    finally:
        await engine.close()
