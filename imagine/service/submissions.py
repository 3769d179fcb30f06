"""New work: a prompt, a blend, a describe and a shorten, each checked, limited and stored."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence

from imagine import actions
from imagine.codes import ResultCode
from imagine.errors import ServiceError
from imagine.fairqueue import tier_for
from imagine.jobs import Job, new_id
from imagine.limits import owner_of, token_scope
from imagine.prompt import (
    ImaginePrompt,
    PromptError,
    check_references,
    choose_model,
    parse,
    tile_seeds,
)
from imagine.prompt.parse import is_link
from imagine.service.core import ServiceCore
from imagine.service.defaults import with_defaults

log = logging.getLogger(__name__)

MAX_MSG_CHARS = 4000
MAX_REF_CHARS = 2000
MAX_IMAGE_PROMPTS = 5
MIN_BLEND = 2
BLEND_DIMENSIONS = {"square": "1:1", "portrait": "2:3", "landscape": "3:2"}
"""Midjourney's /blend shapes."""
SPEEDS = ("fast", "relax", "turbo")
_INLINE = "https://inline.invalid/{}.png"
"""Stands in, while a prompt is parsed, for an image sent as data: the prompt then reads as one
that starts with image links (its text may be empty), exactly as the same images by link would."""


class Submissions(ServiceCore):
    def _check_text(self, msg: str, ref: str, what: str = "msg") -> None:
        if not msg.strip():
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER, f"{what} is empty: send a prompt."
            )
        if len(msg) > MAX_MSG_CHARS:
            raise ServiceError(
                400,
                ResultCode.INVALID_PARAMETER,
                f"{what} is {len(msg)} characters long; the limit is {MAX_MSG_CHARS}.",
            )
        if len(ref) > MAX_REF_CHARS:
            raise ServiceError(
                400, None, f"ref is {len(ref)} characters long; the limit is {MAX_REF_CHARS}."
            )

    def _check_prompt(self, prompt: ImaginePrompt) -> None:
        """The prefilter reads what the engine will read: the text and the negatives."""
        if word := self.prefilter.find(f"{prompt.text} {prompt.negative_prompt}"):
            raise ServiceError(
                400,
                ResultCode.BANNED_PROMPT,
                f"Invalid phrase: '{word}'",
                bannedWord=word,
                promptEn=prompt.text,
            )

    def _parse(self, msg: str, images: int = 0) -> list[ImaginePrompt]:
        inline = " ".join(_INLINE.format(i) for i in range(images))
        try:
            prompts = parse(f"{inline} {msg}" if inline else msg)
        except PromptError as exc:
            raise ServiceError(400, exc.code, exc.message) from None
        if images:
            prompts = [dataclasses.replace(p, image_urls=p.image_urls[images:]) for p in prompts]
        return prompts

    def _check_model(self, prompt: ImaginePrompt, *, from_image: bool) -> None:
        """An unmapped --v is an error now, not when the job runs; and the job's own model
        decides whether it can start from an image (one --v may map to a model that cannot)."""
        context = self.runner.context
        try:
            model = choose_model(prompt, context.models, context.default_model)
        except PromptError as exc:
            raise ServiceError(400, exc.code, exc.message) from None
        if from_image and not context.capabilities.for_model(model).img2img:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"The {self.engine.capabilities.name} engine cannot start from an image"
                f"{f' with {model}' if model else ''}; remove the image.",
            )  # fmt: skip

    def _check_references(self, prompt: ImaginePrompt) -> None:
        """--sref/--oref on an engine that cannot use them: refused now, in a sentence."""
        try:
            check_references(prompt, self.runner.context.capabilities)
        except PromptError as exc:
            raise ServiceError(400, exc.code, exc.message) from None

    async def imagine(
        self,
        msg: str,
        *,
        ref: str = "",
        webhook: str = "",
        ignore_prefilter: bool = False,
        token: str | None = None,
        max_unfinished: int | None = None,
        content: str | None = None,
        images: Sequence[bytes] = (),
        speed: str | None = None,
        contract: str = "v2",
        action: str = "imagine",
    ) -> list[Job]:
        """Accept ``msg`` as one job per prompt it expands to. ``content``: what the completed
        message shows as the prompt (default: ``msg`` without its leading image links).
        ``images``: image prompts sent as bytes, before any links ``msg`` starts with.
        ``speed``: fast, relax or turbo, whatever the prompt says (midjourney-proxy's modes)."""
        if not images or msg.strip():
            self._check_text(msg, ref)
        self._check_open()
        webhook = self._check_webhook(webhook)
        self.limits.check_rate(ref, token)
        await self._learn_capabilities()
        if len(images) > MAX_IMAGE_PROMPTS:
            raise ServiceError(400, ResultCode.INVALID_LINK,
                               f"At most {MAX_IMAGE_PROMPTS} images can start a prompt.")  # fmt: skip
        defaults = await self.store.token_settings(token_scope(token))
        prompts = self._parse(with_defaults(msg, defaults), len(images))
        for prompt in prompts:
            if not ignore_prefilter:
                # each expansion's text, never the raw msg ({na,zz}ked expands to a banned word)
                self._check_prompt(prompt)
            self._check_model(prompt, from_image=bool(images or prompt.image_urls))
            self._check_references(prompt)
        links = {url for p in prompts for url in p.image_urls}
        if len(links) + len(images) > MAX_IMAGE_PROMPTS:
            raise ServiceError(400, ResultCode.INVALID_LINK,
                               f"At most {MAX_IMAGE_PROMPTS} image links can start a prompt.")  # fmt: skip
        quota = self.limits.quota(ref, token, waiting=len(prompts), limit=max_unfinished)
        if links or images:  # refuse before fetching what would be refused
            await self._precheck(quota, len(prompts))
        # --sref/--oref images are fetched as image prompts are, and kept after them
        fetched = await self.inputs.fetch(
            [u for p in prompts for u in (*p.image_urls, *p.references)]
        )
        sent = [await self.inputs.keep(data, f"image {n}") for n, data in enumerate(images, 1)]
        jobs = []
        for prompt in prompts:
            shown = content if content is not None and len(prompts) == 1 else None
            jobs.append(
                self._new_job(
                    action=action,
                    owner=quota.owner,
                    content=shown if shown is not None else _content(prompt, msg, len(prompts)),
                    prompt=prompt,
                    ref=ref,
                    webhook=webhook,
                    inputs=[*sent, *(fetched[u] for u in (*prompt.image_urls, *prompt.references))],
                    speed=speed,
                    contract=contract,
                )
            )
        await self._add(jobs, quota)
        self._enqueue(jobs)
        log.info("accepted %d job(s) %s for %s", len(jobs), [j.id for j in jobs], quota.owner)
        return jobs

    async def blend(
        self,
        urls: Sequence[str] = (),
        *,
        images: Sequence[bytes] = (),
        dimensions: str = "",
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
        max_unfinished: int | None = None,
        speed: str | None = None,
        contract: str = "v2",
    ) -> list[Job]:
        """Midjourney's /blend: one grid from 2 to 5 images and no text, at a chosen shape."""
        count = len(urls) + len(images)
        if not MIN_BLEND <= count <= MAX_IMAGE_PROMPTS:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"A blend takes {MIN_BLEND} to {MAX_IMAGE_PROMPTS} image"
                f"{' links' if not images else 's'}; got {count}.",
            )  # fmt: skip
        for url in urls:
            if not is_link(url) or any(c.isspace() for c in url):
                raise ServiceError(
                    400, ResultCode.INVALID_LINK,
                    f"Invalid link: `{url[:100]}` is not an http(s) image link.",
                )  # fmt: skip
        shape = BLEND_DIMENSIONS.get(dimensions.strip().lower() or "square")
        if shape is None:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"dimensions must be one of {', '.join(BLEND_DIMENSIONS)}, got {dimensions!r}.",
            )  # fmt: skip
        msg = " ".join([*urls, f"--ar {shape}"])
        return await self.imagine(
            msg, ref=ref, webhook=webhook, token=token, max_unfinished=max_unfinished,
            content=msg, images=images, speed=speed, contract=contract, action="blend",
        )  # fmt: skip

    def _describes(self) -> None:
        if not self.capabilities.describe:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"The {self.capabilities.name} engine cannot describe images; ask the server's "
                "operator for an engine that can (diffusers, AUTOMATIC1111, AI Horde or OpenAI).",
            )  # fmt: skip

    async def describe(
        self,
        *,
        url: str = "",
        image: bytes | None = None,
        stored: str | None = None,
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
        speed: str | None = None,
        contract: str = "v2",
    ) -> Job:
        """Midjourney's /describe: four prompts the engine reads in an image (a link, bytes, or
        the name of an image stored already: a describe again)."""
        self._check_open()
        webhook = self._check_webhook(webhook)
        await self._learn_capabilities()
        self._describes()
        if (
            stored is None
            and image is None
            and not (is_link(url.strip()) and not any(c.isspace() for c in url.strip()))
        ):
            raise ServiceError(
                400, ResultCode.INVALID_LINK,
                "Send the image to describe: an http(s) link to it, or the image itself.",
            )  # fmt: skip
        self.limits.check_rate(ref, token)
        quota = self.limits.quota(ref, token, waiting=1, limit=None)
        await self._precheck(quota, 1)
        if stored is not None:
            name = stored
        elif image is not None:
            name = await self.inputs.keep(image, "the image")
        else:
            name = (await self.inputs.fetch([url.strip()]))[url.strip()]
        job = self._new_job(
            action="describe", owner=quota.owner, content=url.strip(),
            prompt=ImaginePrompt(), ref=ref, webhook=webhook, inputs=[name], speed=speed,
            contract=contract,
        )  # fmt: skip
        await self._add([job], quota)
        self._enqueue([job])
        return job

    async def shorten(
        self,
        prompt: str,
        *,
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
        contract: str = "v2",
    ) -> Job:
        """Midjourney's /shorten: which words of a prompt count, and shorter prompts that keep
        them (read with the engine's own tokenizer where it has one)."""
        self._check_text(prompt, ref, "prompt")
        self._check_open()
        webhook = self._check_webhook(webhook)
        self.limits.check_rate(ref, token)
        parsed = self._parse(prompt)
        if len(parsed) != 1:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                "A prompt to shorten must be one prompt: leave out the {a, b} permutations.",
            )  # fmt: skip
        self._check_prompt(parsed[0])
        quota = self.limits.quota(ref, token, waiting=1, limit=None)
        job = self._new_job(
            action="shorten", owner=quota.owner, content=prompt.strip(), prompt=parsed[0],
            ref=ref, webhook=webhook, contract=contract,
        )  # fmt: skip
        await self._add([job], quota)
        self._enqueue([job])
        return job

    def is_naughty(self, msg: str) -> str | None:
        """The banned phrase the prefilter finds in any expansion of ``msg``, or None."""
        try:
            prompts = parse(msg)
        except PromptError:
            prompts = []
        texts = [f"{p.text} {p.negative_prompt}" for p in prompts] or [msg]
        return next((word for text in texts if (word := self.prefilter.find(text))), None)

    def _new_job(
        self,
        *,
        action: str,
        owner: str,
        content: str,
        prompt: ImaginePrompt,
        ref: str,
        webhook: str,
        inputs: list[str] | None = None,
        parent: Job | None = None,
        tile: int | None = None,
        speed: str | None = None,
        contract: str = "v2",
        job_id: str | None = None,
    ) -> Job:
        if speed:
            prompt = dataclasses.replace(prompt, speed=speed)
        seeds: tuple[int, ...] = ()
        if actions.needs_engine(action) and action not in actions.UPSCALE_FACTORS:
            fixed = prompt.seed is not None and action in ("imagine", "blend")
            base = prompt.seed if fixed and prompt.seed is not None else secrets.randbelow(2**32)
            seeds = tile_seeds(dataclasses.replace(prompt, seed=base), count=4)
        return Job(
            id=job_id or new_id(),
            button_message_id=new_id(),
            action=action,
            type=actions.RESULT_TYPE[action],
            owner=owner,
            content=content,
            prompt=prompt.to_dict(),
            ref=ref,
            webhook=webhook,
            priority=tier_for(prompt.speed),
            parent_id=parent.id if parent else None,
            tile=tile,
            inputs=inputs or [],
            result={"seeds": list(seeds)},
            contract=contract,
        )


def _content(prompt: ImaginePrompt, msg: str, count: int) -> str:
    """The prompt as the user wrote it; each permutation shows its own expansion."""
    if count == 1:
        words = msg.split()
        while words and is_link(words[0]):  # the leading image links are not the prompt
            words.pop(0)
        return " ".join(words)
    return prompt.normalised()


__all__ = ["SPEEDS", "Submissions", "owner_of"]
