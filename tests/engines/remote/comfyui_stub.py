"""A stub ComfyUI server (server.py and execution.py shapes).

``POST /prompt {"prompt", "client_id"}`` answers ``{"prompt_id", "number", "node_errors"}`` and a
worker runs the queue in order, sending to ``/ws?clientId=``: ``execution_start``, ``executing``,
``progress {value, max}``, a binary preview (4-byte type 1, 4-byte format 2 = PNG, the image),
``executed``, ``execution_success`` and ``executing {node: null}``; the history entry is written
just after, as ComfyUI's prompt worker does. Modes: ``ok``, ``legacy`` (no execution_success),
``error`` (execution_error), ``stuck`` (never finishes), ``invalid`` (400 from /prompt).

``GET /queue`` answers ``{"queue_running": [...], "queue_pending": [...]}``, each entry
``[number, prompt_id, prompt, extra_data, outputs_to_execute]``; ``POST /queue {"delete": [ids]}``
drops waiting prompts. ``POST /interrupt`` stops whatever prompt is running, whoever queued it,
as older servers do; with ``targeted_interrupt`` (newer servers) a body ``{"prompt_id"}`` stops
only that prompt, if it is the running one.
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
        self.entries: dict[str, list[Any]] = {}
        self.running: str | None = None
        self.deleted: set[str] = set()
        """Prompts a client asked to delete; those still waiting never run."""
        self.targeted_interrupt = False
        self.interrupted = asyncio.Event()
        self.interrupted_prompts: list[str] = []
        """The prompts an interrupt stopped, in order."""

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
            web.get("/queue", self.queue_state),
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
        if broken := _broken_link(body["prompt"]):
            error = {
                "type": "invalid_prompt",
                "message": "Cannot execute because a node links to a node that does not exist.",
                "details": broken,
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
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
        number = len(self.prompts)
        extra = {"client_id": body["client_id"]}
        self.entries[prompt_id] = [number, prompt_id, body["prompt"], extra, ["9"]]
        await self.queue.put((prompt_id, body["prompt"], body["client_id"]))
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

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
        body = self.bodies[request.path][-1]
        wanted = body.get("prompt_id") if self.targeted_interrupt and body else None
        if self.running is not None and wanted in (None, self.running):
            self.interrupted_prompts.append(self.running)
            self.interrupted.set()
        return web.Response()

    async def queue_state(self, request: web.Request) -> web.Response:
        waiting = [
            entry
            for prompt_id, entry in self.entries.items()
            if prompt_id != self.running and prompt_id not in self.history
            if prompt_id not in self.deleted
        ]
        running = [self.entries[self.running]] if self.running is not None else []
        return web.json_response({"queue_running": running, "queue_pending": waiting})

    async def queue_change(self, request: web.Request) -> web.Response:
        # A running prompt is not in the queue any more: deleting it does nothing to it.
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
                self.running = prompt_id
                try:
                    await self._execute(prompt_id, workflow, client_id)
                finally:
                    self.running = None

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
                self.interrupted.clear()  # an interrupt stops the running prompt only
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


def _broken_link(workflow: dict[str, Any]) -> str:
    """The first input linking ([node id, output]) to a node the workflow lacks, or ""."""
    for node_id, node in workflow.items():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and isinstance(value[0], str) and value[0] not in workflow:
                return f"node {node_id} input {name} links to missing node {value[0]}"
    return ""


def _entry(
    workflow: dict[str, Any], outputs: dict[str, Any], status: str, messages: list[Any]
) -> dict[str, Any]:
    return {
        "prompt": [0, "id", workflow, {}, ["9"]],
        "outputs": outputs,
        "status": {"status_str": status, "completed": status == "success", "messages": messages},
        "meta": {},
    }
