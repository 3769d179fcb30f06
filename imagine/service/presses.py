"""Buttons: a press makes a job from a result; Remix gives it a new prompt, Custom Zoom a factor
and shape, Vary (Region) a mask; midjourney-proxy's modals hold a press until its prompt comes."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

from imagine import actions
from imagine.codes import ResultCode
from imagine.describing import DIGITS
from imagine.errors import ServiceError, unavailable
from imagine.jobs import Job, JobStatus, new_id
from imagine.limits import belongs_to, owner_of
from imagine.prompt import ImaginePrompt, PromptError, check_references
from imagine.results import split_inputs
from imagine.service.lineage import image_seed, redo_source, reference_inputs
from imagine.service.submissions import Submissions
from imagine.store import AlreadyExists, Modal, Quota

REMIXABLE = frozenset(
    {*actions.VARIATION_BUTTONS, "🔄", "Vary (Strong)", "Vary (Subtle)", "Vary (Region)",
     "Custom Zoom", "⬅️", "➡️", "⬆️", "⬇️"}
)  # fmt: skip
"""Buttons that take a new prompt (Midjourney's Remix)."""
MODAL_ALWAYS = frozenset({"Custom Zoom", "Vary (Region)"})
"""Buttons whose midjourney-proxy press always asks for a prompt (and a mask) first."""
MODAL_LIFETIME = timedelta(days=1)
DEFAULT_ZOOM = 2.0
"""What Custom Zoom zooms out by when no factor is given (Midjourney pre-fills --zoom 2)."""
_DRAFT = re.compile(r"\s*(?:--|[\u2014\u2013])draft(?=\s|$)", re.IGNORECASE)


class Presses(Submissions):
    async def _parent(self, button_message_id: str, token: str | None) -> Job:
        parent = await self.store.by_button_message_id(button_message_id)
        if parent is None or not belongs_to(parent.owner, token):
            raise ServiceError(
                404,
                ResultCode.BUTTON_NOT_FOUND,
                f"No message has buttonMessageId {button_message_id!r}.",
            )
        return parent

    @staticmethod
    def _offered(parent: Job, button: str) -> None:
        offered = parent.result.get("buttons", []) if parent.status is JobStatus.DONE else []
        if button not in offered:
            choices = ", ".join(offered) or "none"
            raise ServiceError(
                400,
                ResultCode.BUTTON_NOT_FOUND,
                f"BUTTON_NOT_FOUND: {button!r} is not a button of that message (it has: {choices}).",
            )

    def _pressed_prompt(
        self,
        parent: Job,
        button: str,
        prompt: str | None,
        zoom: float | None,
        ar: str | None,
    ) -> tuple[ImaginePrompt, str]:
        """The prompt (and the prompt text shown) of the job a press makes."""
        base = ImaginePrompt.from_dict(parent.prompt)
        if button == actions.ENHANCE:  # the full render: the same prompt without --draft
            if prompt is not None or zoom is not None or ar is not None:
                raise ServiceError(
                    400, ResultCode.INVALID_PARAMETER, "Enhance takes no new prompt, zoom or ar."
                )
            return dataclasses.replace(base, draft=False), _DRAFT.sub("", parent.content)
        if prompt is None and zoom is None and ar is None and button != "Custom Zoom":
            return base, parent.content
        if prompt is not None and button not in REMIXABLE:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"{button} takes no new prompt; Remix works on "
                f"{', '.join(sorted(REMIXABLE))}.",
            )  # fmt: skip
        if (zoom is not None or ar is not None) and button != "Custom Zoom":
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                f"zoom and ar are for Custom Zoom only, not for {button}.",
            )  # fmt: skip
        text = prompt.strip() if prompt is not None and prompt.strip() else parent.content
        if prompt is None:  # the parent's own prompt, as parsed (its parameters included)
            text = dataclasses.replace(base, image_urls=()).normalised()
        if button == "Custom Zoom":
            if zoom is not None:
                text = f"{text} --zoom {zoom:g}"
            elif "--zoom" not in text:
                text = f"{text} --zoom {DEFAULT_ZOOM:g}"
            if ar is not None:
                text = f"{text} --ar {ar.strip()}"
        self._check_text(text, "", "prompt")
        parsed = self._parse(text)
        if len(parsed) != 1:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                "A new prompt for a button must be one prompt: leave out {a, b} permutations.",
            )  # fmt: skip
        new = parsed[0]
        if new.image_urls:
            raise ServiceError(
                400, ResultCode.INVALID_LINK,
                "A new prompt for a button works on the image it was pressed on: leave out "
                "image links.",
            )  # fmt: skip
        self._check_prompt(new)
        self._check_model(new, from_image=False)
        return new, (prompt.strip() if prompt is not None and prompt.strip() else parent.content)

    async def press(
        self,
        button_message_id: str,
        button: str,
        *,
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
        prompt: str | None = None,
        mask: bytes | None = None,
        zoom: float | None = None,
        ar: str | None = None,
        speed: str | None = None,
        job_id: str | None = None,
        contract: str = "v2",
        vary: str | None = None,
    ) -> Job:
        """Press ``button`` on a result. ``prompt`` (Remix), ``zoom`` and ``ar`` (Custom Zoom) and
        ``mask`` (Vary (Region): white, or opaque, = repaint) shape the job; ``job_id``: the id
        the job takes (a midjourney-proxy modal's); ``vary`` ("strong" or "subtle"): how far
        V1–V4 move from their tile."""
        self._check_open()
        webhook = self._check_webhook(webhook)
        self.limits.check_rate(ref, token)
        await self._learn_capabilities()  # a U1–U4 copy made here offers the workers' buttons
        parent = await self._parent(button_message_id, token)
        self._offered(parent, button)
        if parent.type in ("describe", "shorten"):
            return await self._from_prompts(
                parent, button, ref=ref, webhook=webhook, token=token, speed=speed,
                contract=contract,
            )  # fmt: skip
        if button == "Vary (Region)" and mask is None:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                "Vary (Region) needs a mask: a PNG of the image's size, white (or opaque) where "
                "to repaint, as base64.",
            )  # fmt: skip
        if mask is not None and button != "Vary (Region)":
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER, f"A mask is for Vary (Region), not {button}."
            )
        if vary is not None and (button not in actions.VARIATION_BUTTONS
                                 or vary not in actions.VARY_STRENGTH):  # fmt: skip
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER,
                "vary is for V1–V4, and is strong or subtle."
                if vary in actions.VARY_STRENGTH else "vary is strong or subtle.",
            )  # fmt: skip
        new_prompt, content = self._pressed_prompt(parent, button, prompt, zoom, ar)
        if new_prompt.references:
            try:
                check_references(new_prompt, self.runner.context.capabilities_for(parent))
            except PromptError as exc:
                raise ServiceError(400, exc.code, exc.message) from None
        source = await redo_source(self.store, parent) if button in actions.REDO else parent
        # A press is charged to whoever pressed it: their token and the user their ref names
        # (the parent's ref when they send none; the parent is this token's own job).
        charged = ref or parent.ref
        quota: Quota | None = None
        if actions.needs_engine(button):  # U1–U4 only share a file: nothing to wait for
            quota = self.limits.quota(charged, token, waiting=1, limit=None)
        # 🔄 re-rolls a prompt's image prompts too (never a Vary (Region)'s mask)
        fresh = button == "🔄" and actions.fresh_render(parent.action)
        base = ImaginePrompt.from_dict(parent.prompt)
        inputs = split_inputs(parent.inputs, base)[0] if fresh else []
        if mask is not None:
            if quota is not None:
                await self._precheck(quota, 1)
            inputs = [await self.inputs.keep(mask, "the mask")]
        # every job keeps its --sref/--oref images last, so any later press finds them
        inputs += await reference_inputs(self.inputs, parent, base, new_prompt)
        async with self._press_lock:  # two quick presses of one U must not both upscale
            if button in actions.TILE_BUTTONS and (
                earlier := await self.store.pressed(parent.id, button)
            ):
                raise _already_pressed(button, earlier)
            job = self._new_job(
                action=button,
                owner=owner_of(charged, token),
                content=content,
                prompt=new_prompt,
                ref=charged,
                webhook=webhook,
                parent=source,
                tile=actions.TILE_BUTTONS.get(button),
                inputs=inputs,
                speed=speed,
                contract=contract,
                job_id=job_id,
            )
            if button == actions.ENHANCE:
                seed = await image_seed(self.store, parent)
                job.result["seeds"] = [seed] if seed is not None else job.result["seeds"][:1]
            elif actions.carried_out(button) in actions.UPSCALE_FACTORS:
                job.result["seeds"] = []  # the upscaler takes no seed
            if vary is not None:
                job.result["vary"] = vary  # read by the runner, kept in the result
            try:
                await self._add([job], quota)
            except AlreadyExists:
                if job_id is not None and await self.store.get(job_id) is not None:
                    raise ServiceError(
                        409, ResultCode.ALREADY_REQUESTED_UPSCALE,
                        f"Task {job_id} was submitted already.", messageId=job_id,
                    ) from None  # fmt: skip
                earlier = await self.store.pressed(parent.id, button)  # another API instance's
                if earlier is None:
                    raise unavailable("That button could not be pressed now.", 1) from None
                raise _already_pressed(button, earlier) from None
        self._enqueue([job])
        return job

    async def _from_prompts(
        self,
        parent: Job,
        button: str,
        *,
        ref: str,
        webhook: str,
        token: str | None,
        speed: str | None,
        contract: str,
    ) -> Job:
        """A describe's or shorten's buttons: 1️⃣–5️⃣ imagine that prompt; 🔄 describes again."""
        if button == "🔄":
            return await self.describe(
                stored=parent.inputs[0] if parent.inputs else None, ref=ref or parent.ref,
                webhook=webhook, token=token, speed=speed, contract=contract,
            )  # fmt: skip
        prompts = parent.result.get("prompts", [])
        number = DIGITS.index(button)
        jobs = await self.imagine(
            prompts[number], ref=ref or parent.ref, webhook=webhook, token=token, speed=speed,
            contract=contract,
        )  # fmt: skip
        return jobs[0]

    async def open_modal(
        self,
        parent: Job,
        button: str,
        *,
        ref: str = "",
        webhook: str = "",
        token: str | None = None,
        speed: str | None = None,
    ) -> Modal:
        """midjourney-proxy's first step of a press that needs a prompt (or mask): an id the
        client sends them with (:meth:`submit_modal`), which becomes the job's id."""
        self._check_open()
        webhook = self._check_webhook(webhook)
        self.limits.check_rate(ref or parent.ref, token)
        self._offered(parent, button)
        if button in actions.TILE_BUTTONS or button not in REMIXABLE:
            raise ServiceError(
                400, ResultCode.INVALID_PARAMETER, f"{button} takes no prompt: press it directly."
            )
        prompt = parent.content
        if button == "Custom Zoom":
            prompt = f"{prompt} --zoom {DEFAULT_ZOOM:g}"
        modal = Modal(new_id(), parent.owner, parent.id, button, prompt, ref or parent.ref,
                      webhook, speed or "")  # fmt: skip
        await self.store.add_modal(modal)
        # a modal whose prompt never comes is forgotten after a day (its press never ran)
        await self.store.drop_modals_before(modal.created_at - MODAL_LIFETIME)
        return modal

    async def submit_modal(
        self,
        modal_id: str,
        *,
        prompt: str = "",
        mask: bytes | None = None,
        token: str | None = None,
    ) -> Job:
        """The modal's prompt (empty: the one offered) and mask: its press runs now, as the job
        with the modal's id."""
        found = await self.store.modals([modal_id])
        if not found or not belongs_to(found[0].owner, token):
            if (done := await self.store.get(modal_id)) is not None and belongs_to(
                done.owner, token
            ):
                raise ServiceError(
                    409, ResultCode.ALREADY_REQUESTED_UPSCALE,
                    f"Task {modal_id} was submitted already.", messageId=modal_id,
                )  # fmt: skip
            raise ServiceError(404, None, f"No task waits for a prompt with id {modal_id!r}.")
        modal = found[0]
        parent = await self.store.get(modal.parent_id)
        if parent is None:
            raise ServiceError(404, None, f"The task {modal.parent_id} it was pressed on is gone.")
        job = await self.press(
            parent.button_message_id, modal.button, ref=modal.ref, webhook=modal.webhook,
            token=token, prompt=prompt.strip() or modal.prompt, mask=mask,
            speed=modal.speed or None, job_id=modal.id, contract="mj",
        )  # fmt: skip
        await self.store.drop_modal(modal.id)
        return job


def _already_pressed(button: str, earlier: Job) -> ServiceError:
    return ServiceError(
        409,
        ResultCode.ALREADY_REQUESTED_UPSCALE,
        f"{button} was already pressed on this message; its result is messageId {earlier.id}.",
        messageId=earlier.id,
    )
