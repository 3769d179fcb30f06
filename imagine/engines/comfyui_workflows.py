"""ComfyUI workflow templates: API-format JSON with ``{{placeholders}}`` the engine fills per tile.

The project ships ``txt2img.json``, ``img2img.json`` and ``outpaint.json`` (in ``workflows/``);
``COMFYUI_WORKFLOWS`` names a folder whose files of the same names replace them. A string value
that is exactly ``"{{seed}}"`` becomes the typed value (a number stays a number); a placeholder
inside a longer string is replaced as text. Placeholders:

- ``prompt``, ``negative_prompt``: text
- ``seed``, ``width``, ``height``, ``steps``: whole numbers; ``cfg``, ``denoise``: numbers
  (``denoise`` is the img2img strength; for outpaint 0.85, so that the sampler starts from the
  pre-filled border and continues the picture: the shipped ``outpaint.json`` encodes the canvas
  with ``VAEEncode`` and ``SetLatentNoiseMask``, which works with any checkpoint, where
  ``VAEEncodeForInpaint`` greys the border and needs an inpainting checkpoint at denoise 1.0)
- ``checkpoint``: the checkpoint file name (``ckpt_name``)
- ``image``, ``mask``: names of the uploaded init image and mask (for ``LoadImage``; the mask is
  white where to paint, so read it with ``LoadImageMask`` channel ``red``)
- ``filename_prefix``: for ``SaveImage``

Each template renders one image (batch size 1): the engine queues one prompt per seed so that
tile k is exactly a single render with seed k.
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from imagine.engines.base import EngineUnavailable

MODES = ("txt2img", "img2img", "outpaint")
PLACEHOLDERS = frozenset(
    {"prompt", "negative_prompt", "seed", "width", "height", "steps", "cfg", "denoise"}
    | {"checkpoint", "image", "mask", "filename_prefix"}
)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

Workflow = dict[str, Any]


def load_templates(folder: Path | None) -> dict[str, Workflow]:
    """The three templates, each from ``folder`` when it has one, else the shipped one."""
    return {mode: _load(mode, folder) for mode in MODES}


def _load(mode: str, folder: Path | None) -> Workflow:
    name = f"{mode}.json"
    override = folder / name if folder is not None else None
    where = str(override) if override is not None and override.is_file() else f"the shipped {name}"
    try:
        if override is not None and override.is_file():
            text = override.read_text(encoding="utf-8")
        else:
            text = (resources.files("imagine.engines") / "workflows" / name).read_text("utf-8")
        workflow = json.loads(text)
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(f"The ComfyUI workflow {where} cannot be read: {exc}.") from None
    if not isinstance(workflow, dict) or not all(
        isinstance(node, dict) and "class_type" in node for node in workflow.values()
    ):
        raise EngineUnavailable(
            f"The ComfyUI workflow {where} is not in API format (export it with 'Save (API)')."
        )
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - PLACEHOLDERS)
    if unknown:
        raise EngineUnavailable(
            f"The ComfyUI workflow {where} uses unknown placeholders {unknown}; "
            f"known ones are {sorted(PLACEHOLDERS)}."
        )
    if "{{seed}}" not in text:
        raise EngineUnavailable(f"The ComfyUI workflow {where} has no {{{{seed}}}} placeholder.")
    return workflow


def fill(template: Workflow, values: dict[str, Any]) -> Workflow:
    """A copy of ``template`` with every placeholder replaced by its value."""
    return _fill(copy.deepcopy(template), values)  # type: ignore[no-any-return]


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, values) for value in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole is not None:
            return values.get(whole.group(1), "")
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), node)
    return node
