"""A stub ComfyUI server (server.py and execution.py shapes).

``POST /prompt {"prompt", "client_id"}`` answers ``{"prompt_id", "number", "node_errors"}`` and a
worker runs the queue in order, sending to ``/ws?clientId=``: ``execution_start``, ``executing``,
``progress {value, max}``, a binary preview (4-byte type 1, 4-byte format 2 = PNG, the image),
``executed``, ``execution_success`` and ``executing {node: null}``; the history entry is written
just after, as ComfyUI's prompt worker does. Modes: ``ok``, ``legacy`` (no execution_success),
``error`` (execution_error), ``stuck`` (never finishes), ``invalid`` (400 from /prompt).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from PIL import Image

from tests.engines.remote.stubserver import StubServer, png_bytes, tile

CHECKPOINTS = ["sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors"]


class ComfyUIStub(StubServer):
    def __init__(self, *, step_seconds: float = 0.01) -> None:
        super().__init__()
        self.step_seconds = step_seconds
        self.mode = "ok"
        self.websocket = True
        self.uploads: dict[str, Image.Image] = {}
        self.outputs: dict[str, bytes] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.prompts: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], str]] = asyncio.Queue()
        self.deleted: set[str] = set()
        self.interrupted = asyncio.Event()

    def app(self) -> web.Application:
        app = super().app()
        app.cleanup_ctx.append(self._worker_ctx)
        return app

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/ws", self.websocket_handler),
            web.get("/object_info/CheckpointLoaderSimple", self.object_info),
            web.post("/upload/image", self.upload),
            web.post("/prompt", self.prompt),
            web.get("/history/{prompt_id}", self.get_history),
            web.get("/view", self.view),
            web.post("/interrupt", self.interrupt),
            web.post("/queue", self.queue_change),
        ]

    async def _worker_ctx(self, app: web.Application) -> AsyncIterator[None]:
        worker = asyncio.create_task(self._worker())
        yield
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    async def websocket_handler(self, request: web.Request) -> web.StreamResponse:
        if not self.websocket:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = ws
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {}}, "sid": sid}})
        try:
            async for _ in ws:
                pass
        finally:
            self.sockets.pop(sid, None)
        return ws

    async def object_info(self, request: web.Request) -> web.Response:
        spec = {"input": {"required": {"ckpt_name": [CHECKPOINTS, {"tooltip": "checkpoint"}]}}}
        return web.json_response({"CheckpointLoaderSimple": spec})

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        field = form["image"]
        assert isinstance(field, web.FileField)
        data = self.bodies[request.path][-1]["image"]
        self.uploads[field.filename] = Image.open(io.BytesIO(data))
        return web.json_response({"name": field.filename, "subfolder": "", "type": "input"})

    async def prompt(self, request: web.Request) -> web.Response:
        body = self.bodies[request.path][-1]
        if self.mode == "invalid":
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": "",
                "extra_info": {},
            }
            node_errors = {
                "4": {
                    "errors": [
                        {
                            "type": "value_not_in_list",
                            "message": "Value not in list",
                            "details": "ckpt_name: 'nope.safetensors' not in [...]",
                            "extra_info": {},
                        }
                    ],
                    "dependent_outputs": ["9"],
                    "class_type": "CheckpointLoaderSimple",
                }
            }
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        prompt_id = str(uuid.uuid4())
        self.prompts[prompt_id] = body["prompt"]
        await self.queue.put((prompt_id, body["prompt"], body["client_id"]))
        return web.json_response(
            {"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}}
        )

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def view(self, request: web.Request) -> web.Response:
        data = self.outputs.get(request.query.get("filename", ""))
        if data is None or request.query.get("type") != "output":
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="image/png")

    async def interrupt(self, request: web.Request) -> web.Response:
        self.interrupted.set()
        return web.Response()

    async def queue_change(self, request: web.Request) -> web.Response:
        self.deleted.update(self.bodies[request.path][-1].get("delete", []))
        return web.Response()

    async def _send(self, client_id: str, kind: str, data: dict[str, Any]) -> None:
        ws = self.sockets.get(client_id)
        if ws is not None and not ws.closed:
            await ws.send_json({"type": kind, "data": data})

    async def _worker(self) -> None:
        while True:
            prompt_id, workflow, client_id = await self.queue.get()
            if prompt_id not in self.deleted:
                await self._execute(prompt_id, workflow, client_id)

    async def _execute(self, prompt_id: str, workflow: dict[str, Any], client_id: str) -> None:
        start = {"prompt_id": prompt_id, "timestamp": 1}
        await self._send(client_id, "execution_start", start)
        await self._send(
            client_id, "executing", {"node": "3", "display_node": "3", "prompt_id": prompt_id}
        )
        messages: list[Any] = [["execution_start", start]]
        for step in range(1, 4):
            if self.mode == "stuck":
                await self.interrupted.wait()
            if self.interrupted.is_set():
                data = {
                    "prompt_id": prompt_id,
                    "node_id": "3",
                    "node_type": "KSampler",
                    "executed": [],
                }
                await self._send(client_id, "execution_interrupted", data)
                self.history[prompt_id] = _entry(
                    workflow, {}, "error", [*messages, ["execution_interrupted", data]]
                )
                return
            progress = {"value": step, "max": 3, "prompt_id": prompt_id, "node": "3"}
            await self._send(client_id, "progress", progress)
            if step == 2 and (ws := self.sockets.get(client_id)) is not None:
                await ws.send_bytes(struct.pack(">II", 1, 2) + png_bytes(tile(99, 8, 8)))
            await asyncio.sleep(self.step_seconds)
        if self.mode == "error":
            error = {
                "prompt_id": prompt_id,
                "node_id": "3",
                "node_type": "KSampler",
                "executed": [],
                "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB",
                "exception_type": "torch.OutOfMemoryError",
                "traceback": [],
                "current_inputs": {},
                "current_outputs": [],
            }
            await self._send(client_id, "execution_error", error)
            self.history[prompt_id] = _entry(
                workflow, {}, "error", [*messages, ["execution_error", error]]
            )
            return
        filename = f"imagine_{len(self.outputs) + 1:05}_.png"
        self.outputs[filename] = png_bytes(self._render(workflow))
        images = {"images": [{"filename": filename, "subfolder": "", "type": "output"}]}
        await self._send(
            client_id,
            "executed",
            {"node": "9", "display_node": "9", "output": images, "prompt_id": prompt_id},
        )
        if self.mode != "legacy":
            await self._send(
                client_id, "execution_success", {"prompt_id": prompt_id, "timestamp": 2}
            )
        await self._send(client_id, "executing", {"node": None, "prompt_id": prompt_id})
        await asyncio.sleep(0.02)  # ComfyUI writes the history entry just after announcing the end
        self.history[prompt_id] = _entry(workflow, {"9": images}, "success", messages)

    def _render(self, workflow: dict[str, Any]) -> Image.Image:
        nodes = {node["class_type"]: node["inputs"] for node in workflow.values()}
        seed = nodes["KSampler"]["seed"]
        if "EmptyLatentImage" in nodes:
            size = nodes["EmptyLatentImage"]["width"], nodes["EmptyLatentImage"]["height"]
        else:
            size = self.uploads[nodes["LoadImage"]["image"]].size
        return tile(seed, *size)


def _entry(
    workflow: dict[str, Any], outputs: dict[str, Any], status: str, messages: list[Any]
) -> dict[str, Any]:
    return {
        "prompt": [0, "id", workflow, {}, ["9"]],
        "outputs": outputs,
        "status": {"status_str": status, "completed": status == "success", "messages": messages},
        "meta": {},
    }
