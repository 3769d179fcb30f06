"""A job as midjourney-proxy's task object: what ``/mj/task/{id}/fetch`` and ``list-by-condition``
answer and what ``notifyHook`` receives.

new-api decodes it strictly: strings for id, action, status, progress, prompts, state, imageUrl
and failReason; whole milliseconds for the times; ``"100%"`` exactly when done (anything else is
unfinished) and an empty failReason until a real failure (any other reads as failed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagine.edges.mj.customid import EMOJI, custom_id
from imagine.jobs import Job, JobStatus
from imagine.messages import image_url

if TYPE_CHECKING:
    from datetime import datetime

    from imagine.previews import RunState
    from imagine.store import Modal

ACTIONS = {
    "imagine": "IMAGINE", "blend": "BLEND", "🔄": "REROLL", "describe": "DESCRIBE",
    "shorten": "SHORTEN", "Vary (Strong)": "HIGH_VARIATION", "Vary (Subtle)": "LOW_VARIATION",
    "Vary (Region)": "INPAINT", "Custom Zoom": "CUSTOM_ZOOM", "Zoom Out 2x": "ZOOM",
    "Zoom Out 1.5x": "ZOOM", "Make Square": "ZOOM", "⬅️": "PAN", "➡️": "PAN", "⬆️": "PAN",
    "⬇️": "PAN", "Upscale (Subtle)": "UPSCALE", "Upscale (Creative)": "UPSCALE",
    "Upscale (2x)": "UPSCALE", "Upscale (4x)": "UPSCALE", "Redo Upscale (Subtle)": "UPSCALE",
    "Redo Upscale (Creative)": "UPSCALE", "Enhance": "UPSCALE",
}  # fmt: skip
STATUS = {
    JobStatus.QUEUED: "SUBMITTED",
    JobStatus.RUNNING: "IN_PROGRESS",
    JobStatus.DONE: "SUCCESS",
    JobStatus.FAILED: "FAILURE",
}
"""Our statuses as midjourney-proxy's. A cancelled job is a failed one, so it reads FAILURE (its
failReason says it was cancelled), never trueai's CANCEL: new-api refunds the quota of a task
that reads FAILURE and knows no CANCEL, so it would not refund a cancelled one."""
COMMANDS = {
    "IMAGINE": "/imagine",
    "BLEND": "/blend",
    "DESCRIBE": "/describe",
    "SHORTEN": "/shorten",
}
MODES = {"relax": "RELAX", "turbo": "TURBO"}


def action_of(job: Job) -> str:
    if job.action in ACTIONS:
        return ACTIONS[job.action]
    if job.action.startswith("U"):
        return "UPSCALE"
    return "VARIATION" if job.action.startswith("V") else job.action.upper()


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def numbered(prompts: list[str]) -> str:
    """Midjourney's /describe and /shorten answer: "1️⃣ a cat --ar 1:1\\n\\n2️⃣ …"."""
    digits = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
    return "\n\n".join(f"{digits[n]} {p}" for n, p in enumerate(prompts[:5]))


def buttons(job: Job) -> list[dict[str, Any]]:
    """The result's buttons with their customIds (none until it is done)."""
    if job.status is not JobStatus.DONE:
        return []
    listed = []
    for button in job.result.get("buttons", []):
        try:
            cid = custom_id(button, job.button_message_id, job.type)
        except KeyError:  # a button this contract has no customId for
            continue
        emoji = EMOJI.get(button, "")
        label = "" if emoji == button else button
        listed.append({"customId": cid, "emoji": emoji, "label": label, "type": 2, "style": 2})
    return listed


def task_view(job: Job, state: RunState | None, base_url: str) -> dict[str, Any]:
    action = action_of(job)
    files = job.result.get("images", {}) if job.status is JobStatus.DONE else {}
    image = files.get("grid") or files.get("image")
    url = image_url(base_url, job.id, image) if image else ""
    fraction = state.fraction if state is not None else job.progress
    preview = state.preview if state is not None else job.preview
    if job.status is JobStatus.RUNNING and preview:
        url = image_url(base_url, job.id, preview)
    progress = {
        JobStatus.QUEUED: "0%",
        JobStatus.RUNNING: f"{min(99, int(fraction * 100))}%",
        JobStatus.DONE: "100%",
        JobStatus.FAILED: "",
    }[job.status]
    final = job.result.get("prompts")
    properties: dict[str, Any] = {
        "finalPrompt": numbered(final) if final else job.content,
        "finalZhPrompt": "",
        "messageHash": job.button_message_id,
        "messageId": job.id,
        "notifyHook": job.webhook,
    }
    if final:
        properties["prompts"] = list(final)
    if "analysis" in job.result:
        properties["analysis"] = job.result["analysis"]
    if job.status is JobStatus.DONE and "tiles" in files:
        properties["imageUrls"] = [image_url(base_url, job.id, t) for t in files["tiles"]]
    seeds = job.result.get("seeds") or []
    speed = str(job.prompt.get("speed") or "")
    command = COMMANDS.get(action, f"/{action.lower()}")
    return {
        "id": job.id,
        "action": action,
        "status": STATUS[job.status],
        "progress": progress,
        "prompt": job.content,
        "promptEn": job.content,
        "description": f"{command} {job.content}".strip() if job.parent_id is None else
        f"/{action.lower()} {job.parent_id} {job.action}",
        "state": job.ref,
        "submitTime": ms(job.created_at),
        "startTime": ms(job.started_at),
        "finishTime": ms(job.finished_at) if job.status.finished else None,
        "imageUrl": url,
        "failReason": job.error if job.status is JobStatus.FAILED else "",
        "properties": properties,
        "buttons": buttons(job),
        "seed": str(seeds[0]) if seeds and action not in ("DESCRIBE", "SHORTEN") else "",
        "mode": MODES.get(speed, "FAST"),
        "botType": "NIJI_JOURNEY" if str(job.prompt.get("version") or "").startswith("niji")
        else "MID_JOURNEY",
    }  # fmt: skip


def modal_view(modal: Modal) -> dict[str, Any]:
    """A press waiting for its client's prompt (trueai's MODAL status)."""
    return {
        "id": modal.id,
        "action": ACTIONS.get(modal.button, "VARIATION"),
        "status": "MODAL",
        "progress": "0%",
        "prompt": modal.prompt,
        "promptEn": modal.prompt,
        "description": "Waiting for window confirm",
        "state": modal.ref,
        "submitTime": ms(modal.created_at),
        "startTime": None,
        "finishTime": None,
        "imageUrl": "",
        "failReason": "",
        "properties": {"finalPrompt": modal.prompt, "finalZhPrompt": "", "remix": True,
                       "notifyHook": modal.webhook},
        "buttons": [],
        "seed": "",
        "mode": MODES.get(modal.speed, "FAST"),
        "botType": "MID_JOURNEY",
    }  # fmt: skip
