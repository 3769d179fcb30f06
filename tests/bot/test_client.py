"""ImagineClient against the v2 stub: requests as the contract says, answers typed, errors sorted."""

from __future__ import annotations

import json
import socket

import pytest

from bot.client import (
    ImagineClient,
    ImagineError,
    JobProgress,
    JobRef,
    JobResult,
    ServiceUnavailable,
)
from tests.bot.stub_service import StubService, png_bytes

REF = JobRef(user_id=42, guild_id=7, channel_id=9)


async def test_imagine_sends_msg_ref_and_token(stub: StubService, imagine: ImagineClient) -> None:
    submitted = await imagine.imagine("a red square --ar 3:2", REF)

    assert submitted.message_id == "job1"
    assert submitted.message_ids == ("job1",)
    request = stub.requests[-1]
    assert request.authorization == "Bearer secret-token"
    assert request.body is not None
    assert request.body["msg"] == "a red square --ar 3:2"
    assert json.loads(request.body["ref"]) == {"user": "42", "guild": "7", "channel": "9"}


async def test_permutations_give_every_job_id(stub: StubService, imagine: ImagineClient) -> None:
    stub.submit_answer = (
        200,
        {"success": True, "messageId": "a", "messageIds": ["a", "b"], "createdAt": "x"},
    )
    assert (await imagine.imagine("a {red, blue} bird", REF)).message_ids == ("a", "b")


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            400,
            {"success": False, "msg": "Invalid phrase: 'gore'", "code": "BANNED_PROMPT"},
            "BANNED_PROMPT",
        ),
        (
            400,
            {
                "success": False,
                "msg": "Invalid parameter: --ar must be two whole numbers like 16:9",
                "code": "INVALID_PARAMETER",
            },
            "INVALID_PARAMETER",
        ),
        (429, {"success": False, "msg": "QUEUE_FULL", "code": "QUEUE_FULL"}, "QUEUE_FULL"),
    ],
)
async def test_refusals_carry_code_and_sentence(
    stub: StubService, imagine: ImagineClient, status: int, body: dict[str, object], code: str
) -> None:
    stub.submit_answer = (status, body)
    with pytest.raises(ImagineError) as caught:
        await imagine.imagine("anything", REF)
    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.message == body["msg"]


async def test_already_upscaled_names_the_earlier_result(
    stub: StubService, imagine: ImagineClient
) -> None:
    stub.submit_answer = (
        409,
        {
            "success": False,
            "msg": "Already upscaled.",
            "code": "ALREADY_REQUESTED_UPSCALE",
            "messageId": "earlier",
        },
    )
    with pytest.raises(ImagineError) as caught:
        await imagine.button("b-job1", "U2", REF)
    assert caught.value.message_id == "earlier"
    body = stub.requests[-1].body
    assert body is not None
    assert (body["buttonMessageId"], body["button"]) == ("b-job1", "U2")


@pytest.mark.parametrize(
    ("status", "body"), [(401, {"success": False, "msg": "Unauthorized"}), (500, {"error": "boom"})]
)
async def test_auth_and_server_failures_are_unavailable(
    stub: StubService, imagine: ImagineClient, status: int, body: dict[str, object]
) -> None:
    stub.submit_answer = (status, body)
    with pytest.raises(ServiceUnavailable):
        await imagine.imagine("x", REF)


async def test_unreachable_service_is_a_sentence() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ImagineClient(f"http://127.0.0.1:{port}", timeout=2)
    try:
        with pytest.raises(ServiceUnavailable, match="can't be reached"):
            await client.info()
    finally:
        await client.close()


async def test_message_progress_then_result(stub: StubService, imagine: ImagineClient) -> None:
    stub.finish("job9", image=png_bytes())

    queued = await imagine.message("job9", expire_minutes=30)
    running = await imagine.message("job9")
    done = await imagine.message("job9")

    assert queued == JobProgress(progress=0, status="queued", queue_position=2, preview_url=None)
    assert isinstance(running, JobProgress)
    assert running.progress == 50
    assert running.preview_url == stub.image_url("job9-preview.png")
    assert isinstance(done, JobResult)
    assert not done.failed
    assert done.buttons[:4] == ("U1", "U2", "U3", "U4")
    assert done.button_message_id == "b-job9"
    assert stub.requests[0].query == {"expireMins": "30"}


async def test_failed_result_keeps_code_and_error(
    stub: StubService, imagine: ImagineClient
) -> None:
    stub.fail("job3", "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND", "Generation took too long.")
    result = await imagine.message("job3")
    assert isinstance(result, JobResult)
    assert result.failed
    assert result.content == "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND"


async def test_unknown_job_is_a_refusal(imagine: ImagineClient) -> None:
    with pytest.raises(ImagineError) as caught:
        await imagine.message("nope")
    assert caught.value.status == 404


async def test_info_and_download(stub: StubService, imagine: ImagineClient) -> None:
    stub.info_answer = {"userUnfinished": 2}
    info = await imagine.info(42)
    assert (info.engine, info.placeholder, info.user_unfinished) == ("placeholder", True, 2)
    assert stub.requests[-1].query == {"user": "42"}

    stub.images["x.png"] = png_bytes()
    assert await imagine.download(stub.image_url("x.png")) == stub.images["x.png"]
    assert stub.requests[-1].authorization is None  # capability URLs: the token stays private
    with pytest.raises(ServiceUnavailable):
        await imagine.download(stub.image_url("missing.png"))
