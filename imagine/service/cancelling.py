"""Cancelling a job: a queued one ends at once; a running one ends in the database first, which
takes its lease away, so whichever worker renders it stops (this process's at once, any other's
at its next renewal, within a second) and its late result is refused by the lease's fence."""

from __future__ import annotations

import dataclasses
import logging

from imagine import actions
from imagine.codes import ResultCode
from imagine.errors import ServiceError, unavailable
from imagine.jobs import Job, JobStatus, new_id, utcnow
from imagine.limits import belongs_to
from imagine.previews import image_key
from imagine.service.reading import Reading
from imagine.storage import StorageError
from imagine.store import AlreadyExists, Fenced, Modal

log = logging.getLogger(__name__)

TRIES = 8
"""Reads and writes a cancel takes at most while its job moves on between the two (a claim, a
requeue, a finish): each move is a transition, so a few tries always see where it stands."""
BEFORE_START = "Cancelled before it started."
WHILE_RENDERING = "Cancelled while it was rendering."
FINISHED = "That job has already finished."


class Cancelling(Reading):
    async def cancel(self, job_id: str, token: str | None) -> Job:
        """Cancel this token's job ``job_id``: it is failed with CANCELLED (its webhook queued in
        the same transaction, its previews removed) and returned. 404 for a job of another
        token or none; 409 for one that has finished already."""
        for _ in range(TRIES):
            # one that ended here while the database could not be written has ended
            unsaved = self.runner.unsaved_job(job_id)
            found = (unsaved, None) if unsaved is not None else await self.store.held(job_id)
            if found is None and (modal := await self._modal_of(job_id, token)) is not None:
                try:  # a midjourney-proxy modal still waiting for its prompt: it never runs
                    return await self._cancel_modal(modal)
                except AlreadyExists:
                    continue  # its prompt came just now: the job it made is cancelled instead
            if found is None or not belongs_to(found[0].owner, token):
                raise ServiceError(404, None, f"No message has id {job_id!r}.")
            job, lease = found
            if job.status.finished:
                raise _finished(job_id, job.status)
            cancelled = _cancelled(job)
            hook = self._webhook_for(cancelled)
            try:
                # compare-and-set: still queued, or still running under the lease read above
                await self.store.save(cancelled, job.status, None if hook is None else
                                      (*hook, 0.0), lease)  # fmt: skip
            except Fenced:
                continue  # it moved between the read and the write: look again
            await self._cancelled(cancelled, was=job.status)
            return cancelled
        raise unavailable(f"Job {job_id} kept changing while it was being cancelled.", 1)

    async def _modal_of(self, job_id: str, token: str | None) -> Modal | None:
        found = await self.store.modals([job_id])
        return found[0] if found and belongs_to(found[0].owner, token) else None

    async def _cancel_modal(self, modal: Modal) -> Job:
        """The modal becomes a job cancelled before it started (so its task reads FAILURE, as
        any cancelled task does), then is forgotten; its notifyHook is not called (its client
        cancelled it and reads the answer)."""
        parent = await self.store.get(modal.parent_id)
        if parent is None:
            await self.store.drop_modal(modal.id)
            raise ServiceError(404, None, f"The task {modal.parent_id} it was pressed on is gone.")
        job = Job(
            id=modal.id, button_message_id=new_id(), action=modal.button,
            type=actions.RESULT_TYPE[modal.button], owner=modal.owner, content=modal.prompt,
            prompt=parent.prompt, ref=modal.ref, parent_id=parent.id,
            tile=actions.TILE_BUTTONS.get(modal.button), status=JobStatus.FAILED,
            finished_at=utcnow(), error_code=ResultCode.CANCELLED, error=BEFORE_START,
            result={"seeds": []}, contract="mj",
        )  # fmt: skip
        await self.store.add([job])
        await self.store.drop_modal(modal.id)
        log.info("modal %s cancelled before its prompt came", modal.id)
        return job

    async def _cancelled(self, job: Job, *, was: JobStatus) -> None:
        """The cancel is saved: stop this process's worker, if it renders the job (any other's
        lease is gone, so it stops at its next renewal), and remove the previews."""
        if (state := self.runner.states.get(job.id)) is not None:
            state.lost = True  # saves nothing: the job is over
            state.cancelled_here = True
            state.cancelled.set()  # the engine stops at its next progress report
        self._positions = (0.0, {})  # the queue's order changed: read it again
        self.webhooks.wake()
        try:
            await self.storage.delete_prefix(image_key(job.id, ""))
        except StorageError as exc:
            log.warning("job %s: its previews could not be removed: %s", job.id, exc)
        log.info("job %s cancelled (%s)", job.id, was)


def _cancelled(job: Job) -> Job:
    """``job`` as it ends when cancelled now (``job`` itself stays as it was read)."""
    return dataclasses.replace(
        job, status=JobStatus.FAILED, finished_at=utcnow(), error_code=ResultCode.CANCELLED,
        error=WHILE_RENDERING if job.status is JobStatus.RUNNING else BEFORE_START,
        preview=None, result={"seeds": job.result.get("seeds", [])},
    )  # fmt: skip


def _finished(job_id: str, status: JobStatus) -> ServiceError:
    """409, with the job's id and how it ended (``ended``: done or failed)."""
    return ServiceError(
        409, ResultCode.JOB_ACTION_RESTRICTED, FINISHED, messageId=job_id, ended=status.value
    )
