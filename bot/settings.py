"""The bot's configuration: read once from the environment (and ``.env``) into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

TOKEN_HELP = (
    "Get a bot token from the Discord Developer Portal (https://discord.com/developers/applications "
    "→ your app → Bot → Reset Token) and put DISCORD_TOKEN=<token> in .env."
)

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A configuration value is wrong; the message says which variable and what it accepts."""


class MissingToken(SettingsError):
    """DISCORD_TOKEN is not set."""

    def __init__(self) -> None:
        super().__init__(f"DISCORD_TOKEN is not set. {TOKEN_HELP}")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}.") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw}.")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _number(env, name, default, low, high)
    if value != int(value):
        raise SettingsError(f"{name} must be a whole number, got {env[name].strip()!r}.")
    return int(value)


def _guild_ids(raw: str) -> tuple[int, ...]:
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise SettingsError(
                f"DISCORD_GUILD_IDS must be server IDs separated by commas, got {part!r} "
                "(right-click a server with Developer Mode on → Copy Server ID)."
            )
        ids.append(int(part))
    return tuple(ids)


def _shards(env: Mapping[str, str]) -> tuple[int | None, tuple[int, ...]]:
    """DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS: the shards in all, and this process's slice."""
    raw_count = env.get("DISCORD_SHARD_COUNT", "").strip()
    raw_ids = env.get("DISCORD_SHARD_IDS", "").strip()
    if not raw_count:
        if raw_ids:
            raise SettingsError(
                "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT, the number of shards in all "
                f"(got DISCORD_SHARD_IDS={raw_ids!r} alone)."
            )
        return None, ()
    count = _whole(env, "DISCORD_SHARD_COUNT", 1, 1, 65536)
    ids: list[int] = []
    for part in raw_ids.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) >= count:
            raise SettingsError(
                f"DISCORD_SHARD_IDS must be shard numbers from 0 to {count - 1} (DISCORD_SHARD_COUNT "
                f"is {count}) separated by commas, got {part!r}."
            )
        if int(part) in ids:
            raise SettingsError(f"DISCORD_SHARD_IDS names shard {part} twice.")
        ids.append(int(part))
    return count, tuple(ids)


@dataclass(frozen=True)
class BotSettings:
    discord_token: str
    guild_ids: tuple[int, ...] = ()
    """Servers whose commands are synced at start; empty = never sync on boot (use /sync)."""
    api_url: str = ""
    """A remote Imagine API; empty = start the embedded service in-process."""
    api_token: str = ""
    max_jobs_per_user: int = 3
    poll_interval: float = 0.5
    """Seconds between two GET /v2/message polls of one job."""
    edit_interval: float = 2.0
    """Minimum seconds between two progress edits of one Discord message."""
    upload_limit: int = 8 * MIB
    """Largest attachment the bot uploads; images are re-encoded to fit."""
    interaction_ttl: float = 15 * 60.0
    """Life of an interaction token; after it the result is posted as a channel message."""
    job_wait: float = 30 * 60.0
    """Seconds the bot waits for one job before telling the user it took too long."""
    queue_notice: float = 10 * 60.0
    """Seconds a job may wait to start before its message says the service has not started it."""
    login_retry_first: float = 5.0
    """Seconds before the second try when Discord cannot be reached at start; doubles each try."""
    login_retry_max: float = 5 * 60.0
    """The longest wait between two tries to reach Discord."""
    data_dir: Path = Path("data")
    """Where the list of deliveries still to post is kept across restarts."""
    discord_api_base: str = ""
    discord_gateway_url: str = ""
    guild_ready_timeout: float = 2.0
    log_level: str = "INFO"
    shard_count: int | None = None
    """DISCORD_SHARD_COUNT: None = one unsharded connection (below Discord's 2,500 servers)."""
    shard_ids: tuple[int, ...] = ()
    """DISCORD_SHARD_IDS: the shards this process connects; empty = all of shard_count."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """The whole environment, for the embedded service's own settings."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BotSettings:
        env = dict(os.environ if environ is None else environ)
        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise MissingToken()
        api_url = env.get("IMAGINE_API_URL", "").strip().rstrip("/")
        if api_url and not api_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"IMAGINE_API_URL must start with http:// or https://, got {api_url!r}."
            )
        data_dir = env.get("BOT_DATA_DIR", "").strip() or env.get("IMAGINE_DATA_DIR", "").strip()
        level = env.get("BOT_LOG_LEVEL", "").strip().upper() or "INFO"
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"BOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}."
            )
        shard_count, shard_ids = _shards(env)
        return cls(
            discord_token=token,
            guild_ids=_guild_ids(env.get("DISCORD_GUILD_IDS", "")),
            api_url=api_url,
            api_token=env.get("IMAGINE_API_TOKEN", "").strip(),
            max_jobs_per_user=_whole(env, "MAX_JOBS_PER_USER", 3, 1, 1000),
            poll_interval=_number(env, "BOT_POLL_INTERVAL", 0.5, 0.01, 60.0),
            edit_interval=_number(env, "BOT_EDIT_INTERVAL", 2.0, 0.0, 60.0),
            upload_limit=_whole(env, "BOT_UPLOAD_LIMIT", 8 * MIB, 16 * 1024, 100 * MIB),
            interaction_ttl=_number(env, "BOT_INTERACTION_TTL", 15 * 60.0, 1.0, 15 * 60.0),
            job_wait=_number(env, "BOT_JOB_WAIT", 30 * 60.0, 1.0, 7 * 24 * 3600.0),
            queue_notice=_number(env, "BOT_QUEUE_NOTICE", 10 * 60.0, 0.01, 7 * 24 * 3600.0),
            login_retry_first=_number(env, "BOT_LOGIN_RETRY_FIRST", 5.0, 0.01, 3600.0),
            login_retry_max=_number(env, "BOT_LOGIN_RETRY_MAX", 5 * 60.0, 0.01, 24 * 3600.0),
            data_dir=Path(data_dir or "data"),
            discord_api_base=env.get("DISCORD_API_BASE", "").strip().rstrip("/"),
            discord_gateway_url=env.get("DISCORD_GATEWAY_URL", "").strip(),
            guild_ready_timeout=_number(env, "BOT_GUILD_READY_TIMEOUT", 2.0, 0.0, 60.0),
            log_level=level,
            shard_count=shard_count,
            shard_ids=shard_ids,
            environ=MappingProxyType(env),
        )

    def holds_guild(self, guild_id: int) -> bool:
        """Whether this process's shards receive the server's events (Discord's shard formula)."""
        if self.shard_count is None or not self.shard_ids:
            return True
        return (guild_id >> 22) % self.shard_count in self.shard_ids
