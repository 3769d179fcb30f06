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
OPENVINO_WEIGHTS = ("full", "int8")
"""IMAGINE_OPENVINO_WEIGHTS: the exported weights as they are, or NNCF int8 weight compression."""
OPENVINO_PRECISIONS = ("auto", "f32", "bf16", "f16")
"""IMAGINE_OPENVINO_PRECISION: OpenVINO's inference precision; auto = its own choice for the CPU
(bf16 where the CPU has AVX-512-BF16 or AMX, else f32)."""


def flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise EngineUnavailable(f"{name}={value!r} is not valid; use one of {', '.join(choices)}.")
    return value


@dataclass(frozen=True)
class OpenVinoConfig:
    """The OpenVINO backend (``IMAGINE_DEVICE=openvino``, or ``auto`` on a CPU-only machine)."""

    cache_dir: str = "data/openvino"
    """Where exported models (OpenVINO IR) are kept: ``IMAGINE_DATA_DIR``/openvino."""
    weights: str = "full"
    precision: str = "auto"


@dataclass(frozen=True)
class DiffusersConfig:
    model: str = DEFAULT_MODEL
    taesd: str = ""
    """"" = full VAE, "auto" = the family's TAESD, else a TAESD model id or folder."""
    device: str = ""
    """"" = auto (CUDA, else OpenVINO where installed, else the CPU), cpu, cuda[:N], openvino."""
    family: str = ""
    offline: bool = False
    caption_model: str = ""
    """The /describe captioner; "" = no /describe."""
    references: AdapterConfig = field(default_factory=lambda: AdapterConfig(adapter=""))
    """The IP-Adapter of --sref and --oref."""
    openvino: OpenVinoConfig = field(default_factory=OpenVinoConfig)

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
        if flag(env, "IMAGINE_TAESD"):
            taesd = env.get("IMAGINE_TAESD_MODEL", "").strip() or "auto"
        device = env.get("IMAGINE_DEVICE", "").strip().lower()
        return cls(
            model=settings.model or env.get("IMAGINE_MODEL", "").strip() or DEFAULT_MODEL,
            taesd=taesd,
            device="" if device == "auto" else device,
            family=family,
            offline=flag(env, "HF_HUB_OFFLINE"),
            caption_model=settings.caption_model,
            references=AdapterConfig.from_environ(env),
            openvino=OpenVinoConfig(
                cache_dir=str(settings.data_dir / "openvino"),
                weights=_choice(env, "IMAGINE_OPENVINO_WEIGHTS", OPENVINO_WEIGHTS),
                precision=_choice(env, "IMAGINE_OPENVINO_PRECISION", OPENVINO_PRECISIONS),
            ),
        )


__all__ = ["FAMILY_NAMES", "DiffusersConfig", "OpenVinoConfig", "flag"]
