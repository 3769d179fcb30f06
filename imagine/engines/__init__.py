"""Image engines behind one protocol (:mod:`imagine.engines.base`); ``IMAGINE_ENGINE`` picks one.

Engine modules are imported only when chosen, so torch is never imported unless the diffusers
engine is selected.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from imagine.engines.base import Engine, EngineUnavailable

if TYPE_CHECKING:
    from imagine.settings import Settings

ENGINES: dict[str, str] = {
    "auto": "imagine.engines.auto:choose_engine",
    "placeholder": "imagine.engines.placeholder:PlaceholderEngine",
    "diffusers": "imagine.engines.diffusers_engine:DiffusersEngine",
    "a1111": "imagine.engines.a1111:A1111Engine",
    "comfyui": "imagine.engines.comfyui:ComfyUIEngine",
    "horde": "imagine.engines.horde:HordeEngine",
    "openai": "imagine.engines.openai_images:OpenAIEngine",
}


def create_engine(settings: Settings, name: str | None = None) -> Engine:
    """Build the engine named by ``name`` or ``settings.engine``; each reads its own settings.

    Every engine class has ``from_settings(settings) -> Self``; ``auto`` is a function that
    returns the diffusers engine or the placeholder (:mod:`imagine.engines.auto`).
    """
    name = (name or settings.engine).lower()
    target = ENGINES.get(name)
    if target is None:
        choices = ", ".join(sorted(ENGINES))
        raise EngineUnavailable(
            f"IMAGINE_ENGINE={name!r} is not an engine; choose one of: {choices}."
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EngineUnavailable(
            f"The {name} engine cannot be loaded because the Python package {exc.name!r} is missing; "
            f"install it (for the diffusers engine: pip install -e '.[local]')."
        ) from exc
    target_object = getattr(module, class_name)
    if name == "auto":
        chosen: Engine = target_object(settings)
        return chosen
    engine: Engine = target_object.from_settings(settings)
    return engine


__all__ = ["ENGINES", "Engine", "EngineUnavailable", "create_engine"]
