"""midjourney-proxy's routes: ``/mj/submit/*`` makes tasks, ``/mj/task/*`` reads and cancels them.

A task is a job: its id is the job's id, so a job made through ``/v2/imagine`` is fetched,
pressed and cancelled here, and a task made here is read through ``/v2/message``. ``state`` is
kept as the job's ``ref`` and ``notifyHook`` as its webhook (its body is the task object).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imagine.codes import ResultCode
from imagine.edges.common import MAX_DATA_BODY, body, flag, image_data, string, token
from imagine.edges.mj import envelope
from imagine.edges.mj.customid import parse
from imagine.edges.mj.task import STATUS, modal_view, task_view
from imagine.errors import ServiceError
from imagine.jobs import Job, JobStatus
from imagine.keys import SERVICE, SETTINGS
from imagine.service.presses import MODAL_ALWAYS, REMIXABLE
from imagine.store import Modal

CHANGES = {"UPSCALE": "U", "VARIATION": "V"}
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")


def _common(request: web.Request, data: dict[str, Any]) -> dict[str, Any]:
    """What every submit takes: ``state`` (echoed on the task), ``notifyHook``, the token."""
    return {
        "ref": string(data, "state", limit=100_000),
        "webhook": string(data, "notifyHook", limit=2000),
        "token": token(request),
    }


def _images(data: dict[str, Any], name: str, *, low: int, high: int) -> list[bytes]:
    value = data.get(name)
    if value is None:
        value = []
    if not isinstance(value, list):
        raise ServiceError(400, ResultCode.INVALID_PARAMETER,
                           f"'{name}' must be a list of data URLs.")  # fmt: skip
    if not low <= len(value) <= high:
        raise ServiceError(
            400, ResultCode.INVALID_PARAMETER,
            f"'{name}' takes {low} to {high} images; got {len(value)}.",
        )  # fmt: skip
    return [image_data(item, f"{name}[{n}]") for n, item in enumerate(value)]


async def _submitted(request: web.Request, jobs: list[Job]) -> web.Response:
    """Code 1, or 22 (in the queue) with how many tasks wait before it."""
    extra: dict[str, Any] = {}
    if len(jobs) > 1:  # a {a, b} prompt is one task per expansion
        extra["taskIds"] = [job.id for job in jobs]
    try:
        ahead = await request.app[SERVICE].store.count_waiting() - len(jobs)
    except Exception:  # a count is a nicety: the task is in already
        ahead = 0
    if ahead > 0:
        return envelope.answer(
            envelope.IN_QUEUE, f"In queue, there are {ahead} tasks ahead", jobs[0].id,
            numberOfQueues=ahead, **extra,
        )  # fmt: skip
    return envelope.answer(envelope.SUCCESS, "Submit success", jobs[0].id, **extra)


async def imagine(request: web.Request) -> web.Response:
    data = await body(request, MAX_DATA_BODY)
    images = _images(data, "base64Array", low=0, high=5)
    if data.get("base64"):  # the older single image prompt
        images.append(image_data(data["base64"], "base64"))
    prompt = string(data, "prompt", limit=100_000)
    bot = string(data, "botType", limit=40) or "MID_JOURNEY"
    if bot not in BOT_TYPES:
        raise ServiceError(400, ResultCode.INVALID_PARAMETER,
                           f"botType must be MID_JOURNEY or NIJI_JOURNEY, not {bot[:40]!r}.")  # fmt: skip
    if bot == "NIJI_JOURNEY" and "--niji" not in prompt and "--v" not in prompt:
        prompt = f"{prompt} --niji"
    jobs = await request.app[SERVICE].imagine(
        prompt, images=images, speed=envelope.mode(request.path), contract="mj",
        **_common(request, data),
    )  # fmt: skip
    return await _submitted(request, jobs)


async def _press(
    request: web.Request, task: Job, button: str, data: dict[str, Any]
) -> web.Response:
    service = request.app[SERVICE]
    try:
        job = await service.press(
            task.button_message_id, button, speed=envelope.mode(request.path), contract="mj",
            **_common(request, data),
        )  # fmt: skip
    except ServiceError as exc:
        earlier_id = exc.extra.get("messageId")
        if exc.code is not ResultCode.ALREADY_REQUESTED_UPSCALE or not earlier_id:
            raise
        earlier = task_view(await service.job(earlier_id, token(request)), None, _base(request))
        return envelope.answer(
            envelope.EXISTED, "Task already exists", earlier_id,
            status=earlier["status"], imageUrl=earlier["imageUrl"],
        )  # fmt: skip
    return await _submitted(request, [job])


def _base(request: web.Request) -> str:
    return request.app[SETTINGS].base_url


async def _task(request: web.Request, task_id: str) -> Job:
    if not task_id.strip():
        raise ServiceError(400, ResultCode.INVALID_PARAMETER, "'taskId' is missing.")
    return await request.app[SERVICE].job(task_id.strip(), token(request))


async def change(request: web.Request) -> web.Response:
    data = await body(request)
    task = await _task(request, string(data, "taskId", required=True, limit=100))
    action = string(data, "action", required=True, limit=40).upper()
    index = data.get("index")
    if action == "REROLL":
        return await _press(request, task, "🔄", data)
    if action not in CHANGES:
        raise ServiceError(400, ResultCode.INVALID_PARAMETER,
                           f"action must be UPSCALE, VARIATION or REROLL, not {action[:40]!r}.")  # fmt: skip
    if isinstance(index, bool) or index not in (1, 2, 3, 4):
        raise ServiceError(400, ResultCode.INVALID_PARAMETER,
                           f"index must be 1, 2, 3 or 4 for {action}.")  # fmt: skip
    return await _press(request, task, f"{CHANGES[action]}{index}", data)


async def simple_change(request: web.Request) -> web.Response:
    data = await body(request)
    content = string(data, "content", required=True, limit=200).split()
    wanted = content[1].upper() if len(content) == 2 else ""
    if wanted == "R":
        button = "🔄"
    elif len(wanted) == 2 and wanted[0] in "UV" and wanted[1] in "1234":
        button = wanted
    else:
        raise ServiceError(
            400, ResultCode.INVALID_PARAMETER,
            'content must be a task id and a button, like "1689231405853400 U2" (U1–U4, '
            "V1–V4 or R).",
        )  # fmt: skip
    return await _press(request, await _task(request, content[0]), button, data)


async def action(request: web.Request) -> web.Response:
    data = await body(request)
    task = await _task(request, string(data, "taskId", required=True, limit=100))
    try:
        button, message_hash = parse(string(data, "customId", required=True, limit=200))
    except ValueError as exc:
        raise ServiceError(400, ResultCode.INVALID_PARAMETER, f"{exc}.") from None
    if message_hash is not None and message_hash != task.button_message_id:
        raise ServiceError(
            400, ResultCode.INVALID_PARAMETER,
            f"That customId is a button of another task than {task.id}.",
        )  # fmt: skip
    remix = flag(data, "enableRemix")
    if task.type not in ("describe", "shorten") and (
        button in MODAL_ALWAYS or (remix and button in REMIXABLE)
    ):
        modal = await request.app[SERVICE].open_modal(
            task, button, speed=envelope.mode(request.path), **_common(request, data)
        )
        return envelope.answer(
            envelope.EXISTED, "Waiting for window confirm", modal.id,
            finalPrompt=modal.prompt, remix=True,
        )  # fmt: skip
    return await _press(request, task, button, data)


async def modal(request: web.Request) -> web.Response:
    data = await body(request, MAX_DATA_BODY)
    mask = data.get("maskBase64")
    job = await request.app[SERVICE].submit_modal(
        string(data, "taskId", required=True, limit=100).strip(),
        prompt=string(data, "prompt", limit=4000),
        mask=None if mask in (None, "") else image_data(mask, "maskBase64"),
        token=token(request),
    )
    return await _submitted(request, [job])


async def describe(request: web.Request) -> web.Response:
    data = await body(request, MAX_DATA_BODY)
    raw = data.get("base64")
    job = await request.app[SERVICE].describe(
        url=string(data, "link", limit=2000),
        image=None if raw in (None, "") else image_data(raw, "base64"),
        speed=envelope.mode(request.path), contract="mj", **_common(request, data),
    )  # fmt: skip
    return await _submitted(request, [job])


async def blend(request: web.Request) -> web.Response:
    data = await body(request, MAX_DATA_BODY)
    jobs = await request.app[SERVICE].blend(
        images=_images(data, "base64Array", low=2, high=5),
        dimensions=string(data, "dimensions", limit=40),
        speed=envelope.mode(request.path), contract="mj", **_common(request, data),
    )  # fmt: skip
    return await _submitted(request, jobs)


async def shorten(request: web.Request) -> web.Response:
    data = await body(request)
    job = await request.app[SERVICE].shorten(
        string(data, "prompt", required=True, limit=4000), contract="mj",
        **_common(request, data),
    )  # fmt: skip
    return await _submitted(request, [job])


def _view(request: web.Request, item: Job | Modal) -> dict[str, Any]:
    if isinstance(item, Modal):
        return modal_view(item)
    state = request.app[SERVICE].runner.states.get(item.id)
    return task_view(item, state, _base(request))


def _unknown(task_id: str) -> web.Response:
    return envelope.refusal(404, f"No task has id {task_id[:100]!r}.", None, {}, keep=True)


async def fetch(request: web.Request) -> web.Response:
    task_id = request.match_info["id"]
    found = await request.app[SERVICE].jobs([task_id], token(request))
    if not found:
        return _unknown(task_id)
    return web.json_response(_view(request, found[0]))


async def list_by_condition(request: web.Request) -> web.Response:
    """``{ids}``: the known ones among them, as a JSON array (new-api polls every 15 s)."""
    data = await body(request)
    ids = data.get("ids")
    if ids is None:
        ids = []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ServiceError(400, ResultCode.INVALID_PARAMETER, "'ids' must be a list of task ids.")
    found = await request.app[SERVICE].jobs([i.strip() for i in ids], token(request))
    return web.json_response([_view(request, item) for item in found])


async def listing(request: web.Request) -> web.Response:
    """``task/list`` (this token's latest 100) and ``task/queue`` (its unfinished ones)."""
    unfinished = request.path.endswith("/queue")
    jobs = await request.app[SERVICE].recent(token(request), 100, unfinished=unfinished)
    return web.json_response([_view(request, job) for job in jobs])


async def image_seed(request: web.Request) -> web.Response:
    task_id = request.match_info["id"]
    found = await request.app[SERVICE].jobs([task_id], token(request))
    if not found or isinstance(found[0], Modal):
        return _unknown(task_id)
    seed = await request.app[SERVICE].seed(task_id, token(request))
    return envelope.answer(envelope.SUCCESS, "Success", str(seed))


async def cancel(request: web.Request) -> web.Response:
    """Stop a queued or running task (trueai's ``task/{id}/cancel``, which takes no body): the
    submit envelope, code 1 with the task id; 3 (HTTP 404) for a task this token does not have,
    4 for one that has finished already (``properties.status`` says how).

    A cancelled task then reads ``status: "FAILURE"`` with the sentence as ``failReason``, not
    trueai's ``CANCEL``: new-api refunds a task's quota when it reads FAILURE and has no case
    for CANCEL, so a relayed client would be charged for a task that never ran."""
    task_id = request.match_info["id"].strip()
    try:
        job = await request.app[SERVICE].cancel(task_id, token(request))
    except ServiceError as exc:
        if exc.status == 404:
            return _unknown(task_id)
        if exc.status != 409:
            raise
        ended = STATUS[JobStatus(exc.extra["ended"])]
        return envelope.answer(envelope.VALIDATION_ERROR, exc.message, None, status=ended)
    return envelope.answer(envelope.SUCCESS, "Success", job.id)


SUBMITS = {
    "imagine": imagine, "change": change, "simple-change": simple_change, "action": action,
    "modal": modal, "describe": describe, "blend": blend, "shorten": shorten,
}  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Every route under ``/mj`` and under the speed prefixes ``/mj-fast``, ``/mj-relax`` and
    ``/mj-turbo`` (trueai's), which set the tasks' speed."""
    for prefix in ("/mj", "/mj-fast/mj", "/mj-relax/mj", "/mj-turbo/mj"):
        for name, handler in SUBMITS.items():
            app.router.add_post(f"{prefix}/submit/{name}", handler)
        app.router.add_get(f"{prefix}/task/{{id}}/fetch", fetch)
        app.router.add_get(f"{prefix}/task/{{id}}/image-seed", image_seed)
        app.router.add_post(f"{prefix}/task/{{id}}/cancel", cancel)
        app.router.add_post(f"{prefix}/task/list-by-condition", list_by_condition)
        app.router.add_post(f"{prefix}/task/list-by-ids", list_by_condition)
        app.router.add_get(f"{prefix}/task/list", listing)
        app.router.add_post(f"{prefix}/task/list", listing)
        app.router.add_get(f"{prefix}/task/queue", listing)
