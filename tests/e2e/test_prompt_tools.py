"""/describe and /shorten through the real ``python -m bot`` (embedded service, placeholder
engine) against the fake Discord: prompts posted numbered, their buttons imagine them."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import TIMEOUT, button, labels, private_notice, reply_to
from tests.fakediscord import FakeDiscord, FakeInteraction

pytestmark = pytest.mark.asyncio(loop_scope="module")

DIGITS = ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣"]
JSON = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="0.2")


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


async def prompts_message(fake: FakeDiscord, inter: FakeInteraction) -> JSON:
    """The command's response once it carries its numbered prompts and their buttons."""

    def ready() -> JSON | None:
        original = inter.original
        return original if original and set(labels(original)) - {"Cancel"} else None

    return await fake.wait_for(ready, TIMEOUT)


def numbered(message: JSON) -> dict[str, str]:
    lines = message["content"].split("\n")
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if line[:3] in DIGITS}


async def test_describe_posts_four_numbered_prompts_and_digit_buttons(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    attachments = {"image": (png((96, 64), (200, 40, 40)), "red.png", "image/png")}
    inter = await fake.slash("describe", attachments=attachments)
    message = await prompts_message(fake, inter)
    assert inter.ack_delay is not None
    assert inter.ack_delay < 3.0
    owner = fake.owner["id"]
    assert message["content"].startswith(f"**Describe red.png** - <@{owner}>")
    assert labels(message) == [*DIGITS[:4], "🔄"]
    prompts = numbered(message)
    assert list(prompts) == DIGITS[:4]
    assert all(p.endswith("--ar 3:2") for p in prompts.values()), prompts  # the image's shape
    assert len(set(prompts.values())) == 4
    assert message["attachments"] == []
    assert len(message["content"]) <= 2000

    # 2️⃣ imagines the second prompt: a grid replying to the describe
    click = await fake.click(message["id"], button(message, "2️⃣")["custom_id"])
    grid = await reply_to(fake, message["id"])
    assert click.ack_delay is not None
    assert click.ack_delay < 3.0
    assert "U1" in labels(grid)
    text = prompts["2️⃣"].replace("\\", "")
    assert grid["content"].startswith(f"**{text.split(' --')[0]}")
    assert "--ar 3:2" in grid["content"]
    [attachment] = grid["attachments"]
    assert attachment["width"] > attachment["height"]  # the prompt's --ar 3:2 was used


async def test_describe_again_reads_the_same_image(fake: FakeDiscord, bot: BotProcess) -> None:
    attachments = {"image": (png((64, 64), (30, 30, 220)), "blue.png", "image/png")}
    inter = await fake.slash("describe", attachments=attachments)
    message = await prompts_message(fake, inter)
    await fake.click(message["id"], button(message, "🔄")["custom_id"])

    def again() -> JSON | None:
        replies = [
            m
            for m in fake.messages()
            if (m.get("message_reference") or {}).get("message_id") == message["id"]
            and set(labels(m)) - {"Cancel"}
        ]
        return replies[0] if replies else None

    second = await fake.wait_for(again, TIMEOUT)
    assert labels(second) == [*DIGITS[:4], "🔄"]
    assert all(p.endswith("--ar 1:1") for p in numbered(second).values())


async def test_describe_refuses_without_an_image_or_with_both(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    nothing = await fake.slash("describe", user=fake.add_user("empty-handed"))
    notice = await private_notice(fake, nothing)
    assert "Attach an image or give a link" in notice["content"]
    attachments = {"image": (png((32, 32), (1, 2, 3)), "x.png", "image/png")}
    both = await fake.slash(
        "describe", {"link": "https://example.com/a.png"}, attachments=attachments
    )
    assert "not both" in (await private_notice(fake, both))["content"]
    text = await fake.slash("describe", {"link": "a cat"})
    assert "is not a link" in (await private_notice(fake, text))["content"]
    note = await fake.slash(
        "describe", attachments={"image": (b"plain words", "notes.txt", "text/plain")}
    )
    assert "is not an image I can read" in (await private_notice(fake, note))["content"]


async def test_shorten_offers_five_shorter_prompts_that_imagine(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    prompt = (
        "a very beautiful and extremely detailed majestic lighthouse standing on a rocky cliff "
        "at dusk with dramatic clouds, warm light, crashing waves, cinematic --ar 16:9"
    )
    inter = await fake.slash("shorten", {"prompt": prompt})
    message = await prompts_message(fake, inter)
    assert message["content"].startswith("**Shorten a very beautiful")
    assert labels(message) == DIGITS
    shorter = numbered(message)
    assert all(p.endswith("--ar 16:9") for p in shorter.values())  # parameters are kept
    lengths = [len(shorter[d]) for d in DIGITS]
    assert lengths == sorted(lengths, reverse=True)  # from the fullest to the shortest
    assert lengths[-1] < len(prompt) / 2
    await fake.click(message["id"], button(message, "1️⃣")["custom_id"])
    grid = await reply_to(fake, message["id"])
    assert "U1" in labels(grid)


async def test_a_burst_of_describes_from_many_members_all_answer(
    fake: FakeDiscord, bot: BotProcess
) -> None:
    members = [fake.add_user(f"describer{n}") for n in range(12)]
    inters = [
        await fake.slash(
            "describe",
            user=member,
            attachments={"image": (png((48, 48), (n * 20, 100, 50)), f"p{n}.png", "image/png")},
        )
        for n, member in enumerate(members)
    ]
    messages = await asyncio.gather(*(prompts_message(fake, i) for i in inters))
    for member, message in zip(members, messages, strict=True):
        assert f"<@{member['id']}>" in message["content"]
        assert labels(message) == [*DIGITS[:4], "🔄"]
    assert all(i.ack_delay is not None and i.ack_delay < 3.0 for i in inters)
