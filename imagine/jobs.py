"""Jobs: what was asked, where it stands, and the transitions a job may take."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from imagine.codes import ResultCode


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


# RUNNING -> QUEUED happens only on restart, for a job a crash interrupted.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.DONE: frozenset(),
    JobStatus.FAILED: frozenset(),
}


class InvalidTransition(RuntimeError):
    pass


def check_transition(old: JobStatus, new: JobStatus) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(f"a job cannot go from {old} to {new}")


GRID_BUTTONS = ("U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4")
UPSCALE_BUTTONS = (
    "Vary (Strong)",
    "Vary (Subtle)",
    "Vary (Region)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
    "Make Square",
    "Upscale (Subtle)",
    "Upscale (Creative)",
)
"""After an upscale, as Midjourney V6 has them. Results from before offered "Upscale (2x)" and
"Upscale (4x)" instead; those still run when pressed."""


def new_id() -> str:
    """33 digits: the milliseconds since 1970, then 20 random digits (66 bits).

    Digits because midjourney-proxy's clients keep task ids as digit strings (its own are
    milliseconds and 3 digits), and TheNextLeg's take any string; time first, so ids sort by
    creation; random after, so ids made in one millisecond on many machines never collide, and
    neither a job's id nor its image URLs (capability URLs, under the id) can be guessed."""
    return f"{time.time_ns() // 1_000_000:013d}{secrets.randbelow(10**20):020d}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and a Z, as upstream writes it: 2023-04-04T13:07:01.927Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass
class Job:
    id: str
    """The messageId a client polls."""
    button_message_id: str
    """The id a client passes to /v2/button to press this result's buttons."""
    action: str
    """'imagine' for a prompt, else the button label that made this job."""
    type: str
    """The result's type: imagine, upscale, variation, zoom, pan."""
    owner: str
    content: str
    """The original prompt text, as the client sent it (without the image URLs)."""
    prompt: dict[str, Any]
    """The parsed prompt (ImaginePrompt.to_dict()), stored so 🔄 and variations reproduce it."""
    ref: str = ""
    webhook: str = ""
    status: JobStatus = JobStatus.QUEUED
    priority: int = 1
    parent_id: str | None = None
    tile: int | None = None
    inputs: list[str] = field(default_factory=list)
    """Content-addressed names of fetched input images (under data/inputs/)."""
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    """On done: images (relative paths), seeds, buttons, effective settings."""
    error_code: ResultCode | None = None
    error: str = ""
    progress: float = 0.0
    """While running: the fraction done (0–1), as its worker last wrote it."""
    preview: str | None = None
    """While running: the name of the latest preview image, as its worker last wrote it."""
    contract: str = "v2"
    """The API contract the job was asked through ("v2": TheNextLeg's, "mj": midjourney-proxy's):
    the shape of its webhook. Either contract reads and presses any job."""
