"""The one error the prompt language raises: a sentence for the user and the parameter it is about."""

from __future__ import annotations

from imagine.codes import ResultCode

MAX_JOBS = 40
"""Most jobs one message may make through permutations and ``--repeat`` (Midjourney's cap)."""

_SHOWN_CHARS = 60


class PromptError(ValueError):
    """A prompt the service cannot run; ``message`` says what is wrong and how to fix it.

    ``parameter`` names the parameter at fault ("--chaos", "--foo", "::" for multi-prompt
    weights, "{}" for permutations) or is None for errors about the prompt as a whole (an
    empty prompt, a malformed image link).
    """

    def __init__(
        self,
        message: str,
        *,
        parameter: str | None = None,
        code: ResultCode = ResultCode.INVALID_PARAMETER,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.code = code

    def __str__(self) -> str:
        return self.message


def shown(text: str) -> str:
    """User text quoted in an error, cut short so one message cannot flood the reply."""
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 1] + "…"
    return text.replace("`", "'")
