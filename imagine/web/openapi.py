"""The web side's routes in /openapi.json: the bot's two calls (JSON, the API token), and the
pages (HTML, no API token: a signed link or the operator's token)."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": "string"}
_HTML = {"content": {"text/html": {"schema": _TEXT}}}
_ERROR = {
    "type": "object",
    "required": ["success", "msg"],
    "properties": {"success": {"const": False}, "msg": _TEXT, "code": _TEXT},
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _api(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", **_json(ok)}}
    for status in (*errors, 401, 503):
        out[str(status)] = {"description": "An error, in words", **_json(_ERROR)}
    return out


def _page(*statuses: int, summary: str, method: str = "get", **extra: Any) -> dict[str, Any]:
    """A page: HTML for every answer (an error page says what to do)."""
    responses = {
        str(s): {"description": "To the next page"}
        if s == 303
        else {"description": "A page", **_HTML}
        for s in statuses
    }
    return {method: {"summary": summary, "security": [], "responses": responses, **extra}}


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": _TEXT} for n in names]


_EDITOR_OK = {
    "type": "object",
    "required": ["ok", "message"],
    "properties": {"ok": {"type": "boolean"}, "message": _TEXT, "messageId": _TEXT},
}
_LINK = {
    "type": "object",
    "required": ["purpose", "user"],
    "properties": {
        "purpose": {"enum": ["gallery", "editor"]},
        "user": {**_TEXT, "description": "The Discord user id the link is for"},
        "buttonMessageId": {**_TEXT, "description": "editor: the image to vary"},
        "channel": _TEXT,
        "guild": _TEXT,
        "message": {**_TEXT, "description": "editor: the Discord message the result replies to"},
    },
}
_FORM = {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}


def paths() -> dict[str, Any]:
    editor_errors = {
        str(s): {"description": "Refused, in words", **_json(_EDITOR_OK)}
        for s in (400, 403, 404, 409, 413, 415, 429, 503)
    }
    return {
        "/web/api/links": {"post": {
            "summary": "A signed link to a member's gallery, or to the editor for one image",
            "requestBody": {"required": True, **_json(_LINK)},
            "responses": _api({"type": "object", "required": ["url", "expiresAt"]},
                              400, 404, 413, 415),
        }},
        "/web/api/inbox": {"get": {
            "summary": "The Vary (Region) jobs members sent from the editor since a cursor",
            "parameters": [{"name": "after", "in": "query", "required": False, "schema": _TEXT}],
            "responses": _api({"type": "object", "required": ["cursor", "jobs"]}, 400),
        }},
        "/web/gallery/{token}": _page(
            200, 400, 403, 503, summary="A member's gallery (a signed link)",
            parameters=_path("token"),
        ),
        "/web/gallery/{token}/delete/{job}": _page(
            200, 303, 400, 403, 404, 503, summary="Delete an image (its CSRF token in the form)",
            method="post", parameters=_path("token", "job"), requestBody=_FORM,
        ),
        "/web/editor/{token}": {
            **_page(200, 403, 404, 503, summary="The Vary (Region) editor (a signed link)",
                    parameters=_path("token")),
            "post": {
                "summary": "Send a painted mask and a prompt: a Vary (Region) job",
                "security": [],
                "parameters": _path("token"),
                "requestBody": {"required": True, **_json({"type": "object"})},
                "responses": {"200": {"description": "Sent", **_json(_EDITOR_OK)},
                              **editor_errors},
            },
        },
        "/web/static/{name}": {"get": {
            "summary": "The pages' CSS and JavaScript",
            "security": [],
            "parameters": _path("name"),
            "responses": {
                "200": {"description": "The file", "content": {
                    "text/css": {"schema": _TEXT}, "text/javascript": {"schema": _TEXT}}},
                "404": {"description": "No such file", **_HTML},
            },
        }},
        "/admin": _page(200, 401, 404, 503, summary="The operator's dashboard"),
        "/admin/login": _page(200, 303, 401, 404, summary="Sign in with the operator token",
                              method="post", requestBody=_FORM),
        "/admin/logout": _page(200, 303, 401, 404, summary="Sign out", method="post"),
        "/admin/cancel/{job}": _page(
            200, 303, 401, 403, 404, 409, 503, summary="Cancel a job", method="post",
            parameters=_path("job"), requestBody=_FORM,
        ),
        "/metrics": {"get": {
            "summary": "Prometheus metrics (Authorization: Bearer <IMAGINE_ADMIN_TOKEN>)",
            "security": [],
            "responses": {
                "200": {"description": "Metrics", "content": {"text/plain": {"schema": _TEXT}}},
                "401": {"description": "No operator token",
                        "content": {"text/plain": {"schema": _TEXT}}},
            },
        }},
    }  # fmt: skip
