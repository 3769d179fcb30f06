"""The diffusers engine's settings, read from ``settings.environ`` (see
:mod:`imagine.engines.diffusers_engine` for each variable). Imports no torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imagine.engines.base import EngineUnavailable
from imagine.engines.diffusers_references import AdapterConfig
from imagine.settings import Settings

DEFAULT_MODEL = "stabilityai/sd-turbo"
FAMILY_NAMES = ("sd-turbo", "sdxl-turbo", "sd", "sdxl", "flux-schnell", "flux", "other")


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class DiffusersConfig:
    model: str = DEFAULT_MODEL
    taesd: str = ""
    """"" = full VAE, "auto" = the family's TAESD, else a TAESD model id or folder."""
    device: str = ""
    family: str = ""
    offline: bool = False
    caption_model: str = ""
    """The /describe captioner; "" = no /describe."""
    references: AdapterConfig = field(default_factory=lambda: AdapterConfig(adapter=""))
    """The IP-Adapter of --sref and --oref."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersConfig:
        env = settings.environ
        family = env.get("IMAGINE_MODEL_FAMILY", "").strip().lower()
        if family and family not in FAMILY_NAMES:
            raise EngineUnavailable(
                f"IMAGINE_MODEL_FAMILY={family!r} is not a family; use one of "
                f"{', '.join(FAMILY_NAMES)}, or leave it empty to detect it."
            )
        taesd = ""
        if _flag(env, "IMAGINE_TAESD"):
            taesd = env.get("IMAGINE_TAESD_MODEL", "").strip() or "auto"
        return cls(
            model=settings.model or env.get("IMAGINE_MODEL", "").strip() or DEFAULT_MODEL,
            taesd=taesd,
            device=env.get("IMAGINE_DEVICE", "").strip().lower(),
            family=family,
            offline=_flag(env, "HF_HUB_OFFLINE"),
            caption_model=settings.caption_model,
            references=AdapterConfig.from_environ(env),
        )


__all__ = ["FAMILY_NAMES", "DiffusersConfig"]
