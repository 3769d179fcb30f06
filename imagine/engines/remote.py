"""What every remote engine shares: one aiohttp session, timeouts, bounded retries, error sentences.

A remote engine talks to one server (a WebUI on the LAN, AI Horde, OpenAI). Every failure of that
conversation ends as an :class:`EngineError` whose message names the server and what to check, so
the user and the operator read the same sentence. Operator-configured URLs may be private
addresses (a GPU box on the LAN): no SSRF guard applies here, by design.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from imagine.codes import ResultCode
from imagine.engines.base import EngineError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
"""Failures worth another try of a read; a 4xx means our request is wrong and stays wrong."""
SUBMIT_RETRY_STATUSES = frozenset({503})
"""A submission goes again only on 503 (not taken). A 500, 502 or 504 may come after the server
queued the job (a proxy lost the answer): a second try would run it twice, at twice the cost."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    """Total tries of one request (1 = no retry)."""
    backoff: float = 1.0
    """Seconds before the second try, doubled before each further one."""
    max_backoff: float = 10.0

    def delay(self, failed_tries: int) -> float:
        return min(self.max_backoff, self.backoff * 2.0 ** (failed_tries - 1))


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    light: float = 30.0
    """Status polls, uploads, downloads."""
    render: float = 600.0
    """One whole generation, however the server delivers it."""


@dataclass(frozen=True)
class FilePart:
    filename: str
    data: bytes
    content_type: str = "image/png"


@dataclass(frozen=True)
class Hints:
    """What the operator should check, per failure kind (names of variables, server flags)."""

    url: str
    auth: str


Explainer = Callable[[int, Any], EngineError | None]
"""(HTTP status, parsed body) -> an engine-specific error, or None for the generic one."""


def error_detail(payload: Any) -> str:
    """The server's own words about a failure, short enough for a chat message."""
    text: Any = payload
    if isinstance(payload, Mapping):
        for key in ("detail", "message", "error", "errors"):
            if payload.get(key):
                text = payload[key]
                break
        if isinstance(text, Mapping):
            text = text.get("message") or text
    flat = " ".join(str(text).split())
    return flat[:200] + ("…" if len(flat) > 200 else "")


class RemoteService:
    """One server: its base URL, its session, and how its failures read."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        hints: Hints,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        explain: Explainer | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.hints = hints
        self.headers = dict(headers or {})
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.explain = explain
        self._session: aiohttp.ClientSession | None = None

    @property
    def where(self) -> str:
        return f"{self.name} at {self.base_url}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; auth and headers are per request so
        # that downloads from other hosts (AI Horde's R2 links) never carry our credentials.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, long: bool) -> aiohttp.ClientTimeout:
        total = self.timeouts.render if long else self.timeouts.light
        return aiohttp.ClientTimeout(total=total, sock_connect=self.timeouts.connect)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: Mapping[str, str | FilePart] | None = None,
        params: Mapping[str, str] | None = None,
        long: bool = False,
        retry: bool = True,
        submit: bool = False,
    ) -> tuple[int, bytes]:
        """Send one request; (status, body) of a 2xx.

        Reads and polls are retried on connection failures, timeouts and 5xx. A ``submit`` (a
        request that queues or renders work, which may cost kudos or money) is retried only when
        the server surely did not take it: no connection could be made, or it answered 503.
        """
        attempts = self.retry.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                async with self.session().request(
                    method,
                    self.url(path),
                    json=json_body,
                    data=_form(form) if form is not None else None,
                    params=params,
                    headers=self.headers,
                    timeout=self._timeout(long),
                ) as response:
                    body = await response.read()
                    status = response.status
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                if last:  # no connection, so nothing was sent: even a submission may go again
                    raise self._unreachable(exc, attempts) from exc
            except TimeoutError as exc:
                # A slow render is not retried (it would only be slow again), nor a submission
                # the server may be working on; a slow poll is.
                if long or submit or last:
                    raise self._too_slow(path, long) from exc
            except aiohttp.ClientError as exc:
                if submit:  # the request may have reached the server before the connection broke
                    reason = str(exc) or type(exc).__name__
                    raise self._not_resent(path, f"dropped the connection ({reason})") from exc
                if last:
                    raise self._unreachable(exc, attempts) from exc
            else:
                if status < 300:
                    return status, body
                if status not in (SUBMIT_RETRY_STATUSES if submit else RETRY_STATUSES) or last:
                    raise self._status_error(status, body, path, attempt, submit)
            log.info("%s: try %d of %s %s failed; retrying", self.name, attempt, method, path)
            await asyncio.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, parsing the body as JSON (an unreadable body is an EngineError)."""
        _, body = await self.request(method, path, **kwargs)
        try:
            return json.loads(body)
        except ValueError:
            raise self.malformed(f"{path} answered with something that is not JSON") from None

    async def fetch(self, url: str) -> bytes:
        """Download an absolute URL the server handed us, without our credentials."""
        try:
            async with self.session().get(url, timeout=self._timeout(False)) as response:
                body = await response.read()
                if response.status >= 300:
                    raise self._fail(
                        ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                        f"The image link {self.name} gave us answered HTTP {response.status}.",
                    )
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._fail(
                ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
                f"Could not download the image {self.name} made ({type(exc).__name__}).",
            ) from exc

    def malformed(self, what: str) -> EngineError:
        return self._fail(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
            f"{self.where}: {what}; "
            f"check that {self.hints.url} points at the right server and version.",
        )

    def _fail(self, code: ResultCode, sentence: str) -> EngineError:
        log.warning("%s: %s", code.value, sentence)
        return EngineError(code, sentence)

    def _unreachable(self, exc: BaseException, attempts: int) -> EngineError:
        reason = str(exc) or type(exc).__name__
        return self._fail(
            ResultCode.FAILED_TO_REQUEST,
            f"Cannot reach {self.where} after {attempts} tries ({reason}); "
            f"check {self.hints.url} and that the server is running.",
        )

    def _too_slow(self, path: str, long: bool) -> EngineError:
        seconds = self.timeouts.render if long else self.timeouts.light
        return self._fail(
            ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND,
            f"{self.where} did not answer {path} within {seconds:g} s; "
            "check that the server is not stuck or overloaded.",
        )

    def _not_resent(self, path: str, what: str) -> EngineError:
        return self._fail(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
            f"{self.where} {what} on {path}; the job was not sent again, since the server may "
            "have taken it and a second try could run it twice. Try again in a moment; if it "
            "keeps happening, check the server's console and any proxy in front of it.",
        )

    def _status_error(
        self, status: int, body: bytes, path: str, attempts: int, submit: bool = False
    ) -> EngineError:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        if self.explain is not None and (special := self.explain(status, payload)) is not None:
            log.warning("%s: %s", special.code.value, special.message)
            return special
        detail = error_detail(payload) or "no details"
        if status in (401, 403):
            return self._fail(
                ResultCode.FAILED_TO_REQUEST,
                f"{self.where} refused our credentials (HTTP {status}: {detail}); "
                f"check {self.hints.auth}.",
            )
        if status == 404:
            return self._fail(
                ResultCode.FAILED_TO_REQUEST,
                f"{self.where} has no {path} (HTTP 404); check {self.hints.url}.",
            )
        if status == 429:
            return self._fail(
                ResultCode.FAILED_TO_REQUEST,
                f"{self.where} is limiting our requests (HTTP 429: {detail}); try again later.",
            )
        if status < 500:
            return self._fail(
                ResultCode.FAILED_TO_REQUEST,
                f"{self.where} rejected the request to {path} (HTTP {status}: {detail}).",
            )
        if submit and status not in SUBMIT_RETRY_STATUSES:
            return self._not_resent(path, f"answered HTTP {status} ({detail})")
        tries = "1 try" if attempts == 1 else f"{attempts} tries"
        return self._fail(
            ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND,
            f"{self.where} failed on {path} (HTTP {status}: {detail}) after {tries}; "
            "check the server's console.",
        )


def _form(fields: Mapping[str, str | FilePart]) -> aiohttp.FormData:
    # Built afresh for every try: a FormData can be sent only once.
    form = aiohttp.FormData()
    for name, value in fields.items():
        if isinstance(value, FilePart):
            form.add_field(
                name, value.data, filename=value.filename, content_type=value.content_type
            )
        else:
            form.add_field(name, value)
    return form
