"""Result codes (TheNextLeg v2) and what each means to a person."""

from __future__ import annotations

from enum import StrEnum


class ResultCode(StrEnum):
    ALREADY_REQUESTED_UPSCALE = "ALREADY_REQUESTED_UPSCALE"
    BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND = "BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND"
    BANNED_PROMPT = "BANNED_PROMPT"
    BLOCKED = "BLOCKED"
    BUTTON_NOT_FOUND = "BUTTON_NOT_FOUND"
    CANCELLED = "CANCELLED"
    FAILED_TO_PROCESS_YOUR_COMMAND = "FAILED_TO_PROCESS_YOUR_COMMAND"
    FAILED_TO_REQUEST = "FAILED_TO_REQUEST"
    IMAGE_BLOCKED = "IMAGE_BLOCKED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_LINK = "INVALID_LINK"
    INVALID_PARAMETER = "INVALID_PARAMETER"
    JOB_ACTION_RESTRICTED = "JOB_ACTION_RESTRICTED"
    JOB_QUEUED = "JOB_QUEUED"
    MODERATION_OUTAGE = "MODERATION_OUTAGE"
    NO_FAST_HOURS = "NO_FAST_HOURS"
    QUEUE_FULL = "QUEUE_FULL"


EXPLANATIONS: dict[ResultCode, str] = {
    ResultCode.ALREADY_REQUESTED_UPSCALE: "That image was already upscaled.",
    ResultCode.BOT_TOOK_TOO_LONG_TO_PROCESS_YOUR_COMMAND: (
        "Generation took too long and was stopped. Try again, or a simpler prompt."
    ),
    ResultCode.BANNED_PROMPT: "The prompt was refused by the content filter. Rephrase it.",
    ResultCode.BLOCKED: "You are blocked from using this service.",
    ResultCode.BUTTON_NOT_FOUND: "That button does not exist on this message.",
    ResultCode.CANCELLED: "The job was cancelled.",
    ResultCode.FAILED_TO_PROCESS_YOUR_COMMAND: (
        "Generation failed. Try again; if it keeps failing, tell the server owner."
    ),
    ResultCode.FAILED_TO_REQUEST: "The request could not be sent to the image engine. Try again.",
    ResultCode.IMAGE_BLOCKED: "The image engine refused to show this result. Rephrase the prompt.",
    ResultCode.INTERNAL_ERROR: "Something went wrong on our side. Try again.",
    ResultCode.INVALID_LINK: "An image link could not be used.",
    ResultCode.INVALID_PARAMETER: "A parameter is invalid.",
    ResultCode.JOB_ACTION_RESTRICTED: "That action is not allowed on this job.",
    ResultCode.JOB_QUEUED: "The job is queued.",
    ResultCode.MODERATION_OUTAGE: "The content filter is unavailable. Try again shortly.",
    ResultCode.NO_FAST_HOURS: "No fast hours left.",
    ResultCode.QUEUE_FULL: "The queue is full. Try again in a few minutes.",
}
