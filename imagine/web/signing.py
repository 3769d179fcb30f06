"""Signed links: each one names its purpose (a gallery, an editor for one job), the Discord user
and API token it belongs to, and when it stops working. HMAC-SHA256 with IMAGINE_WEB_SECRET, or a
secret generated once and kept in the data folder, so links outlive a restart.

A link is ``<payload>.<signature>``, both base64url: the payload is compact JSON. Nothing in it
is secret (it names ids); what the signature gives is that nobody can make or change one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECRET_FILE = "web-secret"
PURPOSES = ("gallery", "editor")


class BadLink(Exception):
    """A link that is forged, damaged or expired; ``expired`` tells which, for the page."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Link:
    purpose: str
    """"gallery" or "editor"."""
    user: str
    """The Discord user id the link was made for."""
    scope: str
    """The API token's scope (:func:`imagine.limits.token_scope`) whose jobs it shows."""
    expires: float
    """Epoch seconds."""
    job: str = ""
    """For an editor: the buttonMessageId of the image to vary."""
    guild: str = ""
    channel: str = ""
    message: str = ""
    """For an editor: the Discord message the result replies to."""

    @property
    def owner(self) -> str:
        """The jobs' owner this link may see (see :func:`imagine.limits.owner_of`)."""
        return f"{self.scope}:{self.user}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the web secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"imagine-web-links\0" + secret).digest()

    def mac(self, *parts: str) -> str:
        """A tag of ``parts`` under this key (also the CSRF tokens)."""
        message = "\0".join(parts).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def sign(self, link: Link) -> str:
        fields = {k: v for k, v in asdict(link).items() if v != ""}
        fields["expires"] = int(link.expires)
        payload = _b64(json.dumps(fields, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self.mac('link', payload)}"

    def verify(self, token: str, purpose: str, now: float | None = None) -> Link:
        """The link ``token`` carries, if it is this key's, for ``purpose``, and still valid."""
        payload, dot, signature = token.partition(".")
        if (
            not dot
            or len(token) > 2000
            or not hmac.compare_digest(signature.encode(), self.mac("link", payload).encode())
        ):
            raise BadLink("It was changed, cut short, or never issued.")
        try:
            fields: dict[str, Any] = json.loads(_unb64(payload))
            expires = float(fields.pop("expires"))
            link = Link(expires=expires, **{k: str(v) for k, v in fields.items()})
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise BadLink("It was changed, cut short, or never issued.") from None
        if link.purpose != purpose:
            raise BadLink(f"It opens a {link.purpose}, not this page.")
        if link.expires < (time.time() if now is None else now):
            raise BadLink(
                "Links to these pages work for a limited time, and this one's is over.",
                expired=True,
            )
        return link


def load_secret(configured: str, data_dir: Path) -> bytes:
    """IMAGINE_WEB_SECRET, else the secret in the data folder (made on the first start). Several
    processes sharing a database must share the setting: each folder would have its own."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError:
        log.warning("%s is not a hex secret: making a new one (older links stop working)", path)
    secret = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # created readable by its owner only, and written whole before anyone can read it
    temp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secret.hex())
    try:
        os.link(temp, path)  # a second process starting at once keeps the first one's
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    finally:
        temp.unlink()
    log.info("made a secret for the web pages' links in %s", path)
    return secret
