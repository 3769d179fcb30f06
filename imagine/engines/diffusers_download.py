"""A model's first download, said in the log with its size and shown with a progress bar; and
the identity of a model's files, which names the OpenVINO exports made from them."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from huggingface_hub import HfApi, try_to_load_from_cache

log = logging.getLogger(__name__)

WEIGHTS = (".safetensors", ".bin", ".onnx", ".ckpt")


def _is_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or Path(model).is_dir()


def _size(model: str) -> str:
    """About how much a download of ``model`` is: its safetensors, less fp16 variants, when
    the Hub says; "" when it cannot say."""
    try:
        info = HfApi().model_info(model, files_metadata=True, timeout=10)
    except Exception:
        log.debug("the size of %s could not be read", model, exc_info=True)
        return ""
    total = sum(
        file.size or 0
        for file in info.siblings or ()
        if file.rfilename.endswith(".safetensors") and ".fp16." not in file.rfilename
    )
    return f"about {total / 1e9:.1f} GB" if total else ""


def download_once(model: str) -> None:
    """Download ``model`` (a Hub id) into the Hugging Face cache unless it is there, with
    huggingface_hub's progress bars on stderr; diffusers picks the files the pipeline needs.

    Failures are left to the loading that follows, which says them in one sentence.
    """
    try:
        if isinstance(try_to_load_from_cache(model, "model_index.json"), str):
            return
    except ValueError:  # not a repository id: loading says so
        return
    from diffusers import DiffusionPipeline

    size = _size(model)
    log.warning(
        "downloading the model %s%s into the Hugging Face cache; this happens once, "
        "and later starts load it from the cache",
        model,
        f" ({size})" if size else "",
    )
    try:
        DiffusionPipeline.download(model)
    except Exception:
        log.warning("the download of %s failed", model, exc_info=True)
        return
    log.info("downloaded %s", model)


def _files(folder: Path) -> list[tuple[str, int, int]]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (path.suffix in WEIGHTS or path.name.endswith("config.json")):
            stat = path.stat()
            found.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return found


def identity(model: str) -> str:
    """A short hash of what the weights of ``model`` are: a folder's files with their sizes and
    times, or the Hub snapshot (its commit) in the cache, so an export made from other weights
    is never reused."""
    if _is_path(model):
        folder = Path(model).expanduser().resolve()
        part: list[object] = [str(folder), _files(folder)]
    else:
        try:
            index = try_to_load_from_cache(model, "model_index.json")
            if not isinstance(index, str):
                index = try_to_load_from_cache(model, "config.json")  # a TAESD: no index
        except ValueError:
            index = None
        part = [model, str(Path(index).parent) if isinstance(index, str) else ""]
    return hashlib.sha256(json.dumps(part).encode()).hexdigest()[:16]


__all__ = ["download_once", "identity"]
