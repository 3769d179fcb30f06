"""What the store keeps besides jobs: midjourney-proxy's modals (a press waiting for the prompt
or mask its client is about to send) and each API token's defaults (TheNextLeg's /v2/settings)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imagine.jobs import utcnow
from imagine.store.base import Tx, Unit, dt, ts
from imagine.store.queries import Queries


@dataclass(frozen=True)
class Modal:
    """A press of ``button`` on ``parent_id`` that runs once its client sends the prompt; its id
    becomes the id of the job it then makes."""

    id: str
    owner: str
    parent_id: str
    button: str
    prompt: str
    """The prompt the client is offered to edit."""
    ref: str = ""
    webhook: str = ""
    speed: str = ""
    created_at: datetime = field(default_factory=utcnow)


_MODAL_FIELDS = "id, owner, parent_id, button, prompt, ref, webhook, speed, created_at"


class Modals(Queries):
    async def add_modal(self, modal: Modal) -> None:
        row = (modal.id, modal.owner, modal.parent_id, modal.button, modal.prompt, modal.ref,
               modal.webhook, modal.speed, ts(modal.created_at))  # fmt: skip

        async def write(tx: Tx) -> None:
            await tx.execute(
                f"INSERT INTO modals ({_MODAL_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row
            )

        await self.commit(Unit(write))

    async def modals(self, ids: list[str]) -> list[Modal]:
        if not ids:
            return []
        rows = await self.fetch(
            f"SELECT {_MODAL_FIELDS} FROM modals WHERE id IN ({', '.join('?' * len(ids))})", ids
        )
        return [_modal(row) for row in rows]

    async def drop_modal(self, modal_id: str) -> None:
        async def write(tx: Tx) -> None:
            await tx.execute("DELETE FROM modals WHERE id = ?", (modal_id,))

        await self.commit(Unit(write))

    async def drop_modals_before(self, moment: datetime) -> None:
        """Forget modals opened before ``moment`` whose prompt never came."""
        cutoff = ts(moment)

        async def write(tx: Tx) -> None:
            await tx.execute("DELETE FROM modals WHERE created_at < ?", (cutoff,))

        await self.commit(Unit(write))

    async def token_settings(self, scope: str) -> dict[str, Any]:
        rows = await self.fetch("SELECT settings FROM token_settings WHERE scope = ?", (scope,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def set_token_settings(self, scope: str, settings: dict[str, Any]) -> None:
        text = json.dumps(settings, sort_keys=True)

        async def write(tx: Tx) -> None:
            if not await tx.execute(
                "UPDATE token_settings SET settings = ? WHERE scope = ?", (text, scope)
            ):
                await tx.execute(
                    "INSERT INTO token_settings (scope, settings) VALUES (?, ?)", (scope, text)
                )

        await self.commit(Unit(write))


def _modal(row: tuple[Any, ...]) -> Modal:
    created = dt(row[8])
    assert created is not None
    text = [str(v) for v in row[:8]]
    modal_id, owner, parent_id, button, prompt, ref, webhook, speed = text
    return Modal(modal_id, owner, parent_id, button, prompt, ref, webhook, speed, created)
