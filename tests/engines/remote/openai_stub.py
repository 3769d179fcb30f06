"""A stub OpenAI Images API (``/v1/images/generations`` and ``/v1/images/edits``).

Answers ``{"created", "data": [{"b64_json"}...], "usage"}``; gpt-image-* always return base64,
dall-e-* return base64 only when asked with ``response_format: b64_json`` (else URLs).
Errors are ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import io
from typing import Any

from aiohttp import web
from PIL import Image

from tests.engines.remote.stubserver import StubServer, b64, tile

SIZES = {"gpt-image-1": {"1024x1024", "1536x1024", "1024x1536", "auto"}}

MODERATION = {
    "error": {
        "message": "Your request was rejected as a result of our safety system. Your prompt "
        "may contain text that is not allowed by our safety system.",
        "type": "image_generation_user_error",
        "param": None,
        "code": "moderation_blocked",
    }
}
IMAGE_MODERATION = {
    "error": {
        "message": "Your request was rejected by the safety system. safety_violations=[sexual].",
        "type": "image_generation_user_error",
        "param": None,
        "code": "moderation_blocked",
    }
}
BAD_KEY = {
    "error": {
        "message": "Incorrect API key provided: sk-wrong.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
NO_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}


class OpenAIStub(StubServer):
    def __init__(self, key: str = "sk-test") -> None:
        super().__init__()
        self.key = key
        self.next_seed = 1

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/images/generations", self.generations),
            web.post("/v1/images/edits", self.edits),
            web.post("/v1/chat/completions", self.chat),
        ]

    async def chat(self, request: web.Request) -> web.Response:
        """Chat completions' shape, as a vision model answers (numbering and all)."""
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response(BAD_KEY, status=401)
        lines = (
            '1. a red kite over a beach, watercolour\n2) "a kite, bright afternoon light"\n'
            "- red kite, sand, sea, soft focus\nPrompt 4: a child's kite in the wind, photo\n"
        )
        message = {"role": "assistant", "content": lines}
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )

    def _answer(self, request: web.Request, fields: dict[str, Any]) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response(BAD_KEY, status=401)
        model = fields.get("model", "dall-e-2")
        if not str(fields.get("prompt", "")).strip():
            message = "Invalid 'prompt': empty string. Expected a string with minimum length 1."
            error = {"message": message, "type": "invalid_request_error", "param": "prompt"}
            return web.json_response({"error": error | {"code": "empty_string"}}, status=400)
        size = fields.get("size", "1024x1024")
        if size not in SIZES.get(model, {size}):
            message = f"Invalid value: '{size}'. Supported values are: '1024x1024', ..."
            error = {"message": message, "type": "invalid_request_error", "param": "size"}
            return web.json_response({"error": error | {"code": "invalid_value"}}, status=400)
        if model.startswith("dall-e") and fields.get("response_format") != "b64_json":
            data = [{"url": "https://example.invalid/image.png"}]
            return web.json_response({"created": 1, "data": data})
        width, height = (int(v) for v in size.split("x"))
        images = []
        for _ in range(int(fields.get("n", 1))):
            images.append({"b64_json": b64(tile(self.next_seed, width, height))})
            self.next_seed += 1
        usage = {"total_tokens": 100, "input_tokens": 50, "output_tokens": 50}
        return web.json_response({"created": 1, "data": images, "usage": usage})

    async def generations(self, request: web.Request) -> web.Response:
        return self._answer(request, self.bodies[request.path][-1])

    async def edits(self, request: web.Request) -> web.Response:
        return self._answer(request, self.bodies[request.path][-1])


def form_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))
