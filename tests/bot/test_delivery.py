"""Deliveries against the v2 stub: progress shown, the result posted with its buttons, failures
told, and a job kept across a restart. Discord is replaced by a surface that records."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import discord
import pytest
from PIL import Image

from bot.attachments import Upload
from bot.client import ImagineClient
from bot.delivery import LOST, Deliveries
from bot.errors import TOO_LONG
from bot.pending import PendingJob, PendingStore
from bot.progress import no_answer_note, not_started_note
from bot.settings import BotSettings
from cogs.buttons import result_view
from tests.bot.stub_service import UPSCALE_BUTTONS, StubService, png_bytes


@dataclass
class RecordingSurface:
    progress: list[tuple[str, Upload | None]] = field(default_factory=list)
    finished: list[tuple[str, Upload, discord.ui.View]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def show_progress(self, content: str, preview: Upload | None) -> None:
        self.progress.append((content, preview))

    async def finish(self, content: str, upload: Upload, view: discord.ui.View) -> int:
        self.finished.append((content, upload, view))
        return 1234

    async def fail(self, sentence: str) -> None:
        self.failures.append(sentence)


def job(job_id: str, *, button: str = "", prompt: str = "a red square") -> PendingJob:
    return PendingJob(
        job_id=job_id,
        prompt=prompt,
        button=button,
        user_id=42,
        guild_id=7,
        channel_id=9,
        application_id=1,
        token="tok",
        token_expires=0.0,
        message_id=55,
    )


@dataclass
class Harness:
    deliveries: Deliveries
    store: PendingStore
    surface: RecordingSurface


def settings_for(tmp_path: Path, **changes: object) -> BotSettings:
    base = BotSettings(discord_token="t", poll_interval=0.01, edit_interval=0.0, data_dir=tmp_path)
    return BotSettings(**{**base.__dict__, **changes})


@pytest.fixture
async def make(tmp_path: Path, imagine: ImagineClient) -> AsyncIterator[object]:
    stores: list[PendingStore] = []
    client = discord.Client(intents=discord.Intents.default())

    async def build(**changes: object) -> Harness:
        store = await PendingStore.open(tmp_path / "pending.sqlite3")
        stores.append(store)
        surface = RecordingSurface()
        deliveries = Deliveries(
            client,
            imagine,
            store,
            settings_for(tmp_path, **changes),
            result_view,
            surfaces=lambda _job: surface,
        )
        return Harness(deliveries, store, surface)

    yield build
    for store in stores:
        await store.close()


async def test_grid_is_posted_with_nine_buttons(stub: StubService, make: object) -> None:
    h: Harness = await make()  # type: ignore[operator]
    stub.finish("job1", image=png_bytes((256, 256)))

    await h.deliveries.start(job("job1"))
    await h.deliveries.wait_idle()

    texts = [text for text, _ in h.surface.progress]
    assert texts[0] == "**a red square** - <@42> (Waiting to start: 2 ahead in the queue)"
    assert texts[1].startswith("**a red square** - <@42> (50%) ▰▰▰▰▰▱▱▱▱▱")
    assert h.surface.progress[1][1] is not None  # the preview image is attached
    [(content, upload, view)] = h.surface.finished
    assert content == "**a red square** - <@42>"
    assert upload.filename.endswith(".webp")  # grids go out as WebP or JPEG
    assert Image.open(io.BytesIO(upload.data)).size == (256, 256)
    ids = [item.custom_id for item in view.children if isinstance(item, discord.ui.DynamicItem)]
    assert ids == [f"mj:b-job1:{b}" for b in ("U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4")]
    assert await h.store.all() == []


async def test_tiles_withheld_by_the_safety_checker_are_named_and_have_no_buttons(
    stub: StubService, make: object
) -> None:
    h: Harness = await make()  # type: ignore[operator]
    buttons = ["U1", "U3", "U4", "🔄", "V1", "V3", "V4"]  # the service dropped U2 and V2
    stub.finish("job9", image=png_bytes((256, 256)), buttons=buttons, blocked=[2])

    await h.deliveries.start(job("job9"))
    await h.deliveries.wait_idle()

    [(content, _, view)] = h.surface.finished
    assert content == (
        "**a red square** - <@42>\n"
        "Image 2 was blocked by the model's safety checker, so it has no U or V."
    )
    labels = [item.item.label for item in view.children if isinstance(item, discord.ui.DynamicItem)]
    assert "U2" not in labels
    assert "V2" not in labels


async def test_upscale_is_a_png_with_its_own_buttons(stub: StubService, make: object) -> None:
    h: Harness = await make()  # type: ignore[operator]
    stub.finish("job2", image=png_bytes((128, 128)), kind="upscale", buttons=UPSCALE_BUTTONS)

    await h.deliveries.start(job("job2", button="U2"))
    await h.deliveries.wait_idle()

    [(content, upload, view)] = h.surface.finished
    assert content == "**a red square** - Image #2 <@42>"
    assert upload.filename.endswith(".png")
    labels = [item.item.label for item in view.children if isinstance(item, discord.ui.DynamicItem)]
    assert sorted(labels) == sorted(UPSCALE_BUTTONS)


async def test_oversize_result_is_reencoded_under_the_limit(
    stub: StubService, make: object
) -> None:
    h: Harness = await make(upload_limit=40_000)  # type: ignore[operator]
    noise = Image.frombytes("RGB", (512, 512), os.urandom(512 * 512 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    stub.finish("job3", image=out.getvalue())

    await h.deliveries.start(job("job3"))
    await h.deliveries.wait_idle()

    [(_, upload, _)] = h.surface.finished
    assert len(upload.data) <= 40_000
    Image.open(io.BytesIO(upload.data)).load()


async def test_failed_job_is_told_in_plain_words(stub: StubService, make: object) -> None:
    h: Harness = await make()  # type: ignore[operator]
    stub.fail("job4", "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND", "Took too long.")

    await h.deliveries.start(job("job4"))
    await h.deliveries.wait_idle()

    assert h.surface.failures == [TOO_LONG]
    assert h.surface.finished == []
    assert await h.store.all() == []


async def test_a_job_the_service_forgot_is_told(make: object) -> None:
    h: Harness = await make()  # type: ignore[operator]
    await h.deliveries.start(job("ghost"))
    await h.deliveries.wait_idle()
    assert h.surface.failures == [LOST]


async def test_progress_edits_are_paced(stub: StubService, make: object) -> None:
    h: Harness = await make(edit_interval=60.0)  # type: ignore[operator]
    stub.finish("job5", image=png_bytes())

    await h.deliveries.start(job("job5"))
    await h.deliveries.wait_idle()

    assert h.surface.progress == []  # the message was just created: no edit within the interval
    assert len(h.surface.finished) == 1


async def test_waiting_too_long_gives_up(stub: StubService, make: object) -> None:
    h: Harness = await make(job_wait=0.05)  # type: ignore[operator]
    stub.states["job6"] = [{"progress": 10, "status": "running", "queuePosition": None}]

    await h.deliveries.start(job("job6"))
    await h.deliveries.wait_idle()

    assert h.surface.failures == [TOO_LONG]


async def test_a_restart_resumes_pending_jobs(stub: StubService, make: object) -> None:
    first: Harness = await make()  # type: ignore[operator]
    stub.states["job7"] = [{"progress": 10, "status": "running", "queuePosition": None}]
    await first.deliveries.start(job("job7"))
    assert first.deliveries.in_flight(42) == 1
    await asyncio.sleep(0.05)
    await first.deliveries.close()  # the bot stops mid-job
    assert [p.job_id for p in await first.store.all()] == ["job7"]

    stub.finish("job7", image=png_bytes())
    second: Harness = await make()  # type: ignore[operator]
    for pending in await second.store.all():
        second.deliveries.resume(pending)
    await second.deliveries.wait_idle()

    assert len(second.surface.finished) == 1
    assert await second.store.all() == []
    assert second.deliveries.in_flight(42) == 0


async def test_a_job_accepted_while_stopping_waits_for_the_next_start(
    stub: StubService, make: object
) -> None:
    h: Harness = await make()  # type: ignore[operator]
    await h.deliveries.close()
    await h.deliveries.start(job("late"))  # a command finishing during shutdown
    assert h.deliveries.in_flight(42) == 0
    assert [p.job_id for p in await h.store.all()] == ["late"]


async def test_a_stop_waits_for_a_command_still_making_its_message(
    stub: StubService, make: object
) -> None:
    """SIGTERM while a command is between its progress message and its delivery: the stop waits
    for it, so its job is stored with its message (not cut off with the stores closed)."""
    h: Harness = await make()  # type: ignore[operator]
    posted = asyncio.Event()
    release = asyncio.Event()

    async def place(index: int, pending: PendingJob) -> int:
        posted.set()
        await release.wait()  # Discord is slow to answer the edit
        return 88

    command = asyncio.create_task(h.deliveries.accept([job("mid")], place))
    await posted.wait()
    stopping = asyncio.create_task(h.deliveries.close())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # it waits for the command
    release.set()
    await stopping
    await command
    assert [(p.job_id, p.message_id) for p in await h.store.all()] == [("mid", 88)]
    assert h.deliveries.in_flight(42) == 0  # delivered on the next start, not by this process


async def test_accepted_jobs_survive_a_failing_progress_message(
    stub: StubService, make: object
) -> None:
    h: Harness = await make()  # type: ignore[operator]
    stub.finish("p1", image=png_bytes((64, 64)))
    stub.finish("p2", image=png_bytes((64, 64)))
    stored: list[list[str]] = []

    async def place(index: int, pending: PendingJob) -> int:
        stored.append([j.job_id for j in await h.store.all()])
        if index == 1:
            raise discord.HTTPException(type("R", (), {"status": 500, "reason": "boom"})(), "boom")
        return 77

    with pytest.raises(discord.HTTPException):
        await h.deliveries.accept([job("p1"), job("p2")], place)
    assert sorted(stored[0]) == ["p1", "p2"]  # both remembered before Discord was asked anything
    await h.deliveries.wait_idle()
    assert len(h.surface.finished) == 2  # the one without a progress message is still posted
    assert await h.store.all() == []


async def test_time_in_the_queue_does_not_count_as_too_long(
    stub: StubService, make: object
) -> None:
    h: Harness = await make(job_wait=0.05)  # type: ignore[operator]
    queued = {"progress": 0, "status": "queued", "queuePosition": 3}
    stub.states["job9"] = [queued] * 20  # ~0.2 s in the queue, four times the wait
    stub.finish("job9", image=png_bytes((64, 64)))

    await h.deliveries.start(job("job9"))
    await h.deliveries.wait_idle()

    assert h.surface.failures == []
    assert len(h.surface.finished) == 1


async def shown(h: Harness, words: str, timeout: float = 5.0) -> str:
    """The first progress text containing ``words``, once the delivery has shown it."""
    async with asyncio.timeout(timeout):
        while True:
            for text, _ in h.surface.progress:
                if words in text:
                    return text
            await asyncio.sleep(0.01)


async def test_a_job_that_never_starts_is_told_and_kept(stub: StubService, make: object) -> None:
    h: Harness = await make(queue_notice=0.2)  # type: ignore[operator]
    stub.states["stuck"] = [{"progress": 0, "status": "queued", "queuePosition": 0}]

    await h.deliveries.start(job("stuck"))
    text = await shown(h, "has not started")

    assert text == (
        "**a red square** - <@42> (Waiting to start: next in the queue)\n"
        "The image service has not started this job after 0.2 seconds; it is still queued, "
        "and the result will be posted here when it is done."
    )
    assert not_started_note(600) == (
        "\nThe image service has not started this job after 10 minutes; it is still queued, "
        "and the result will be posted here when it is done."
    )
    await asyncio.sleep(0.1)
    assert h.surface.failures == []
    assert [p.job_id for p in await h.store.all()] == ["stuck"]  # kept: a restart resumes it
    assert h.deliveries.in_flight(42) == 1  # and it is still being polled

    stub.finish("stuck", image=png_bytes((64, 64)))  # the service comes back to life
    await h.deliveries.wait_idle()
    assert len(h.surface.finished) == 1
    assert await h.store.all() == []


async def test_a_service_that_stops_answering_is_told_and_the_job_kept(
    stub: StubService, make: object
) -> None:
    h: Harness = await make(queue_notice=0.2)  # type: ignore[operator]
    stub.states["quiet"] = [{"progress": 0, "status": "queued", "queuePosition": 2}]
    stub.down = True

    await h.deliveries.start(job("quiet"))
    text = await shown(h, "has not answered")

    assert text.endswith(no_answer_note(0.2))
    assert no_answer_note(0.2) == (
        "\nThe image service has not answered for 0.2 seconds; the bot keeps asking, "
        "and the result will be posted here when it is done."
    )
    assert h.surface.failures == []
    assert [p.job_id for p in await h.store.all()] == ["quiet"]

    stub.down = False
    stub.finish("quiet", image=png_bytes((64, 64)))
    await h.deliveries.wait_idle()
    assert len(h.surface.finished) == 1
    assert await h.store.all() == []
