"""``IMAGINE_ENGINE=auto`` (the default): real images on a fresh machine when that can be had.

It takes the diffusers engine (its default model ``stabilityai/sd-turbo``, or ``IMAGINE_MODEL``)
when the ``local`` extra is installed and the model is a folder, is in the Hugging Face cache,
or can be downloaded (the Hub answers within :data:`HUB_TIMEOUT`); the engine's start then
downloads it once with a progress bar. Otherwise the placeholder, with one sentence on why and
how to fix it in the log and in ``/v2/info``'s notes, so the bot still starts.

Nothing here imports torch: the checks are a module lookup, the cache folder and one bounded
request, so choosing costs well under a second even where there is no network.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path

from imagine.engines.base import Engine, first_line
from imagine.engines.diffusers_config import DEFAULT_MODEL, flag
from imagine.settings import Settings

log = logging.getLogger(__name__)

HUB_TIMEOUT = 5.0
"""Seconds the Hub may take to say the model exists; without a network it fails at once."""
LOCAL_EXTRA = ("torch", "diffusers", "transformers")


def _missing_package() -> str | None:
    for name in LOCAL_EXTRA:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def _cache_dir(environ: Mapping[str, str]) -> str | None:
    """The Hugging Face cache of these settings (HF_HUB_CACHE, HF_HOME/hub); None: the default
    huggingface_hub read from the process's environment."""
    if environ.get("HF_HUB_CACHE"):
        return environ["HF_HUB_CACHE"]
    return str(Path(environ["HF_HOME"]) / "hub") if environ.get("HF_HOME") else None


def cached(model: str, environ: Mapping[str, str]) -> bool:
    """Whether ``model`` (a Hub id) has a model_index.json in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model, "model_index.json", cache_dir=_cache_dir(environ))
    except ValueError:  # not a repository id
        return False
    return isinstance(found, str)


def _hub_problem(model: str, environ: Mapping[str, str]) -> str | None:
    """None when the Hub (HF_ENDPOINT, if set) knows ``model``; else what went wrong."""
    from huggingface_hub import HfApi

    try:
        HfApi(endpoint=environ.get("HF_ENDPOINT") or None).model_info(model, timeout=HUB_TIMEOUT)
    except Exception as exc:  # no network, DNS, a proxy, a 404: all mean "cannot be had"
        text = first_line(exc, 10_000)
        return f"{type(exc).__name__}: {text[:160]}"
    return None


def why_not_diffusers(settings: Settings) -> str | None:
    """None when the diffusers engine can be had; else one sentence on why not and the fix."""
    missing = _missing_package()
    if missing is not None:
        return (
            f"IMAGINE_ENGINE=auto fell back to the placeholder because the Python package "
            f"{missing!r} of the local extra is not installed; install it with "
            "pip install -e '.[local]' (make does), or set IMAGINE_ENGINE to a remote engine."
        )
    model = settings.model or settings.environ.get("IMAGINE_MODEL", "").strip() or DEFAULT_MODEL
    if model.startswith(("/", "./", "../", "~")) or Path(model).is_dir():
        return None  # a folder: the engine's own loading says what is wrong with it, if anything
    if cached(model, settings.environ):
        return None
    if flag(settings.environ, "HF_HUB_OFFLINE"):
        return (
            f"IMAGINE_ENGINE=auto fell back to the placeholder because the model {model!r} is "
            "not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it; run "
            f"`hf download {model}` once, or unset HF_HUB_OFFLINE, and restart."
        )
    problem = _hub_problem(model, settings.environ)
    if problem is not None:
        return (
            f"IMAGINE_ENGINE=auto fell back to the placeholder because the model {model!r} is "
            f"not in the Hugging Face cache and the Hub could not be reached ({problem}); "
            f"connect this machine to the internet or run `hf download {model}`, and restart."
        )
    return None


def choose_engine(settings: Settings) -> Engine:
    """The diffusers engine if it can be had, else the placeholder that says why."""
    from imagine.engines.placeholder import PlaceholderEngine

    reason = why_not_diffusers(settings)
    if reason is None:
        from imagine.engines.diffusers_engine import DiffusersEngine

        log.info("IMAGINE_ENGINE=auto: the diffusers engine")
        return DiffusersEngine.from_settings(settings.with_(engine="diffusers"))
    log.warning("%s", reason)
    return PlaceholderEngine(seconds=settings.placeholder_seconds, note=reason)


__all__ = ["choose_engine", "why_not_diffusers"]
