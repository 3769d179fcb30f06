"""ComfyUI's wire formats: websocket events, history entries, errors and object_info.

Shapes from ComfyUI's server.py and execution.py: text frames are ``{"type", "data"}`` JSON;
binary frames start with a 4-byte big-endian event type (1 = preview image) and a 4-byte image
format, then the image. A history entry is ``{"prompt", "outputs", "status": {"status_str",
"completed", "messages": [[event, data], ...]}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Any

import aiohttp
from PIL import Image

from imagine.codes import ResultCode
from imagine.engines import imagecodec
from imagine.engines.base import EngineError
from imagine.engines.remote import error_detail

log = logging.getLogger(__name__)

PREVIEW_IMAGE = 1
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def next_event(
    ws: aiohttp.ClientWebSocketResponse | None, quiet: float
) -> dict[str, Any] | Image.Image | None:
    """The next event (a dict) or preview (an image); None after ``quiet`` seconds without one.

    Without a websocket, or once it closed, this only waits: the caller then polls the history.
    """
    if ws is None or ws.closed:
        await asyncio.sleep(quiet)
        return None
    try:
        message = await ws.receive(timeout=quiet)
    except TimeoutError:
        return None
    if message.type == aiohttp.WSMsgType.TEXT:
        try:
            event = json.loads(message.data)
        except ValueError:
            return None
        return event if isinstance(event, dict) else None
    if message.type == aiohttp.WSMsgType.BINARY and len(message.data) > 8:
        if struct.unpack(">I", message.data[:4])[0] != PREVIEW_IMAGE:
            return None
        try:
            return await asyncio.to_thread(imagecodec.decode_image, message.data[8:])
        except imagecodec.BadImage:
            return None
    if message.type in _CLOSED:
        log.warning("comfyui: websocket closed; polling history")
        await ws.close()
    return None


def execution_error(where: str, data: Any) -> EngineError:
    """An ``execution_error`` event (or history message) as a sentence naming the node."""
    data = data if isinstance(data, dict) else {}
    node = data.get("node_type") or "a node"
    reason = " ".join(str(data.get("exception_message") or "no details").split())[:200]
    sentence = f"{where} failed in {node}: {reason}; check the ComfyUI console."
    log.warning("%s", sentence)
    return EngineError(ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND, sentence)


def prompt_rejection(where: str, status: int, payload: Any) -> EngineError | None:
    """A 400 from ``/prompt`` (``{"error", "node_errors"}``) as a sentence naming the nodes."""
    if status != 400 or not isinstance(payload, dict) or "error" not in payload:
        return None
    reasons = [error_detail(payload["error"])]
    node_errors = payload.get("node_errors")
    for node in list(node_errors.values() if isinstance(node_errors, dict) else [])[:2]:
        for error in node.get("errors", [])[:1] if isinstance(node, dict) else []:
            details = f"{error_detail(error)} {error.get('details', '')}".strip()
            reasons.append(f"{node.get('class_type')}: {details}")
    return EngineError(
        ResultCode.FAILED_TO_REQUEST,
        f"{where} rejected the workflow ({'; '.join(reasons)}); "
        "check COMFYUI_WORKFLOWS and COMFYUI_CHECKPOINT.",
    )


def history_entry(answer: Any, prompt_id: str, where: str) -> dict[str, Any] | None:
    """The finished entry of ``prompt_id`` in a ``/history/{id}`` answer, None while unfinished.

    A failed prompt raises its execution error.
    """
    entry = answer.get(prompt_id) if isinstance(answer, dict) else None
    if not isinstance(entry, dict):
        return None
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        for name, data in status.get("messages") or []:
            if name == "execution_error":
                raise execution_error(where, data)
        raise execution_error(where, {"exception_message": "the prompt was interrupted"})
    if not status.get("completed", True):
        return None
    return entry


def saved_image(entry: dict[str, Any]) -> dict[str, str] | None:
    """``/view`` parameters of the entry's first saved image (previews only as a fallback)."""
    found = [
        image
        for output in (entry.get("outputs") or {}).values()
        if isinstance(output, dict)
        for image in output.get("images") or []
        if isinstance(image, dict) and "filename" in image
    ]
    if not found:
        return None
    found.sort(key=lambda image: image.get("type") != "output")
    image = found[0]
    return {
        "filename": str(image["filename"]),
        "subfolder": str(image.get("subfolder", "")),
        "type": str(image.get("type", "output")),
    }


def running_prompts(queue: Any) -> set[str]:
    """The prompt ids in a ``GET /queue`` answer's ``queue_running`` (entries are
    ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``)."""
    entries = queue.get("queue_running") if isinstance(queue, dict) else None
    return {
        str(entry[1])
        for entry in entries or []
        if isinstance(entry, list | tuple) and len(entry) > 1
    }


def checkpoints(info: Any) -> list[str]:
    """Checkpoint names from ``/object_info/CheckpointLoaderSimple`` (old and COMBO formats)."""
    try:
        spec = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
        if isinstance(spec[0], list):
            return [str(name) for name in spec[0]]
        return [str(name) for name in spec[1]["options"]]
    except (KeyError, IndexError, TypeError):
        return []
