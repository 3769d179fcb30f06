"""``python -m imagine serve`` runs the API and its workers (``--workers 0``: the API alone);
``python -m imagine worker`` runs workers alone, beside a GPU; ``python -m imagine migrate``
brings the job database's schema up to date; ``python -m imagine generate PROMPT -o grid.webp``
renders once."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from PIL import Image

from imagine import logs
from imagine.app import running_service
from imagine.engines import create_engine
from imagine.engines.base import EngineUnavailable
from imagine.previews import image_key
from imagine.server import ConfigError, start_service
from imagine.service import ServiceError
from imagine.settings import Settings, SettingsError
from imagine.storage import StorageError
from imagine.store import StoreError, describe, open_store

log = logging.getLogger("imagine")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; then take no new work, give running jobs
    IMAGINE_SHUTDOWN_GRACE seconds to finish (the rest go back to the queue), and return. A
    signal during start-up (migrations, a model loading) stops it as soon as it has started."""
    stop = _stop_on_signals()
    service = await start_service(settings)
    workers = "no workers" if settings.workers == 0 else f"engine: {settings.engine}"
    print(f"Imagine API on {service.url} ({workers}); Ctrl+C stops it.", flush=True)
    try:
        await stop.wait()
        log.info("stopping: new jobs are refused")
        await service.drain(settings.shutdown_grace)
    finally:
        await service.stop()
    log.info("stopped")


async def work(settings: Settings) -> None:
    """Render workers alone (no HTTP) until SIGTERM or SIGINT, like ``serve``'s stop."""
    if not settings.public_url:
        log.warning(
            "IMAGINE_PUBLIC_URL is not set: the image links in this worker's webhooks point at "
            "%s, where no API listens; set it to the API's address",
            settings.base_url,
        )
    stop = _stop_on_signals()
    engine = create_engine(settings)
    async with running_service(settings, engine) as service:
        print(
            f"Imagine worker: {service.workers} worker(s), engine {engine.capabilities.name}, "
            f"jobs from {describe(settings)}; Ctrl+C stops it.",
            flush=True,
        )
        await stop.wait()
        log.info("stopping: no new jobs are taken")
        await service.drain(settings.shutdown_grace)
    log.info("stopped")


async def migrate(settings: Settings) -> None:
    store = await open_store(settings, migrate=True)
    await store.close()
    print(f"The job database {describe(settings)} is up to date.", flush=True)


async def generate(settings: Settings, prompt_text: str, output: Path) -> None:
    """One imagine job through the real service (store, queue, engine), with no HTTP server."""
    with tempfile.TemporaryDirectory(prefix="imagine-") as data:
        settings = settings.with_(data_dir=Path(data))
        async with running_service(settings, create_engine(settings)) as service:
            [job, *_] = await service.imagine(prompt_text)
            while (state := await service.message(job.id))["progress"] != 100:
                print(f"\r{state['progress']:3d}%", end="", file=sys.stderr, flush=True)
                await asyncio.sleep(0.1)
            print(file=sys.stderr)
            done = state["response"]
            if done["status"] != "done":
                raise ServiceError(500, None, f"{done['content']}: {done.get('error', '')}")
            stored = await service.store.get(job.id)
            assert stored is not None
            grid = await service.storage.get(image_key(job.id, stored.result["images"]["grid"]))
            assert grid is not None
            with Image.open(io.BytesIO(grid)) as image:
                output.parent.mkdir(parents=True, exist_ok=True)
                image.save(output)
                size = image.size
    print(f"{output} ({size[0]}x{size[1]}, seeds {', '.join(map(str, done['seeds']))})")


EXIT_WAIT = 5.0
"""Seconds a render thread still busy at exit may take before the process leaves without it."""


def run_until_done(main: Coroutine[Any, Any, None]) -> None:
    """Like asyncio.run, except that an engine thread still busy at the end (mid-step after its
    job was stopped, or hung) cannot keep a stopped service alive: after EXIT_WAIT it exits."""
    executor = ThreadPoolExecutor(thread_name_prefix="imagine")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_default_executor(executor)
    try:
        loop.run_until_complete(main)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()  # shuts the executor down without waiting for it
    joiner = threading.Thread(target=executor.shutdown, daemon=True)
    joiner.start()
    joiner.join(EXIT_WAIT)
    if joiner.is_alive():
        log.warning("an engine thread is still busy after %.0f s; exiting without it", EXIT_WAIT)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)


def _workers(count: int, command: str) -> int:
    low = 1 if command == "worker" else 0
    if not low <= count <= 64:
        raise SettingsError(f"--workers must be between {low} and 64, got {count}.")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imagine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the Imagine API server")
    run.add_argument("--host", help="address to listen on (default IMAGINE_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default IMAGINE_PORT or 8080)")
    run.add_argument(
        "--workers",
        type=int,
        help="render workers in this process (default IMAGINE_MAX_CONCURRENT; 0 = the API alone)",
    )
    worker = sub.add_parser("worker", help="run render workers only (no API), for a GPU box")
    worker.add_argument(
        "--workers", type=int, help="render workers (default IMAGINE_MAX_CONCURRENT)"
    )
    sub.add_parser("migrate", help="bring the job database's schema up to date, then exit")
    gen = sub.add_parser("generate", help="render one prompt to a grid image, no server")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", type=Path, default=Path("grid.webp"))
    gen.add_argument("--engine", help="engine name (default IMAGINE_ENGINE)")
    gen.add_argument("--model", help="model (default IMAGINE_MODEL)")
    args = parser.parse_args(argv)
    logs.configure()
    load_dotenv()
    try:
        settings = Settings.from_env()
        if args.command in ("serve", "worker") and args.workers is not None:
            settings = settings.with_(workers=_workers(args.workers, args.command))
        if args.command == "serve":
            settings = settings.with_(
                host=args.host or settings.host,
                port=settings.port if args.port is None else args.port,
            )
            # Ctrl+C before the signal handlers are in place
            with contextlib.suppress(KeyboardInterrupt):
                run_until_done(serve(settings))
            return 0
        if args.command == "worker":
            with contextlib.suppress(KeyboardInterrupt):
                run_until_done(work(settings))
            return 0
        if args.command == "migrate":
            asyncio.run(migrate(settings))
            return 0
        settings = settings.with_(
            engine=args.engine or settings.engine, model=args.model or settings.model
        )
        asyncio.run(generate(settings, args.prompt, args.output))
        return 0
    except (SettingsError, ConfigError, EngineUnavailable, StoreError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
