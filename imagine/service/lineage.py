"""Where a press starts from: the source a Redo upscales again, the seed an upscaled image was
rendered with (Enhance keeps it), and the reference images a job keeps for the presses after it."""

from __future__ import annotations

from imagine import actions
from imagine.codes import ResultCode
from imagine.errors import ServiceError
from imagine.inputs import Inputs
from imagine.jobs import Job, JobStatus
from imagine.prompt import ImaginePrompt
from imagine.results import split_inputs
from imagine.store import JobStore


async def redo_source(store: JobStore, upscaled: Job) -> Job:
    """The job whose image an upscale was made from: what its Redo upscales again."""
    source = await store.get(upscaled.parent_id) if upscaled.parent_id else None
    if source is None or source.status is not JobStatus.DONE:
        raise ServiceError(
            404, ResultCode.BUTTON_NOT_FOUND,
            "The image this upscale was made from is gone, so it cannot be redone.",
        )  # fmt: skip
    return source


async def image_seed(store: JobStore, job: Job) -> int | None:
    """The seed an upscaled image was rendered with: a U's is its tile's in the grid."""
    for _ in range(8):  # an upscale of an upscale of a U: a few steps up at most
        if job.action in actions.TILE_BUTTONS and job.tile is not None:
            grid = await store.get(job.parent_id) if job.parent_id else None
            seeds = grid.result.get("seeds", []) if grid is not None else []
            return int(seeds[job.tile]) if job.tile < len(seeds) else None
        if seeds := job.result.get("seeds"):
            return int(seeds[0])
        parent = await store.get(job.parent_id) if job.parent_id else None
        if parent is None:
            return None
        job = parent
    return None


async def reference_inputs(
    inputs: Inputs, parent: Job, before: ImaginePrompt, prompt: ImaginePrompt
) -> list[str]:
    """The stored names of ``prompt``'s reference images: the parent's where it has them,
    fetched (guarded, as image prompts are) where a Remix names new ones."""
    if not prompt.references:
        return []
    kept = dict(zip(before.references, split_inputs(parent.inputs, before)[1], strict=False))
    missing = [url for url in prompt.references if url not in kept]
    if missing:
        kept.update(await inputs.fetch(missing))
    return [kept[url] for url in prompt.references]
