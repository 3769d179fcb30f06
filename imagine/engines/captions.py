"""Prompts from what a remote interrogator reads in an image (a caption, and tags): Midjourney's
/describe gives four different prompts, an interrogator one caption, so the four are made of it."""

from __future__ import annotations

from typing import Any


def prompt_variants(caption: str, tags: list[str], count: int) -> list[str]:
    """``count`` distinct prompts from one caption (CLIP's reads "a cat, by an artist, …") and
    tags (the likeliest first): the caption, then the subject with different tags."""
    clauses = [c.strip() for c in caption.split(",") if c.strip()]
    subject = clauses[0] if clauses else caption.strip()
    found = [
        ", ".join(clauses),
        ", ".join([subject, *tags[:3]]) if tags else ", ".join(clauses[:3]),
        ", ".join([subject, *tags[3:8]]) if len(tags) > 3 else f"{subject}, detailed",
        ", ".join([subject, *clauses[-2:]])
        if len(clauses) > 2
        else f"{subject}, cinematic lighting",
        f"{subject}, soft light",
        f"a photo of {subject}",
    ]
    return list(dict.fromkeys(p for p in found if p))[:count]


def interrogated(status: dict[str, Any]) -> tuple[str, list[str]]:
    """The caption and the tags (the likeliest first) of a done interrogation."""
    caption, tags = "", []
    for form in status.get("forms") or []:
        result = form.get("result") if isinstance(form, dict) else None
        if not isinstance(result, dict):
            continue
        if isinstance(result.get("caption"), str):
            caption = result["caption"].strip()
        found = result.get("interrogation")
        if isinstance(found, dict):
            scored = [
                (float(t.get("confidence", 0)), str(t.get("text", "")))
                for group in found.values() if isinstance(group, list)
                for t in group if isinstance(t, dict) and t.get("text")
            ]  # fmt: skip
            tags = [text for _, text in sorted(scored, reverse=True)]
    return caption, tags
