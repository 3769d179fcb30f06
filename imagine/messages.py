"""The JSON a client reads: the running view and the completed message of TheNextLeg's contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagine.codes import EXPLANATIONS
from imagine.jobs import Job, JobStatus, iso

if TYPE_CHECKING:
    from imagine.previews import RunState


def image_url(base_url: str, job_id: str, name: str) -> str:
    return f"{base_url}/images/{job_id}/{name}"


def completed(job: Job, base_url: str) -> dict[str, Any]:
    """The completed message (also the webhook body); a failure carries its result code in content."""
    files = job.result.get("images", {}) if job.status is JobStatus.DONE else {}
    if "grid" in files:
        image = image_url(base_url, job.id, files["grid"])
        tiles = [image_url(base_url, job.id, name) for name in files["tiles"]]
    elif "image" in files:
        image = image_url(base_url, job.id, files["image"])
        tiles = [image]
    else:
        image, tiles = None, []
    message: dict[str, Any] = {
        "createdAt": iso(job.created_at),
        "buttons": list(job.result.get("buttons", [])) if job.status is JobStatus.DONE else [],
        "type": job.type,
        "imageUrl": image,
        "imageUrls": tiles,
        "buttonMessageId": job.button_message_id,
        "originatingMessageId": job.id,
        "content": job.content if job.status is JobStatus.DONE else str(job.error_code),
        "ref": job.ref,
        "responseAt": iso(job.finished_at or job.created_at),
        "status": job.status.value,
        "seeds": list(job.result.get("seeds", [])) if job.status is JobStatus.DONE else [],
        "button": None if job.action in ("imagine", "blend", "describe", "shorten") else job.action,
    }
    if job.status is JobStatus.DONE and "prompts" in job.result:  # a describe's, a shorten's
        message["content"] = list(job.result["prompts"])
    if job.status is JobStatus.DONE:
        message["prompt"] = job.prompt
        if "settings" in job.result:
            message["settings"] = job.result["settings"]
        if job.result.get("blocked"):
            message["blocked"] = list(job.result["blocked"])
        if job.result.get("ignored"):  # parameters the engine did not carry out, as typed
            message["ignored"] = list(job.result["ignored"])
    else:
        message["error"] = (
            job.error or (EXPLANATIONS.get(job.error_code) if job.error_code else "") or ""
        )
    return message


def running(
    job: Job, state: RunState | None, position: int | None, base_url: str
) -> dict[str, Any]:
    fraction = state.fraction if state is not None else 0.0
    preview = state.preview if state is not None else None
    return {
        "progress": min(99, int(fraction * 100)),
        "progressImageUrl": image_url(base_url, job.id, preview) if preview else None,
        "status": job.status.value,
        "queuePosition": position,
    }
