"""Each member's /settings and each server's defaults and locks, kept in the bot's SQLite file.

A setting is the parameter Midjourney's own /settings appends to a prompt (``--s 250``, ``--style
raw``, ``--relax``, ``--draft``, ``--v 6``, the member's suffix), appended only when the prompt
does not set it itself. Remix is the bot's own: V, Vary and 🔄 open a modal with the prompt. The
variation strength is sent with each V1–V4 press; the visibility decides where results go.
A server's locked setting is the server's value for every member: their own is not used, and a
prompt that types it is refused with a sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.errors import UserFacingError
from bot.pending import SqliteTable

STYLIZE = {"low": 50, "med": 100, "high": 250, "very high": 750}
SPEEDS = ("fast", "relax", "turbo")
VARY = ("strong", "subtle")
"""How far V1–V4 move from their tile: Midjourney's High and Low Variation Mode."""
VISIBILITY = ("public", "dm", "ephemeral")
"""Where a member's results go: the channel (as Midjourney), their DMs, or visible only to them
in the channel."""
LOCKABLE = ("version", "stylize", "raw", "remix", "speed", "draft", "vary", "visibility")
FLAGS = {
    "version": ("--v", "--version", "--niji"),
    "stylize": ("--s", "--stylize"),
    "raw": ("--style",),
    "speed": ("--fast", "--relax", "--turbo"),
    "draft": ("--draft",),
}
"""The prompt parameters each setting stands for."""
SUFFIX_LIMIT = 200
_PARAMETER = re.compile(r"(?<!\S)(?:--|—)([A-Za-z]+)")


@dataclass(frozen=True)
class Preferences:
    version: str | None = None
    stylize: str | None = None
    raw: bool = False
    remix: bool = False
    speed: str | None = None
    draft: bool = False
    vary: str | None = None
    """None: strong."""
    visibility: str | None = None
    """None: public."""
    suffix: str = ""
    locked: tuple[str, ...] = ()
    """A server's: the settings its members cannot change."""

    def with_(self, **changes: Any) -> Preferences:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Preferences:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["locked"] = tuple(known.get("locked") or ())
        return cls(**known)


@dataclass(frozen=True)
class Effective:
    """A member's settings in one server: the server's defaults, their own, and the locks."""

    values: Preferences
    locked: frozenset[str] = field(default_factory=frozenset)


def merge(server: Preferences, member: Preferences) -> Effective:
    """The member's own settings over the server's defaults, except where the server locked one."""
    values: dict[str, Any] = {}
    for name in ("version", "stylize", "speed", "vary", "visibility"):
        mine = getattr(member, name)
        values[name] = getattr(server, name) if name in server.locked or mine is None else mine
    for name in ("raw", "remix", "draft"):
        theirs = getattr(server, name)
        values[name] = theirs if name in server.locked else getattr(member, name) or theirs
    return Effective(Preferences(**values, suffix=member.suffix), frozenset(server.locked))


def parameters(values: Preferences) -> dict[str, str]:
    """Each set setting → the parameter it appends."""
    out: dict[str, str] = {}
    if values.version:
        out["version"] = (
            f"--niji {values.version[5:]}".strip()
            if values.version.startswith("niji")
            else f"--v {values.version}"
        )
    if values.stylize in STYLIZE:
        out["stylize"] = f"--s {STYLIZE[values.stylize]}"
    if values.raw:
        out["raw"] = "--style raw"
    if values.speed in SPEEDS:
        out["speed"] = f"--{values.speed}"
    if values.draft:
        out["draft"] = "--draft"
    return out


def apply(prompt: str, effective: Effective) -> str:
    """``prompt`` with the settings it does not set appended (then the member's suffix); a
    sentence when it types a parameter the server has locked."""
    typed = {f"--{m.lower()}" for m in _PARAMETER.findall(prompt)}
    extra = parameters(effective.values)
    for name, flags in FLAGS.items():
        if typed & set(flags) and name in effective.locked:
            value = extra.get(name) or "its default"
            raise UserFacingError(
                f"This server has locked {flags[0]} to {value}; take it out of your prompt and "
                "run it again."
            )
    added = [p for name, p in extra.items() if not typed & set(FLAGS[name])]
    suffix = effective.values.suffix.strip()
    return " ".join([prompt.strip(), *added, suffix]).strip()


def models_of(environ: Mapping[str, str]) -> list[str]:
    """The versions IMAGINE_MODELS maps (``6=some/model,niji 6=other``), for the version menu."""
    names = []
    for item in environ.get("IMAGINE_MODELS", "").split(","):
        key = item.split("=", 1)[0].strip().lower()
        if key and "=" in item:
            names.append(" ".join(key.split()))
    return names[:25]


class PreferenceStore(SqliteTable):
    SCHEMA = "CREATE TABLE IF NOT EXISTS preferences (scope TEXT PRIMARY KEY, record TEXT)"

    async def get(self, scope: str) -> Preferences:
        async with self._db.execute(
            "SELECT record FROM preferences WHERE scope = ?", (scope,)
        ) as cursor:
            row = await cursor.fetchone()
        return Preferences() if row is None else Preferences.from_json(row[0])

    async def put(self, scope: str, preferences: Preferences) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO preferences (scope, record) VALUES (?, ?)",
            (scope, preferences.to_json()),
        )
        await self._db.commit()

    async def effective(self, user_id: int, guild_id: int | None) -> Effective:
        server = await self.get(f"guild:{guild_id}") if guild_id else Preferences()
        return merge(server, await self.get(f"user:{user_id}"))
