"""Every refusal is a short private message in plain words: the banned word, the invalid
parameter, the per-user limit, the missing permission."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.e2e.conftest import BotLauncher, BotProcess
from tests.e2e.screen import is_ephemeral, refused
from tests.fakediscord import FakeDiscord
from tests.fakediscord.payloads import ATTACH_FILES, BOT_PERMISSIONS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(launcher: BotLauncher) -> BotProcess:
    # Slow jobs, so that a user's jobs are still unfinished when the next one is asked for.
    return await launcher.start(IMAGINE_PLACEHOLDER_SECONDS="3", MAX_JOBS_PER_USER="3")


async def test_banned_word_is_named(fake: FakeDiscord, bot: BotProcess) -> None:
    text = await refused(fake, "a nude statue in a park")
    assert text == "Your prompt was refused: the word “nude” is not allowed here. Rephrase it."


async def test_invalid_parameter_says_which_and_why(fake: FakeDiscord, bot: BotProcess) -> None:
    text = await refused(fake, "a castle --chaos 500")
    assert text.startswith("Invalid parameter: --chaos must be between 0 and 100")
    assert text.endswith("See /help for the parameters and their ranges.")


async def test_missing_attach_permission_is_named(fake: FakeDiscord, bot: BotProcess) -> None:
    channel = fake.add_channel("no-files", permissions=BOT_PERMISSIONS & ~ATTACH_FILES)
    inter = await fake.slash("imagine", {"prompt": "a cat"}, channel_id=channel["id"])
    notice = await fake.wait_for(lambda: inter.original)
    assert inter.response_type == 4  # refused before deferring: a direct private reply
    assert is_ephemeral(notice)
    assert (
        notice["content"]
        == "I can't post results here: I need the Attach Files permission in this channel."
    )


async def test_fourth_unfinished_job_is_refused(fake: FakeDiscord, bot: BotProcess) -> None:
    user = fake.add_user("busy")
    for n in range(3):
        inter = await fake.slash("imagine", {"prompt": f"a tree number {n}"}, user=user)
        await fake.wait_for(lambda i=inter: i.original and "Waiting" in i.original["content"])  # type: ignore[misc]
    text = await refused(fake, "one more tree", user=user)
    assert text == (
        "You already have 3 images in progress (the limit is 3 per person). "
        "Wait for one to finish, then try again."
    )
    # somebody else is not held back by that user's jobs
    other = await fake.slash("imagine", {"prompt": "a bush"}, user=fake.add_user("calm"))
    await fake.wait_for(lambda: other.original and "Waiting" in other.original["content"])


async def test_permutations_past_the_limit_are_refused(fake: FakeDiscord, bot: BotProcess) -> None:
    text = await refused(fake, "a {red, green, blue, grey} tree", user=fake.add_user("greedy"))
    assert (
        text
        == "You have 0 unfinished jobs and this adds 4; the limit is 3. Wait for some to finish."
    )


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("--ar 16:9", "The prompt is empty"),
        ("a cat --ar 5:1", "--ar"),
        ("a cat --seed banana", "--seed"),
        ("a cat --foo 3", "Unrecognized parameter(s): `--foo`"),
        ("{a,b,c,d,e,f,g} {1,2,3,4,5,6,7} cat", "40"),
        ("a {red, blue cat", "{"),
        ("a:: cat::-3", "::"),
        ("https:// a cat", "has no host name"),
    ],
)
async def test_bad_slash_inputs_get_a_private_sentence(
    fake: FakeDiscord, bot: BotProcess, prompt: str, words: str
) -> None:
    text = await refused(fake, prompt, user=fake.add_user("typo"))
    assert words in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "words"),
    [
        (b"just some words", "notes.txt", "text/plain", "is not an image I can read"),
        (b"\x89PNG\r\n\x1a\n broken", "broken.png", "image/png", "The image could not be read"),
    ],
)
async def test_bad_attachments_get_a_private_sentence(
    fake: FakeDiscord, bot: BotProcess, data: bytes, filename: str, content_type: str, words: str
) -> None:
    attachments = {"image": (data, filename, content_type)}
    text = await refused(fake, "a cat", user=fake.add_user("attacher"), attachments=attachments)
    assert words in text
