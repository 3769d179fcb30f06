"""The words of a job's message: Midjourney's layout, queue position, a bar, paced edits."""

from __future__ import annotations

import pytest

from bot.client import JobProgress
from bot.progress import EditPacer, bar, headline, progress_text, status_line


@pytest.mark.parametrize(
    ("button", "expected"),
    [
        ("", "**a cat** - <@5>"),
        ("🔄", "**a cat** - <@5>"),
        ("U2", "**a cat** - Image #2 <@5>"),
        ("V3", "**a cat** - Variations by <@5>"),
        ("Vary (Strong)", "**a cat** - Variations (Strong) by <@5>"),
        ("Zoom Out 2x", "**a cat** - Zoom Out 2x by <@5>"),
        ("⬅️", "**a cat** - Pan Left by <@5>"),
        ("Upscale (4x)", "**a cat** - Upscaled (4x) by <@5>"),
    ],
)
def test_headline_names_the_action(button: str, expected: str) -> None:
    assert headline("a   cat", 5, button) == expected


def test_headline_escapes_markdown_and_stays_under_discords_limit() -> None:
    assert headline("**bold** _x_", 1) == r"**\*\*bold\*\* \_x\_** - <@1>"
    assert (
        len(progress_text("word " * 1000, 1, "V1", JobProgress(50, "running", None, None))) < 2000
    )


def test_status_line() -> None:
    assert status_line(None) == "(Waiting to start)"
    assert status_line(JobProgress(0, "queued", 0, None)) == "(Waiting to start: next in the queue)"
    assert (
        status_line(JobProgress(0, "queued", 3, None)) == "(Waiting to start: 3 ahead in the queue)"
    )
    assert status_line(JobProgress(70, "running", None, None)) == "(70%) ▰▰▰▰▰▰▰▱▱▱"
    assert bar(0) == "▱" * 10
    assert bar(100) == "▰" * 10


def test_pacer_allows_one_edit_per_interval() -> None:
    now = [100.0]
    pacer = EditPacer(2.0, clock=lambda: now[0])
    assert pacer.ready()
    pacer.mark()
    now[0] = 101.9
    assert not pacer.ready()
    now[0] = 102.0
    assert pacer.ready()


def test_a_long_prompt_of_markdown_stays_under_discords_limit() -> None:
    from bot.progress import headline

    for prompt in ("*" * 1500, "a_" * 750, "\\" * 1500):
        text = headline(prompt, 123456789012345678, "Vary (Strong)")
        assert len(text) <= 2000
        body = text[2 : text.index("** - ")].removesuffix("…")
        assert (len(body) - len(body.rstrip("\\"))) % 2 == 0  # no half escape before the cut
