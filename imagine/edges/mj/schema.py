"""The OpenAPI description of midjourney-proxy's routes (merged into ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": "string"}
_NULLABLE_MS = {"type": ["integer", "null"]}
ENVELOPE = {
    "type": "object",
    "required": ["code", "description", "result", "properties"],
    "properties": {
        "code": {"type": "integer", "description": "1 accepted, 21 exists or waits for a modal, "
                 "22 queued, 23 queue full, 24 banned prompt, 3 not found, 4 invalid, 9 failed."},
        "description": {"type": "string", "description": "What happened, in words."},
        "result": {"type": ["string", "null"], "description": "The task id (a seed, for image-seed)."},
        "properties": {"type": "object"},
    },
}  # fmt: skip
TASK = {
    "type": "object",
    "required": ["id", "action", "status", "progress", "prompt", "promptEn", "description",
                 "state", "submitTime", "imageUrl", "failReason", "properties", "buttons"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9A-Za-z_-]+$"},
        "action": _TEXT,
        "status": {"enum": ["NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE",
                            "SUCCESS", "CANCEL"]},
        "progress": {"type": "string", "pattern": "^([0-9]{1,3}%)?$"},
        "prompt": _TEXT, "promptEn": _TEXT, "description": _TEXT, "state": _TEXT,
        "submitTime": {"type": "integer"}, "startTime": _NULLABLE_MS, "finishTime": _NULLABLE_MS,
        "imageUrl": _TEXT, "failReason": _TEXT,
        "properties": {"type": "object", "properties": {"finalPrompt": _TEXT, "finalZhPrompt": _TEXT}},
        "buttons": {"type": "array", "items": {
            "type": "object", "required": ["customId", "emoji", "label", "type", "style"],
            "properties": {"customId": _TEXT, "emoji": _TEXT, "label": _TEXT,
                           "type": {"const": 2}, "style": {"type": "integer"}}}},
        "seed": _TEXT, "mode": _TEXT, "botType": _TEXT,
    },
}  # fmt: skip
_COMMON = {"state": _TEXT, "notifyHook": _TEXT}
_IMAGES = {"type": "array", "items": _TEXT, "maxItems": 5}
BODIES: dict[str, dict[str, Any]] = {
    "imagine": {"required": ["prompt"], "properties": {
        "prompt": _TEXT, "base64Array": _IMAGES, "base64": _TEXT,
        "botType": {"enum": ["MID_JOURNEY", "NIJI_JOURNEY"]}}},
    "change": {"required": ["taskId", "action"], "properties": {
        "taskId": _TEXT, "action": {"enum": ["UPSCALE", "VARIATION", "REROLL"]},
        "index": {"type": "integer", "minimum": 1, "maximum": 4}}},
    "simple-change": {"required": ["content"], "properties": {"content": _TEXT}},
    "action": {"required": ["taskId", "customId"], "properties": {
        "taskId": _TEXT, "customId": _TEXT, "enableRemix": {"type": "boolean"}}},
    "modal": {"required": ["taskId"], "properties": {
        "taskId": _TEXT, "prompt": _TEXT, "maskBase64": _TEXT}},
    "describe": {"properties": {"base64": _TEXT, "link": _TEXT}},
    "blend": {"required": ["base64Array"], "properties": {
        "base64Array": {**_IMAGES, "minItems": 2},
        "dimensions": {"enum": ["PORTRAIT", "SQUARE", "LANDSCAPE"]}}},
    "shorten": {"required": ["prompt"], "properties": {"prompt": _TEXT}},
}  # fmt: skip
PREFIXES = ("/mj", "/mj-fast/mj", "/mj-relax/mj", "/mj-turbo/mj")
_SECURITY: list[dict[str, list[str]]] = [{"mjApiSecret": []}, {"bearer": []}]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ok(schema: dict[str, Any], *refusals: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {"description": "The answer, or a refusal as a code", **_json(schema)}
    }
    for status in (*refusals, 401):
        out[str(status)] = {"description": "Refused, in words", **_json(ENVELOPE)}
    return out


def paths() -> dict[str, Any]:
    """Every midjourney-proxy route, under each speed prefix."""
    task_id = {"name": "id", "in": "path", "required": True, "schema": _TEXT}
    out: dict[str, Any] = {}
    for prefix in PREFIXES:
        speed = prefix[4:-3] or "the prompt's"
        for name, schema in BODIES.items():
            body = {"type": "object", **schema, "properties": {**schema["properties"], **_COMMON}}
            out[f"{prefix}/submit/{name}"] = {"post": {
                "summary": f"midjourney-proxy: submit {name} ({speed} speed)",
                "security": _SECURITY,
                "requestBody": {"required": True, **_json(body)},
                "responses": _ok(ENVELOPE),
            }}  # fmt: skip
        out[f"{prefix}/task/{{id}}/fetch"] = {"get": {
            "summary": "midjourney-proxy: a task", "security": _SECURITY,
            "parameters": [task_id], "responses": _ok(TASK, 404)}}  # fmt: skip
        out[f"{prefix}/task/{{id}}/image-seed"] = {"get": {
            "summary": "midjourney-proxy: a task's seed", "security": _SECURITY,
            "parameters": [task_id], "responses": _ok(ENVELOPE, 404)}}  # fmt: skip
        out[f"{prefix}/task/{{id}}/cancel"] = {"post": {
            "summary": "midjourney-proxy: stop a queued or running task (no body); code 1, or 4 "
            "once it has finished. It then reads FAILURE, its failReason the cancel.",
            "security": _SECURITY, "parameters": [task_id],
            "responses": _ok(ENVELOPE, 404)}}  # fmt: skip
        listed = {"type": "array", "items": TASK}
        by_ids = {"type": "object", "properties": {"ids": {"type": "array", "items": _TEXT}}}
        for name in ("list-by-condition", "list-by-ids"):
            out[f"{prefix}/task/{name}"] = {"post": {
                "summary": "midjourney-proxy: the known tasks among ids", "security": _SECURITY,
                "requestBody": {"required": True, **_json(by_ids)},
                "responses": _ok({"oneOf": [listed, ENVELOPE]})}}  # fmt: skip
        latest = {"summary": "midjourney-proxy: this token's latest 100 tasks",
                  "security": _SECURITY, "responses": _ok(listed)}  # fmt: skip
        out[f"{prefix}/task/list"] = {"get": latest, "post": latest}
        out[f"{prefix}/task/queue"] = {"get": {**latest, "summary": "its unfinished tasks"}}
    return out


SECURITY_SCHEME = {"type": "apiKey", "in": "header", "name": "mj-api-secret"}
