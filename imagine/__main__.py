"""``python -m imagine serve`` runs the API; ``python -m imagine generate PROMPT -o grid.webp`` renders once."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from dotenv import load_dotenv

from imagine import actions, images
from imagine.engines import create_engine
from imagine.engines.base import EngineError, EngineUnavailable
from imagine.fetch import FetchError, fetch_bytes, guarded_session
from imagine.prompt import PromptError, image_strength, parse, tile_seeds
from imagine.server import ConfigError, start_service
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
    engine = create_engine(settings)
    await engine.start()
    try:
        prompt = parse(prompt_text)[0]
        context = actions.Settings(
            engine.capabilities, dict(settings.models), settings.model or None
        )
        seeds = tile_seeds(prompt, count=4)
        request = actions.generation(prompt, context, seeds)
        if prompt.image_urls:
            async with guarded_session(
                settings.allow_private_urls, settings.fetch_timeout
            ) as session:
                sources = [
                    images.decode(
                        await fetch_bytes(
                            session,
                            url,
                            max_bytes=settings.max_image_bytes,
                            policy=settings.url_policy,
                        )
                    )
                    for url in prompt.image_urls
                ]
            request = actions.generation(
                prompt,
                context,
                seeds,
                init=images.blend(sources, (request.width, request.height)),
                strength=image_strength(prompt),
            )

        def progress(fraction: float, preview: object = None) -> None:
            print(f"\r{int(fraction * 100):3d}%", end="", file=sys.stderr, flush=True)

        tiles = await engine.generate(request, progress)
        print(file=sys.stderr)
        grid = images.compose_grid(tiles)
        output.parent.mkdir(parents=True, exist_ok=True)
        grid.save(output)
        print(f"{output} ({grid.width}x{grid.height}, seeds {', '.join(map(str, seeds))})")
    finally:
        await engine.close()


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
    except (PromptError, FetchError, EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
