"""``python -m imagine serve`` runs the API; ``python -m imagine generate PROMPT -o grid.webp`` renders once."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from pathlib import Path

from dotenv import load_dotenv
from PIL import Image

from imagine.app import running_service
from imagine.engines import create_engine
from imagine.engines.base import EngineUnavailable
from imagine.server import ConfigError, start_service
from imagine.service import ServiceError
from imagine.settings import Settings, SettingsError
from imagine.store import StoreError

log = logging.getLogger("imagine")


async def serve(settings: Settings) -> None:
    service = await start_service(settings)
    print(f"Imagine API on {service.url} (engine: {settings.engine}); Ctrl+C stops it.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await service.stop()


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
            grid = service.runner.job_dir(job.id) / stored.result["images"]["grid"]
            with Image.open(grid) as image:
                output.parent.mkdir(parents=True, exist_ok=True)
                image.save(output)
                size = image.size
    print(f"{output} ({size[0]}x{size[1]}, seeds {', '.join(map(str, done['seeds']))})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imagine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the Imagine API server")
    run.add_argument("--host", help="address to listen on (default IMAGINE_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (default IMAGINE_PORT or 8080)")
    gen = sub.add_parser("generate", help="render one prompt to a grid image, no server")
    gen.add_argument("prompt")
    gen.add_argument("-o", "--output", type=Path, default=Path("grid.webp"))
    gen.add_argument("--engine", help="engine name (default IMAGINE_ENGINE)")
    gen.add_argument("--model", help="model (default IMAGINE_MODEL)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    load_dotenv()
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            settings = settings.with_(
                host=args.host or settings.host,
                port=settings.port if args.port is None else args.port,
            )
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(settings))
            return 0
        settings = settings.with_(
            engine=args.engine or settings.engine, model=args.model or settings.model
        )
        asyncio.run(generate(settings, args.prompt, args.output))
        return 0
    except (SettingsError, ConfigError, EngineUnavailable, StoreError) as exc:
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
