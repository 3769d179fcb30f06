"""The service's configuration: read once from the environment (and ``.env``) into a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

from imagine.netguard import UrlPolicy

DEFAULT_CAPTION_MODEL = "Salesforce/blip-image-captioning-base"


class SettingsError(ValueError):
    """A configuration value is wrong; the message says which variable and what it accepts."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}.") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}.")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}.") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}.")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}.")


@dataclass(frozen=True)
class Settings:
    engine: str = "placeholder"
    """IMAGINE_ENGINE, whose default in the environment is ``auto``; built in code (tests), the
    placeholder, so nothing probes for a model unless asked to."""
    model: str = ""
    """IMAGINE_MODEL; empty = the engine's default."""
    models: Mapping[str, str] = field(default_factory=dict)
    """IMAGINE_MODELS: '--v'/'--niji' version → model, e.g. {'6': 'stabilityai/sdxl-turbo'}."""
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    """Base of the absolute image URLs; empty = http://host:port."""
    api_tokens: tuple[str, ...] = ()
    banned_words_file: Path | None = None
    webhook_url: str = ""
    webhook_secret: str = ""
    allow_private_urls: bool = False
    max_concurrent: int = 1
    queue_limit: int = 100
    placeholder_seconds: float = 0.0
    job_timeout: float = 600.0
    """Seconds an engine may spend on one job before BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND."""
    shutdown_grace: float = 10.0
    """IMAGINE_SHUTDOWN_GRACE: seconds a running job may take to finish after SIGTERM/SIGINT."""
    max_attempts: int = 3
    """How many times a job interrupted by a crash is started before it fails with INTERNAL_ERROR."""
    webhook_retry_delays: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0)
    """Waits between webhook deliveries: 6 tries over ~4 minutes."""
    url_hosts: tuple[str, ...] = ()
    """IMAGINE_URL_HOSTS: if set, the only hosts image URLs and webhooks may use."""
    max_jobs_per_user: int = 40
    """Unfinished jobs one user (named in ref) may have; a client may ask for fewer."""
    rate_per_token: int = 600
    """POST requests per minute per API token (0 = no limit); not applied without tokens."""
    rate_per_user: int = 30
    """POST requests per minute per user named in ref (0 = no limit)."""
    fetch_timeout: float = 15.0
    max_image_bytes: int = 20 * 1024 * 1024
    database_url: str = ""
    """IMAGINE_DATABASE_URL: empty = SQLite in the data folder; postgresql://… = PostgreSQL."""
    storage_url: str = ""
    """IMAGINE_STORAGE_URL: empty = the data folder; s3://bucket/prefix = object storage."""
    s3_endpoint: str = ""
    """IMAGINE_S3_ENDPOINT: the S3 API of a non-AWS server (MinIO, R2, Garage), e.g. http://minio:9000."""
    cors_origins: tuple[str, ...] = ("*",)
    """IMAGINE_CORS_ORIGINS: origins whose pages may call the API from a browser ("*": any; the
    API's tokens are headers, never cookies, so no page can borrow a visitor's); empty: none."""
    lease_seconds: float = 30.0
    """IMAGINE_LEASE_SECONDS: a worker that has not renewed its job for this long has lost it."""
    auto_migrate: bool = True
    """IMAGINE_AUTO_MIGRATE: migrate an older database schema at start (0 = refuse, say so)."""
    workers: int | None = None
    """Render workers in this process (``serve --workers N``); None = IMAGINE_MAX_CONCURRENT."""
    caption_model: str = DEFAULT_CAPTION_MODEL
    """IMAGINE_CAPTION_MODEL: the BLIP captioner the diffusers engine's /describe loads (a Hugging
    Face id or a folder), on the first /describe; set empty to turn /describe off."""
    admin_token: str = ""
    """IMAGINE_ADMIN_TOKEN: the operator's token for /admin and /metrics; empty = both are off."""
    web_secret: str = ""
    """IMAGINE_WEB_SECRET: the key that signs the web pages' links; empty = one generated and
    kept in the data folder (web-secret)."""
    link_ttl: float = 3600.0
    """IMAGINE_LINK_TTL: seconds a signed gallery or editor link works."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """The whole environment snapshot, for engines that read their own variables (A1111_URL, ...)."""

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url_policy(self) -> UrlPolicy:
        return UrlPolicy(self.allow_private_urls, self.url_hosts)

    @property
    def auth_required(self) -> bool:
        return bool(self.api_tokens)

    def with_(self, **changes: Any) -> Self:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        models: dict[str, str] = {}
        for item in env.get("IMAGINE_MODELS", "").split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise SettingsError(
                    "IMAGINE_MODELS must look like '6=stabilityai/sdxl-turbo,niji 6=some/model', "
                    f"got {item.strip()!r}."
                )
            models[" ".join(key.lower().split())] = value.strip()
        banned = env.get("IMAGINE_BANNED_WORDS_FILE", "").strip()
        return cls(
            # auto: the diffusers engine where it can be had, else the placeholder (says why)
            engine=env.get("IMAGINE_ENGINE", "auto").strip().lower() or "auto",
            model=env.get("IMAGINE_MODEL", "").strip(),
            models=MappingProxyType(models),
            data_dir=Path(env.get("IMAGINE_DATA_DIR", "").strip() or "data"),
            host=env.get("IMAGINE_HOST", "").strip() or "127.0.0.1",
            port=_int(env, "IMAGINE_PORT", 8080, 0, 65535),
            public_url=env.get("IMAGINE_PUBLIC_URL", "").strip(),
            api_tokens=tuple(
                t.strip() for t in env.get("IMAGINE_API_TOKENS", "").split(",") if t.strip()
            ),
            banned_words_file=Path(banned) if banned else None,
            webhook_url=env.get("IMAGINE_WEBHOOK_URL", "").strip(),
            webhook_secret=env.get("IMAGINE_WEBHOOK_SECRET", ""),
            allow_private_urls=_flag(env, "IMAGINE_ALLOW_PRIVATE_URLS"),
            max_concurrent=_int(env, "IMAGINE_MAX_CONCURRENT", 1, 1, 64),
            queue_limit=_int(env, "IMAGINE_QUEUE_LIMIT", 100, 1, 1_000_000),
            placeholder_seconds=_float(env, "IMAGINE_PLACEHOLDER_SECONDS", 0.0, 0.0, 3600.0),
            job_timeout=_float(env, "IMAGINE_JOB_TIMEOUT", 600.0, 1.0, 86400.0),
            max_attempts=_int(env, "IMAGINE_MAX_ATTEMPTS", 3, 1, 100),
            shutdown_grace=_float(env, "IMAGINE_SHUTDOWN_GRACE", 10.0, 0.0, 3600.0),
            url_hosts=tuple(
                h.strip().lower().rstrip(".")
                for h in env.get("IMAGINE_URL_HOSTS", "").split(",")
                if h.strip()
            ),
            max_jobs_per_user=_int(env, "IMAGINE_MAX_JOBS_PER_USER", 40, 1, 1_000_000),
            rate_per_token=_int(env, "IMAGINE_RATE_PER_TOKEN", 600, 0, 1_000_000),
            rate_per_user=_int(env, "IMAGINE_RATE_PER_USER", 30, 0, 1_000_000),
            database_url=env.get("IMAGINE_DATABASE_URL", "").strip(),
            storage_url=env.get("IMAGINE_STORAGE_URL", "").strip(),
            s3_endpoint=env.get("IMAGINE_S3_ENDPOINT", "").strip(),
            lease_seconds=_float(env, "IMAGINE_LEASE_SECONDS", 30.0, 1.0, 3600.0),
            # Unset: the default captioner; set but empty: none (no /describe).
            caption_model=env.get("IMAGINE_CAPTION_MODEL", DEFAULT_CAPTION_MODEL).strip(),
            cors_origins=tuple(
                o.strip().rstrip("/")
                for o in env.get("IMAGINE_CORS_ORIGINS", "*").split(",")
                if o.strip()
            ),
            auto_migrate=_flag(env, "IMAGINE_AUTO_MIGRATE")
            if env.get("IMAGINE_AUTO_MIGRATE", "").strip()
            else True,
            admin_token=env.get("IMAGINE_ADMIN_TOKEN", "").strip(),
            web_secret=env.get("IMAGINE_WEB_SECRET", "").strip(),
            link_ttl=_float(env, "IMAGINE_LINK_TTL", 3600.0, 10.0, 30 * 86400.0),
            environ=MappingProxyType(env),
        )
