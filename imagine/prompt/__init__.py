"""The Midjourney prompt language: ``msg`` → typed, validated prompts → engine requests.

``parse`` reads image links, multi-prompt weights (``::``), permutations (``{a, b}``) and
``--`` parameters; ``plan_generation`` maps one prompt onto an engine's capabilities.
"""

from imagine.prompt.errors import MAX_JOBS, PromptError
from imagine.prompt.mapping import (
    chaos_guidance,
    check_references,
    choose_model,
    ignored_parameters,
    image_strength,
    plan_generation,
    render_size,
    resolve_size,
    tile_seeds,
)
from imagine.prompt.model import ImaginePrompt
from imagine.prompt.parse import parse

__all__ = [
    "MAX_JOBS",
    "ImaginePrompt",
    "PromptError",
    "chaos_guidance",
    "check_references",
    "choose_model",
    "ignored_parameters",
    "image_strength",
    "parse",
    "plan_generation",
    "render_size",
    "resolve_size",
    "tile_seeds",
]
