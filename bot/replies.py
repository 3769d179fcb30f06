"""What the Imagine service answers, as the bot reads it: the shapes of the v2 contract's replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobRef:
    """Who asked and where; sent as ``ref`` so the service can count a user's jobs."""

    user_id: int
    guild_id: int | None
    channel_id: int

    def to_json(self) -> str:
        guild = "" if self.guild_id is None else str(self.guild_id)
        return json.dumps(
            {"user": str(self.user_id), "guild": guild, "channel": str(self.channel_id)}
        )


@dataclass(frozen=True)
class Submitted:
    message_id: str
    created_at: str
    message_ids: tuple[str, ...]
    """Every job the request started (several for {a,b} permutations or --repeat)."""


@dataclass(frozen=True)
class JobProgress:
    progress: int
    status: str
    queue_position: int | None
    preview_url: str | None


@dataclass(frozen=True)
class JobResult:
    status: str
    """'done' or 'failed'."""
    type: str
    content: str
    """The prompt when done; the result code when failed."""
    error: str
    image_url: str | None
    image_urls: tuple[str, ...]
    buttons: tuple[str, ...]
    button_message_id: str
    seeds: tuple[int, ...]
    blocked: tuple[int, ...] = ()
    """Tiles (1-4) the engine's safety checker withheld."""
    ignored: tuple[str, ...] = ()
    """Parameters the engine did not carry out, as typed (``--weird 250``)."""
    prompts: tuple[str, ...] = ()
    """A /describe's or a /shorten's result: prompts, not images (buttons 1️⃣… imagine them)."""

    @property
    def failed(self) -> bool:
        return self.status == "failed" or not (self.image_url or self.prompts)


@dataclass(frozen=True)
class JobDetails:
    """What made a result: its prompt, seed and the engine's effective settings."""

    job_id: str
    type: str
    prompt: str
    seed: int | None
    seeds: tuple[int, ...]
    settings: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class ServiceInfo:
    queued: int
    running: int
    engine: str
    placeholder: bool
    version: str
    user_unfinished: int | None
    notes: tuple[str, ...] = ()
    """The engine's sentences for people (what it cannot do; why ``auto`` fell back)."""


def parse_result(data: Mapping[str, Any]) -> JobResult:
    content = data.get("content")
    prompts = tuple(str(p) for p in content) if isinstance(content, list) else ()
    done = data.get("imageUrl") or prompts
    return JobResult(
        status=str(data.get("status") or ("done" if done else "failed")),
        type=str(data.get("type") or "imagine"),
        content="" if prompts else str(content or ""),
        error=str(data.get("error") or ""),
        image_url=data.get("imageUrl") or None,
        image_urls=tuple(str(u) for u in data.get("imageUrls") or ()),
        buttons=tuple(str(b) for b in data.get("buttons") or ()),
        button_message_id=str(data.get("buttonMessageId") or ""),
        seeds=tuple(int(s) for s in data.get("seeds") or ()),
        blocked=tuple(int(n) for n in data.get("blocked") or () if isinstance(n, int)),
        prompts=prompts,
        ignored=tuple(str(p) for p in data.get("ignored") or ()),
    )
