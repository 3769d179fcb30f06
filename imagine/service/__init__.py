"""The Imagine service's domain: accept jobs, run them fairly, answer for them.

It raises :class:`ServiceError` (an HTTP status, a result code and a sentence); only the
contract edges (:mod:`imagine.edges`) turn those into responses. A job belongs to the API token
that made it: any other token is told it does not exist. The parts, each on the one before:
:mod:`~imagine.service.core` (lifecycle, workers, engine), :mod:`~imagine.service.submissions`
(prompts, blends, describe, shorten), :mod:`~imagine.service.presses` (buttons, Remix, modals),
:mod:`~imagine.service.reading` (results, lists, seeds, info, a token's defaults) and
:mod:`~imagine.service.cancelling` (a job stopped, queued or rendering).
"""

from __future__ import annotations

from imagine.errors import ServiceError
from imagine.service.cancelling import Cancelling


class ImagineService(Cancelling):
    """The whole service: one per process, shared by every contract edge."""


__all__ = ["ImagineService", "ServiceError"]
