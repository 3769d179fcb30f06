"""Helpers for the distributed-mode benchmarks: a throwaway PostgreSQL (tests/infra/postgres.py),
``python -m imagine`` processes that are up once they say so on stdout, and cleanup of both.

A benchmark runs its main through :func:`run` and holds a :class:`Fleet` in ``async with``: every
process it started is stopped on the way out (SIGTERM, then SIGKILL), also after an error, Ctrl+C
or SIGTERM to the benchmark; a process also gets SIGKILL if the benchmark itself is killed
(PR_SET_PDEATHSIG). A cluster left by a killed benchmark is removed by the next PgCluster start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.infra.postgres
from tests.infra.postgres import PgCluster

ROOT = Path(__file__).resolve().parent.parent

HOST_SHIM = (
    "import socket, sys; name = sys.argv.pop(1); socket.gethostname = lambda: name; "
    "from imagine.__main__ import main; sys.exit(main(sys.argv[1:]))"
)
"""Runs ``python -m imagine`` as if on the host ``name``. The store tells workers apart by host
name, and one machine has one: a dead pid on the reaper's own host is seen at its next look, a
job held on another host only once the lease runs out."""

_PR_SET_PDEATHSIG = 1


def progress(bench: str, message: str) -> None:
    print(f"[{bench} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def base_env(**extra: str) -> dict[str, str]:
    """The settings every benchmark pins (a .env in the checkout cannot change them)."""
    return {
        "IMAGINE_ENGINE": "placeholder",
        "IMAGINE_HOST": "127.0.0.1",
        "IMAGINE_API_TOKENS": "",
        "IMAGINE_WEBHOOK_URL": "",
        "IMAGINE_STORAGE_URL": "",
        "IMAGINE_RATE_PER_USER": "0",
        "IMAGINE_RATE_PER_TOKEN": "0",
        "IMAGINE_QUEUE_LIMIT": "1000000",
        "IMAGINE_MAX_JOBS_PER_USER": "1000000",
        "IMAGINE_SHUTDOWN_GRACE": "5",
        **extra,
    }


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name, self.process, self.log = name, process, log
        self.ready_line = ""
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


class Fleet:
    """The processes a benchmark starts; all stopped when its ``async with`` ends."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.children: list[Child] = []
        self._logs = tempfile.TemporaryDirectory(prefix=f"imagine-{bench}-logs-")

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.shield(self.stop_all())
        self._logs.cleanup()

    async def spawn(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        *,
        ready: str,
        host: str | None = None,
        timeout: float = 60.0,
    ) -> Child:
        """Start ``python -m imagine ARGS`` (as if on ``host``) and wait until a stdout line
        starts with ``ready``; its log (stderr) is kept in case it fails."""
        argv = ["-m", "imagine", *args] if host is None else ["-c", HOST_SHIM, host, *args]
        log = Path(self._logs.name) / f"{name}.log"
        with _log_file(log) as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *argv, cwd=ROOT, env={**os.environ, **env},
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=err,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        child = Child(name, process, log)
        self.children.append(child)
        assert process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                child.ready_line = await _line_starting(process.stdout, ready)
        except TimeoutError:
            child.ready_line = ""
        if not child.ready_line:
            why = "timed out" if process.returncode is None else f"exit {process.returncode}"
            raise RuntimeError(f"{name} did not start ({why}):\n{child.log_tail()}")
        child._drain = asyncio.create_task(_discard(process.stdout))
        return child

    async def stop(self, child: Child, timeout: float = 15.0) -> int:
        """SIGTERM (an orderly stop), SIGKILL after ``timeout``; the exit status."""
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
            try:
                async with asyncio.timeout(timeout):
                    await child.process.wait()
            except TimeoutError:
                progress(self.bench, f"{child.name} ignored SIGTERM for {timeout:.0f} s: SIGKILL")
                await self.kill(child)
        if child._drain is not None:
            child._drain.cancel()
        with contextlib.suppress(ValueError):
            self.children.remove(child)
        return child.process.returncode if child.process.returncode is not None else -9

    async def kill(self, child: Child) -> None:
        """SIGKILL, and reap it (a zombie's pid still answers kill(pid, 0))."""
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()
        await child.process.wait()

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(child) for child in list(self.children)))


def _log_file(path: Path) -> IO[bytes]:
    return open(path, "wb")


async def _line_starting(stream: asyncio.StreamReader, prefix: str) -> str:
    """The first line that starts with ``prefix``; "" if the stream ends first."""
    while line := (await stream.readline()).decode(errors="replace"):
        if line.startswith(prefix):
            return line.strip()
    return ""


def run(bench: str, main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run; SIGTERM and SIGHUP unwind it like Ctrl+C (its finally blocks run), and a
    benchmark stopped so exits quietly (143)."""

    async def guarded() -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, task.cancel)
        await main

    try:
        asyncio.run(guarded())
    except (asyncio.CancelledError, KeyboardInterrupt):
        progress(bench, "stopped; every process it started is stopped too")
        sys.exit(143)


async def _discard(stream: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(65536):
            pass


async def started_cluster(bench: str) -> PgCluster:
    """A fresh PostgreSQL on 127.0.0.1 (initdb and start take a few seconds, off the loop)."""
    try:
        cluster = PgCluster()
    except pytest.fail.Exception as exc:  # no initdb/postgres: the fixture's hint, no traceback
        raise SystemExit(f"[{bench}] {exc}") from None
    start = asyncio.ensure_future(asyncio.to_thread(cluster.start))
    try:
        await asyncio.shield(start)
    except BaseException:
        with contextlib.suppress(BaseException):
            await start  # a thread cannot be cut short: let it end, then stop what it started
        await asyncio.to_thread(cluster.close)
        raise
    progress(bench, f"PostgreSQL {cluster.url()} is up")
    return cluster


async def poll(check: Callable[[], Any], timeout: float, every: float = 0.01) -> Any:
    """Await ``check()`` every ``every`` seconds until it returns something true; that value."""
    async with asyncio.timeout(timeout):
        while not (value := await check()):
            await asyncio.sleep(every)
        return value


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far; 0 if it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / tick, sum(values[:8]) / tick
