"""The web side's application key: its signer and its metrics, set up with the app."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from imagine.web.metrics import Metrics
from imagine.web.signing import Signer


@dataclass
class WebState:
    metrics: Metrics
    _signer: Signer | None = None

    @property
    def signer(self) -> Signer:
        """Set at start, once the data folder is known to be usable."""
        assert self._signer is not None, "the web side has not started"
        return self._signer


WEB = web.AppKey("web", WebState)
