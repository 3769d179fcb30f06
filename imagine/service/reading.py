"""Answers: a job's progress or result, a token's jobs, a job's seed, the service's state and a
token's defaults. A job of another API token does not exist, as far as a reader can tell."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from imagine import __version__
from imagine.codes import ResultCode
from imagine.errors import ServiceError
from imagine.fairqueue import positions
from imagine.jobs import Job, JobStatus, utcnow
from imagine.limits import belongs_to, owner_of, token_scope
from imagine.messages import completed, running
from imagine.previews import RunState, image_key
from imagine.service import defaults
from imagine.service.presses import Presses
from imagine.store import Modal, StoreUnavailable
from imagine.workers import BEAT_EVERY

FINISHED_CACHE = 2048
POSITIONS_TTL = 0.5
"""Seconds one reading of the queue answers every poll's queue position."""
MAX_LISTED = 1000
"""Tasks one list request may ask for."""


class Reading(Presses):
    async def message(
        self, job_id: str, expire_mins: float = 12.0, token: str | None = None
    ) -> dict[str, Any]:
        # Polls are most of the traffic: finished jobs (immutable from then on) are answered
        # from a small cache, the rest from the database, which every instance shares.
        unknown = ServiceError(404, None, f"No message has id {job_id!r}.")
        job = self.runner.unsaved_job(job_id)
        if job is None:
            if (cached := self._finished.get(job_id)) is not None:
                if not belongs_to(cached[0], token):
                    raise unknown
                self._finished.move_to_end(job_id)
                return cached[1]
            job = await self.store.get(job_id)
            if job is None:
                raise unknown
        if not belongs_to(job.owner, token):
            raise unknown
        if job.status.finished:
            answer = {"progress": 100, "response": completed(job, self.settings.base_url)}
            if job_id not in self.runner.unsaved:
                self._finished[job_id] = (job.owner, answer)
            if len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)
            return answer
        if utcnow() - job.created_at > timedelta(minutes=expire_mins):
            return {"progress": "incomplete"}
        # this process's own worker knows it best; any other's wrote it in the row
        state = self.runner.states.get(job.id) or RunState(job.id, job.progress, job.preview)
        position = (
            (await self._queue_positions()).get(job.id) if job.status is JobStatus.QUEUED else None
        )
        return running(job, state, position, self.settings.base_url)

    async def _queue_positions(self) -> dict[str, int]:
        """Every queued job's place in the turn order, read at most every POSITIONS_TTL
        seconds, by one reading that all the polls meanwhile share."""
        loop = asyncio.get_running_loop()
        read_at, known = self._positions
        if loop.time() - read_at < POSITIONS_TTL:
            return known
        if self._reading_positions is None or self._reading_positions.done():
            self._reading_positions = asyncio.create_task(self._read_positions())
        return await asyncio.shield(self._reading_positions)

    async def _read_positions(self) -> dict[str, int]:
        queued, turns, top = await self.store.queue_snapshot()
        order = positions(queued, turns, top)
        self._positions = (asyncio.get_running_loop().time(), order)
        return order

    async def info(self, user: str | None = None, token: str | None = None) -> dict[str, Any]:
        await self._learn_capabilities()
        caps = self.capabilities
        data: dict[str, Any] = {
            "success": True,
            "version": __version__,
            "engine": caps.name,
            "placeholder": caps.is_placeholder,
            # jobs that ended here while the database could not be written are not waiting
            "queued": max(0, await self.store.count_waiting() - self._unsaved(JobStatus.QUEUED)),
            "running": max(0, await self.store.count_running() - self._unsaved(JobStatus.RUNNING)),
            "queueLimit": self.settings.queue_limit,
            "maxConcurrent": self.workers,
            # every process's workers that beat lately (this one's, and other machines')
            "workers": len(await self.store.workers(3 * BEAT_EVERY)),
            "capabilities": {
                "img2img": caps.img2img,
                "outpaint": caps.outpaint,
                "upscale": caps.upscale,
                "upscaler": caps.upscaler
                or ("the engine's own" if caps.upscale else "Lanczos resampling"),
                "seeds": caps.seeds,
                "nativeSize": caps.native_size,
                # the parameters among those engines may skip that this one carries out
                "honours": list(caps.honours),
            },
            "notes": list(caps.notes),
        }
        if user:
            data["userUnfinished"] = await self.store.count_unfinished(
                owner_of(json.dumps({"user": user}), token)
            )
        return data

    async def delete_finished(self, job: Job) -> int:
        """Delete a finished job for good: its images from the storage (how many files), then
        its row, and the answer this process keeps for it, so no reader is served it again."""
        removed = await self.storage.delete_prefix(image_key(job.id, ""))
        await self.store.delete_finished(job.id, job.owner)
        self._finished.pop(job.id, None)
        return removed

    async def job(self, job_id: str, token: str | None) -> Job:
        """The job ``job_id`` of this token (as this process knows it best), else a 404."""
        job = self.runner.unsaved_job(job_id) or await self.store.get(job_id)
        if job is None or not belongs_to(job.owner, token):
            raise ServiceError(404, None, f"No task has id {job_id!r}.")
        return job

    async def jobs(self, ids: list[str], token: str | None) -> list[Job | Modal]:
        """This token's jobs (and modals still waiting for a prompt) among ``ids``, in order."""
        if len(ids) > MAX_LISTED:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"At most {MAX_LISTED} ids can be asked for at once; got {len(ids)}.",
            )  # fmt: skip
        found: dict[str, Job | Modal] = {j.id: j for j in await self.store.get_many(ids)}
        missing = [i for i in ids if i not in found]
        found.update((m.id, m) for m in await self.store.modals(missing))
        for job_id in list(found):
            if (unsaved := self.runner.unsaved_job(job_id)) is not None:
                found[job_id] = unsaved
        return [
            found[i] for i in dict.fromkeys(ids) if i in found and belongs_to(found[i].owner, token)
        ]

    async def recent(
        self, token: str | None, limit: int = 100, *, unfinished: bool = False
    ) -> list[Job]:
        return await self.store.recent(token_scope(token), limit, unfinished=unfinished)

    async def seed(self, job_id: str, token: str | None) -> int:
        """The seed of a job's first image (an upscale's: the seed of its tile)."""
        job = await self.job(job_id, token)
        seeds = job.result.get("seeds") or []
        if not seeds and job.tile is not None and job.parent_id:
            parent = await self.store.get(job.parent_id)
            parent_seeds = parent.result.get("seeds", []) if parent else []
            seeds = parent_seeds[job.tile : job.tile + 1]
        if not seeds or job.type in ("describe", "shorten"):
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"Task {job_id} renders no image, so it has no seed.",
            )  # fmt: skip
        return int(seeds[0])

    async def token_defaults(self, token: str | None) -> dict[str, Any]:
        return defaults.shown(await self.store.token_settings(token_scope(token)))

    async def toggle_default(self, token: str | None, toggle: str) -> dict[str, Any]:
        scope = token_scope(token)
        settings = defaults.toggled(await self.store.token_settings(scope), toggle)
        await self.store.set_token_settings(scope, settings)
        return defaults.shown(settings)

    async def wants_remix(self, token: str | None) -> bool:
        try:
            return bool((await self.store.token_settings(token_scope(token))).get("remix"))
        except StoreUnavailable:
            return False
