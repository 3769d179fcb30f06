"""ImagineClient: the bot's one way to the Imagine service, over the v2 HTTP contract.

The same client talks to the embedded service and to any compatible remote one. Every failure
becomes either :class:`ImagineError` (the service refused: a result code and its sentence) or
:class:`ServiceUnavailable` (the service could not be reached or answered nonsense).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.replies import (
    JobDetails,
    JobProgress,
    JobRef,
    JobResult,
    ServiceInfo,
    Submitted,
    parse_result,
)

__all__ = [
    "ImagineClient", "ImagineError", "JobDetails", "JobProgress", "JobRef", "JobResult",
    "ServiceInfo", "ServiceUnavailable", "Submitted",
]  # fmt: skip

log = logging.getLogger(__name__)

NEVER_INCOMPLETE = 100_000.0
"""expireMins (the service's most) for reading a job that may be old."""


class ImagineError(Exception):
    """The service refused a request: ``code`` is its result code, ``message`` its sentence."""

    def __init__(self, code: str, message: str, status: int, message_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.message_id = message_id
        """For ALREADY_REQUESTED_UPSCALE: the messageId of the earlier result."""


class ServiceUnavailable(Exception):
    """The service could not be reached, timed out, or failed (5xx); the message is a sentence."""


class ImagineClient:
    def __init__(
        self,
        base_url: str,
        token: str = "",
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        max_unfinished: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_unfinished = max_unfinished
        """Sent with each /imagine, so one prompt's permutations cannot pass the per-user limit."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers = headers
        self._own_session = session is None
        self._session = session or aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout)
        )

    async def close(self) -> None:
        if self._own_session:
            await self._session.close()

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            async with self._session.request(method, url, headers=self._headers, **kwargs) as resp:
                try:
                    data = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    data = None
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s %s failed: %r", method, url, exc)
            raise ServiceUnavailable(
                "The image service can't be reached right now. Try again in a minute."
            ) from exc
        if status >= 500 or not isinstance(data, dict):
            log.warning("%s %s answered %s: %.200r", method, url, status, data)
            raise ServiceUnavailable(
                "The image service is having trouble right now. Try again in a minute."
            )
        if status == 401 or status == 403:
            log.error("%s %s: the service refused our token (IMAGINE_API_TOKEN)", method, url)
            raise ServiceUnavailable(
                "The bot is not allowed to use the image service; tell the server owner."
            )
        if status >= 400:
            raise ImagineError(
                code=str(data.get("code") or data.get("msg") or "FAILED_TO_REQUEST"),
                message=str(data.get("msg") or data.get("error") or "The request was refused."),
                status=status,
                message_id=data.get("messageId"),
            )
        return data

    async def imagine(self, msg: str, ref: JobRef) -> Submitted:
        body: dict[str, Any] = {"msg": msg, "ref": ref.to_json()}
        if self.max_unfinished is not None:
            body["maxUnfinished"] = self.max_unfinished
        data = await self._request("POST", "/v2/imagine", json=body)
        return self._submitted(data)

    async def blend(self, urls: list[str], dimensions: str, ref: JobRef) -> Submitted:
        body: dict[str, Any] = {"urls": urls, "dimensions": dimensions, "ref": ref.to_json()}
        if self.max_unfinished is not None:
            body["maxUnfinished"] = self.max_unfinished
        return self._submitted(await self._request("POST", "/v2/blend", json=body))

    async def describe(self, url: str, ref: JobRef) -> Submitted:
        """Four prompts read in the image at ``url`` (a job whose result is prompts)."""
        body = {"url": url, "ref": ref.to_json()}
        return self._submitted(await self._request("POST", "/v2/describe", json=body))

    async def shorten(self, prompt: str, ref: JobRef) -> Submitted:
        """Shorter prompts that keep what counts in ``prompt`` (a job whose result is prompts)."""
        body = {"prompt": prompt, "ref": ref.to_json()}
        return self._submitted(await self._request("POST", "/v2/shorten", json=body))

    async def button(
        self,
        button_message_id: str,
        button: str,
        ref: JobRef,
        prompt: str | None = None,
        vary: str | None = None,
    ) -> Submitted:
        """Press a result's button; ``prompt`` is a Remix's or a Custom Zoom's new prompt,
        ``vary`` ("subtle") Low Variation Mode for V1–V4."""
        body = {"buttonMessageId": button_message_id, "button": button, "ref": ref.to_json()}
        if prompt is not None:
            body["prompt"] = prompt
        if vary is not None:
            body["vary"] = vary
        return self._submitted(await self._request("POST", "/v2/button", json=body))

    @staticmethod
    def _submitted(data: Mapping[str, Any]) -> Submitted:
        first = str(data.get("messageId") or "")
        if not first:
            raise ServiceUnavailable(
                "The image service gave an answer the bot does not understand."
            )
        ids = tuple(str(i) for i in data.get("messageIds") or ()) or (first,)
        return Submitted(
            message_id=first, created_at=str(data.get("createdAt") or ""), message_ids=ids
        )

    async def message(
        self, message_id: str, expire_minutes: float = 12.0
    ) -> JobProgress | JobResult:
        """Where a job stands; a :class:`JobResult` once it has finished (done or failed).

        A job not finished ``expire_minutes`` after its creation reads as failed (too long).
        """
        params = {"expireMins": f"{expire_minutes:g}"}
        data = await self._request("GET", f"/v2/message/{message_id}", params=params)
        progress = data.get("progress")
        if progress == 100 and isinstance(data.get("response"), dict):
            return parse_result(data["response"])
        if progress == "incomplete":
            return JobResult(
                "failed",
                "imagine",
                "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND",
                "",
                None,
                (),
                (),
                "",
                (),
            )
        position = data.get("queuePosition")
        return JobProgress(
            progress=int(progress) if isinstance(progress, int | float) else 0,
            status=str(data.get("status") or "running"),
            queue_position=int(position) if isinstance(position, int) else None,
            preview_url=data.get("progressImageUrl") or None,
        )

    async def cancel(self, message_id: str) -> None:
        """End a queued or running job (it then reads as failed, CANCELLED)."""
        await self._request("POST", "/v2/cancel", json={"messageId": message_id})

    async def details(self, message_id: str) -> JobDetails:
        """A finished job's prompt, seed and settings, for a member who asks what made a result."""
        params = {"expireMins": f"{NEVER_INCOMPLETE:g}"}
        data = await self._request("GET", f"/v2/message/{message_id}", params=params)
        response = data.get("response") if data.get("progress") == 100 else None
        if not isinstance(response, dict):
            raise ImagineError(
                "JOB_QUEUED", "That job has not finished yet.", 400, message_id=message_id
            )
        seed: int | None = None
        try:
            answer = await self._request("POST", "/v2/seed", json={"messageId": message_id})
            seed = int(answer["seed"]) if isinstance(answer.get("seed"), int) else None
        except ImagineError:
            pass  # a describe or a shorten: no image, so no seed
        settings = response.get("settings")
        content = response.get("content")
        return JobDetails(
            job_id=message_id,
            type=str(response.get("type") or "imagine"),
            prompt="" if isinstance(content, list) else str(content or ""),
            seed=seed,
            seeds=tuple(int(s) for s in response.get("seeds") or () if isinstance(s, int)),
            settings=dict(settings) if isinstance(settings, dict) else {},
            created_at=str(response.get("createdAt") or ""),
        )

    async def web_link(
        self,
        purpose: str,
        user_id: int,
        *,
        button_message_id: str = "",
        channel_id: int | None = None,
        guild_id: int | None = None,
        message_id: int | None = None,
    ) -> tuple[str, int]:
        """A signed link to a web page for one member: their ``gallery``, or the ``editor`` for
        one image (Vary (Region)); the URL and when it expires (epoch seconds)."""
        body: dict[str, str] = {"purpose": purpose, "user": str(user_id)}
        if purpose == "editor":
            body["buttonMessageId"] = button_message_id
            body["channel"] = str(channel_id or "")
            body["guild"] = "" if guild_id is None else str(guild_id)
            body["message"] = "" if message_id is None else str(message_id)
        data = await self._request("POST", "/web/api/links", json=body)
        return str(data.get("url") or ""), int(data.get("expiresAt") or 0)

    async def web_inbox(self, after: int | None) -> tuple[int, list[dict[str, Any]]]:
        """The Vary (Region) jobs members sent from the editor since ``after`` (None: none yet,
        only the cursor to start from), and the cursor to ask with next."""
        params = {} if after is None else {"after": str(after)}
        data = await self._request("GET", "/web/api/inbox", params=params)
        jobs = [job for job in data.get("jobs") or () if isinstance(job, dict)]
        return int(data.get("cursor") or 0), jobs

    async def info(self, user_id: int | None = None) -> ServiceInfo:
        params = {"user": str(user_id)} if user_id is not None else {}
        data = await self._request("GET", "/v2/info", params=params)
        unfinished = data.get("userUnfinished")
        return ServiceInfo(
            queued=int(data.get("queued") or 0),
            running=int(data.get("running") or 0),
            engine=str(data.get("engine") or "unknown"),
            placeholder=bool(data.get("placeholder")),
            version=str(data.get("version") or ""),
            user_unfinished=int(unfinished) if isinstance(unfinished, int) else None,
            notes=tuple(str(n) for n in data.get("notes") or () if isinstance(n, str))[:5],
        )

    async def download(self, url: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """An image the service serves: capability URLs, so the token is not sent (it may be a CDN)."""
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200:
                    raise ServiceUnavailable(
                        f"The image service could not hand over the image ({resp.status})."
                    )
                data = bytearray()
                async for chunk in resp.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > max_bytes:
                        raise ServiceUnavailable("The image is too large to download.")
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable(
                "The image service can't be reached right now. Try again in a minute."
            ) from exc
