"""Image links in a prompt (leading image prompts, ``--sref`` and ``--oref``): what counts as one,
and the checks each passes before anything is fetched."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from imagine.codes import ResultCode
from imagine.prompt.errors import PromptError, shown

_LINK_STARTS = ("http://", "https://", "<http://", "<https://")


def is_link(token: str) -> bool:
    """True when ``token`` is meant as a link (it may still be malformed)."""
    return token.lower().startswith(_LINK_STARTS)


def invalid_link(token: str, why: str) -> PromptError:
    return PromptError(
        f"Invalid link: `{shown(token)}` {why}. Image links look like https://example.com/a.png.",
        code=ResultCode.INVALID_LINK,
    )


def checked_link(token: str) -> str:
    """The URL in ``token`` (``<…>`` removed), or INVALID_LINK saying what is wrong with it."""
    url = token
    if url.startswith("<"):
        if not url.endswith(">"):
            raise invalid_link(token, "opens with < but does not close with >")
        url = url[1:-1]
    if "<" in url or ">" in url:
        raise invalid_link(token, "contains < or >")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - reading it validates the port
        if host:
            host.encode("idna")
    except (ValueError, UnicodeError):
        raise invalid_link(token, "is not a valid web address") from None
    if not host:
        raise invalid_link(token, "has no host name")
    return url


def reference_links(name: str, values: Sequence[str], most: int) -> list[str]:
    """The checked links of ``--sref`` or ``--oref`` (``name``), at most ``most`` of them."""

    def invalid(message: str) -> PromptError:
        return PromptError(f"Invalid parameter: --{name} {message}", parameter=f"--{name}")

    if not values:
        example = "style" if name == "sref" else "subject"
        raise invalid(f"needs an image link, e.g. `--{name} https://example.com/{example}.png`.")
    for value in values:
        if not is_link(value):
            raise invalid(
                f"takes image links (http:// or https://), got {shown(value)}; this server "
                "has no style codes or random styles."
            )
    if len(values) > most:
        takes = "one image link" if most == 1 else f"at most {most} image links"
        raise invalid(f"takes {takes}, got {len(values)}.")
    return [checked_link(value) for value in values]
