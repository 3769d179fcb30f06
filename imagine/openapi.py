"""The OpenAPI 3.1 description of every route, both contracts (a test keeps it true to the
router); midjourney-proxy's part is :mod:`imagine.edges.mj.schema`."""

from __future__ import annotations

from typing import Any

from imagine import __version__
from imagine.edges.mj import schema as mj
from imagine.web.openapi import paths as web_paths

_ERROR = {
    "type": "object",
    "required": ["success", "msg"],
    "properties": {
        "success": {"const": False},
        "msg": {"type": "string", "description": "What is wrong, in words."},
        "code": {"type": "string", "description": "A result code, e.g. INVALID_PARAMETER."},
        "messageId": {"type": "string"},
    },
}
_ACCEPTED = {
    "type": "object",
    "required": ["success", "messageId", "createdAt"],
    "properties": {
        "success": {"const": True},
        "messageId": {"type": "string"},
        "createdAt": {"type": "string"},
        "messageIds": {"type": "array", "items": {"type": "string"}},
    },
}
_COMPLETED = {
    "type": "object",
    "required": [
        "createdAt",
        "buttons",
        "type",
        "imageUrl",
        "imageUrls",
        "buttonMessageId",
        "originatingMessageId",
        "content",
        "ref",
        "responseAt",
    ],
    "properties": {
        "createdAt": {"type": "string"},
        "buttons": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string"},
        "imageUrl": {"type": ["string", "null"]},
        "imageUrls": {"type": "array", "items": {"type": "string"}},
        "buttonMessageId": {"type": "string"},
        "originatingMessageId": {"type": "string"},
        "content": {
            "type": ["string", "array"],
            "items": {"type": "string"},
            "description": "The prompt, or a result code on failure; a describe's or a "
            "shorten's prompts (a list).",
        },
        "ref": {"type": "string"},
        "responseAt": {"type": "string"},
        "status": {"enum": ["done", "failed"]},
        "seeds": {"type": "array", "items": {"type": "integer"}},
        "blocked": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 4},
            "description": "Tiles (1-4) the engine's safety checker withheld; they have no U or V.",
        },
        "error": {"type": "string"},
        "ignored": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Parameters of the prompt that this engine did not carry out, as typed.",
        },
    },
}
_PROGRESS = {
    "oneOf": [
        {
            "type": "object",
            "required": ["progress", "response"],
            "properties": {"progress": {"const": 100}, "response": _COMPLETED},
        },
        {
            "type": "object",
            "required": ["progress"],
            "properties": {"progress": {"const": "incomplete"}},
        },
        {
            "type": "object",
            "required": ["progress", "progressImageUrl"],
            "properties": {
                "progress": {"type": "integer", "minimum": 0, "maximum": 99},
                "progressImageUrl": {"type": ["string", "null"]},
                "status": {"enum": ["queued", "running"]},
                "queuePosition": {"type": ["integer", "null"]},
            },
        },
    ]
}
_TEXT = {"type": "string"}
_FLAG = {"oneOf": [{"type": "boolean"}, {"enum": ["true", "false", "1", "0", ""]}]}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", **_json(ok)}}
    for status in (*errors, 401, 503):
        out[str(status)] = {"description": "An error, in words", **_json(_ERROR)}
    return out


_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "description": "gzip, deflate, br or zstd for a compressed body (anything else is a 415)",
    "schema": _TEXT,
}


def spec(base_url: str) -> dict[str, Any]:
    imagine_body = {
        "type": "object",
        "required": ["msg"],
        "properties": {
            "msg": {"type": "string", "minLength": 1, "maxLength": 4000},
            "ref": _TEXT,
            "webhookOverride": _TEXT,
            "ignorePrefilter": _FLAG,
            "maxUnfinished": {"type": "integer", "minimum": 1, "maximum": 1000000},
        },
    }
    blend_body = {
        "type": "object",
        "required": ["urls"],
        "properties": {
            "urls": {"type": "array", "items": _TEXT, "minItems": 2, "maxItems": 5},
            "dimensions": {"enum": ["square", "portrait", "landscape"]},
            "ref": _TEXT,
            "webhookOverride": _TEXT,
            "maxUnfinished": {"type": "integer", "minimum": 1, "maximum": 1000000},
        },
    }
    button_body = {
        "type": "object",
        "required": ["buttonMessageId", "button"],
        "properties": {
            "buttonMessageId": _TEXT,
            "button": _TEXT,
            "ref": _TEXT,
            "webhookOverride": _TEXT,
            "prompt": {
                **_TEXT,
                "description": "Remix: the new prompt (V, Vary, 🔄, pans, "
                "Custom Zoom, Vary (Region))",
            },
            "mask": {
                **_TEXT,
                "description": "Vary (Region): a PNG as base64, white where to repaint",
            },
            "zoom": {"type": "number", "minimum": 1, "maximum": 2},
            "ar": {**_TEXT, "description": "Custom Zoom: the new aspect ratio, like 16:9"},
            "vary": {
                "enum": ["strong", "subtle"],
                "description": "V1-V4: how far the variations move from their tile "
                "(Midjourney's High/Low Variation Mode; default strong)",
            },
        },
    }
    describe_body = {
        "type": "object",
        "properties": {"url": _TEXT, "base64": _TEXT, "ref": _TEXT, "webhookOverride": _TEXT},
    }
    shorten_body = {
        "type": "object",
        "required": ["prompt"],
        "properties": {"prompt": _TEXT, "ref": _TEXT, "webhookOverride": _TEXT},
    }
    settings_answer = {
        "type": "object",
        "required": ["success", "settings"],
        "properties": {"success": {"const": True}, "settings": {"type": "object"}},
    }
    info_get = {
        "summary": "Queue, engine and version",
        "parameters": [{"name": "user", "in": "query", "required": False, "schema": _TEXT}],
        "responses": _responses({"type": "object", "required": ["engine", "queued", "running"]}),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Imagine API (TheNextLeg v2 and midjourney-proxy contracts)",
            "version": __version__,
        },
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "mjApiSecret": mj.SECURITY_SCHEME,
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            **web_paths(),  # the pages and the bot's calls for them (imagine.web)
            **mj.paths(),
            "/v2/describe": {
                "post": {
                    "summary": "Four prompts read in an image (url, or base64)",
                    "parameters": [_ENCODING],
                    "requestBody": {"required": True, **_json(describe_body)},
                    "responses": _responses(_ACCEPTED, 400, 413, 415, 429),
                }
            },
            "/v2/shorten": {
                "post": {
                    "summary": "Which words of a prompt count, and shorter prompts",
                    "parameters": [_ENCODING],
                    "requestBody": {"required": True, **_json(shorten_body)},
                    "responses": _responses(_ACCEPTED, 400, 413, 415, 429),
                }
            },
            "/v2/seed": {
                "post": {
                    "summary": "The seed of a job",
                    "parameters": [_ENCODING],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["messageId"],
                                "properties": {"messageId": _TEXT},
                            }
                        ),
                    },
                    "responses": _responses(
                        {"type": "object", "required": ["success", "seed"]}, 400, 404, 413, 415
                    ),
                }
            },
            "/v2/cancel": {
                "post": {
                    "summary": "Stop a queued or running job: it ends failed, content CANCELLED "
                    "(404: no such job of this token; 409: it has finished already)",
                    "parameters": [_ENCODING],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["messageId"],
                                "properties": {"messageId": _TEXT},
                            }
                        ),
                    },
                    "responses": _responses(
                        {
                            "type": "object",
                            "required": ["success", "messageId", "status"],
                            "properties": {
                                "success": {"const": True},
                                "messageId": {"type": "string"},
                                "status": {"const": "failed"},
                            },
                        },
                        400,
                        404,
                        409,
                        413,
                        415,
                    ),
                }
            },
            "/v2/is-this-naughty": {
                "post": {
                    "summary": "Whether the prefilter refuses a prompt, and for which phrase",
                    "parameters": [_ENCODING],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {"type": "object", "required": ["msg"], "properties": {"msg": _TEXT}}
                        ),
                    },
                    "responses": _responses(
                        {
                            "type": "object",
                            "required": ["isNaughty", "phrase"],
                            "properties": {
                                "isNaughty": {"type": "boolean"},
                                "phrase": {"type": ["string", "null"]},
                            },
                        },
                        400,
                        413,
                        415,
                    ),
                }
            },
            "/v2/settings": {
                "get": {
                    "summary": "This token's defaults for its later jobs",
                    "responses": _responses(settings_answer),
                },
                "post": {
                    "summary": "Toggle one default (fast, relax, turbo, remix, raw, stylize "
                    "low/med/high/very high, version N, reset)",
                    "parameters": [_ENCODING],
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["settingsToggle"],
                                "properties": {"settingsToggle": _TEXT},
                            }
                        ),
                    },
                    "responses": _responses(settings_answer, 400, 413, 415),
                },
            },
            "/v2/imagine": {
                "post": {
                    "summary": "Start an imagine job from a prompt",
                    "parameters": [_ENCODING],
                    "requestBody": {"required": True, **_json(imagine_body)},
                    "responses": _responses(_ACCEPTED, 400, 413, 415, 429),
                }
            },
            "/v2/blend": {
                "post": {
                    "summary": "Start a grid that blends 2 to 5 images (no text)",
                    "parameters": [_ENCODING],
                    "requestBody": {"required": True, **_json(blend_body)},
                    "responses": _responses(_ACCEPTED, 400, 413, 415, 429),
                }
            },
            "/v2/button": {
                "post": {
                    "summary": "Press a button of a completed message",
                    "parameters": [_ENCODING],
                    "requestBody": {"required": True, **_json(button_body)},
                    "responses": _responses(_ACCEPTED, 400, 404, 409, 413, 415, 429),
                }
            },
            "/v2/message/{id}": {
                "get": {
                    "summary": "Progress or result of a job",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": _TEXT},
                        {
                            "name": "expireMins",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "number", "minimum": 0, "maximum": 100000},
                        },
                    ],
                    "responses": _responses(_PROGRESS, 400, 404),
                }
            },
            "/v2/info": {"get": info_get, "post": {**info_get, "parameters": [_ENCODING]}},
            "/health": {
                "get": {
                    "summary": "Liveness (no auth)",
                    "security": [],
                    "responses": {"200": {"description": "OK", **_json({"type": "object"})}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": _responses({"type": "object"})}
            },
            "/images/{id}/{name}": {
                "get": {
                    "summary": "An image (capability URL, no auth; immutable)",
                    "security": [],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": _TEXT},
                        {"name": "name", "in": "path", "required": True, "schema": _TEXT},
                    ],
                    "responses": {
                        "200": {
                            "description": "The image",
                            "content": {
                                "image/*": {"schema": {"type": "string", "format": "binary"}}
                            },
                        },
                        "404": {"description": "No such image", **_json(_ERROR)},
                    },
                }
            },
        },
    }
