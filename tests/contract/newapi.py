"""A client that talks to ``/mj`` the way new-api (QuantumNous/new-api) relays its Midjourney
channel: the same paths, header and bodies, and the same strict reading of what comes back.

new-api is Go: it decodes the submit envelope and the task objects into structs, so a field
of the wrong type drops the whole answer; its customId parser splits on ``::`` and panics on
fewer parts; it reads a task as finished only at ``progress == "100%"`` and as failed when
``failReason`` is not empty. :func:`decode_task` and :func:`normal_action` replay those rules.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

from aiohttp.test_utils import TestClient
from PIL import Image

Client = TestClient[Any, Any]


def data_url(image: Image.Image, kind: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return f"data:image/{kind.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def decode_envelope(data: object) -> dict[str, Any]:
    """dto.MidjourneyResponse: code int, description string, result string (or null)."""
    assert isinstance(data, dict), data
    assert type(data["code"]) is int, data
    assert isinstance(data["description"], str), data
    assert data["result"] is None or isinstance(data["result"], str), data
    assert isinstance(data.get("properties", {}), dict), data
    return data


def decode_task(task: object) -> dict[str, Any]:
    """dto.MidjourneyDto, strictly: one bad field and new-api drops the batch."""
    assert isinstance(task, dict), task
    for name in ("id", "action", "status", "progress", "prompt", "promptEn", "description",
                 "state", "imageUrl", "failReason"):  # fmt: skip
        assert task.get(name) is None or isinstance(task[name], str), (name, task)
    assert task["id"].isdigit(), task["id"]
    for name in ("submitTime", "startTime", "finishTime"):
        assert task.get(name) is None or type(task[name]) is int, (name, task)
    properties = task["properties"]
    assert isinstance(properties, dict)
    for name in ("finalPrompt", "finalZhPrompt"):
        assert properties.get(name) is None or isinstance(properties[name], str), properties
    for button in task["buttons"]:
        assert isinstance(button["customId"], str), button
        assert type(button["type"]) is int, button
        normal_action(button["customId"])  # new-api parses every one it relays
    assert task["progress"] in ("", "0%", "100%") or task["progress"].endswith("%")
    if task["status"] != "FAILURE":
        assert task["failReason"] == "", task  # anything else reads as failed (and refunded)
    if task["status"] == "SUCCESS":
        assert task["progress"] == "100%", task
        assert isinstance(task["finishTime"], int), task
        assert task["imageUrl"].startswith("http") or task["action"] in ("DESCRIBE", "SHORTEN")
    return task


def normal_action(custom_id: str) -> tuple[str, int]:
    """new-api's CoverPlusActionToNormalAction: (action, index) for a customId."""
    parts = custom_id.split("::")
    assert len(parts) >= 3, f"new-api panics on {custom_id!r}"
    name = parts[2] if parts[1] == "JOB" else parts[1]
    if "upsample" in name:
        return "UPSCALE", int(parts[3])
    if name == "variation":
        return "VARIATION", int(parts[3])
    if name in ("low_variation", "high_variation"):
        return name.upper(), 1
    if "pan" in name:
        return "PAN", 1
    if "reroll" in name:
        return "REROLL", 1
    if name == "Outpaint":
        return "ZOOM", 1
    if name == "CustomZoom":
        return "CUSTOM_ZOOM", 1
    if name == "Inpaint":
        return "INPAINT", 1
    return "unknown_action", 0


class NewApi:
    """The relay's side of the wire: ``mj-api-secret: <channel key>`` on every call."""

    def __init__(self, client: Client, secret: str = "", prefix: str = "") -> None:
        self.client = client
        self.headers = {"mj-api-secret": secret} if secret else {}
        self.prefix = prefix

    async def submit(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        # as a stream: a body with data URLs is megabytes
        response = await self.client.post(
            f"{self.prefix}/mj/submit/{kind}",
            data=io.BytesIO(json.dumps(body).encode()),
            headers={**self.headers, "Content-Type": "application/json"},
        )
        assert response.status == 200, await response.text()  # charged only on 200
        return decode_envelope(await response.json())

    async def accepted(self, kind: str, body: dict[str, Any]) -> str:
        answer = await self.submit(kind, body)
        assert answer["code"] in (1, 22), answer
        assert answer["result"], answer
        assert answer["result"].isdigit(), answer
        return str(answer["result"])

    async def fetch(self, task_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"{self.prefix}/mj/task/{task_id}/fetch", headers=self.headers
        )
        assert response.status == 200, await response.text()
        return decode_task(await response.json())

    async def poll(self, ids: list[str]) -> list[dict[str, Any]]:
        """The 15-second poller: list-by-condition, a JSON array, only the ids it asked for."""
        response = await self.client.post(
            f"{self.prefix}/mj/task/list-by-condition", json={"ids": ids}, headers=self.headers
        )
        assert response.status == 200
        tasks = await response.json()
        assert isinstance(tasks, list)
        assert {t["id"] for t in tasks} <= set(ids)  # an id it did not ask for is a nil task
        return [decode_task(t) for t in tasks]

    async def finished(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                (task,) = await self.poll([task_id])
                if task["progress"] == "100%" or task["failReason"]:
                    return task
                await asyncio.sleep(0.05)

    @staticmethod
    def button(task: dict[str, Any], part: str) -> str:
        """A customId by substring, as chatgpt-web-midjourney-proxy finds them."""
        found = [b["customId"] for b in task["buttons"] if part in b["customId"]]
        assert found, (part, [b["customId"] for b in task["buttons"]])
        return str(found[0])
