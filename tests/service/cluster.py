"""The distributed service as real processes on loopback: a moto S3 server, API instances
(``serve --workers 0``) and render workers (``worker``), each a subprocess whose output goes to a
file of its own, shown when the test fails.

Distinct 127.0.0.x addresses stand in for separate hosts. Every process is SIGKILLed at the end,
whatever happened. A process killed on purpose is not reaped until :meth:`Proc.reap`: until then
its pid still exists (a zombie), so the other workers cannot tell it is gone from the pid and
must wait for its lease to run out, as they would for a worker on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_REGION": "us-east-1"}  # fmt: skip
START_TIMEOUT = 30.0


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _clean_environ() -> dict[str, str]:
    """This process's environment without any IMAGINE_* or AWS_* setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_"))}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    """``http://host:port`` of an API instance or of the S3 server."""
    killed: bool = False
    once: bool = False
    """A command that ends by itself (``migrate``), not a server."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> int | None:
        """Its exit status, or None while it runs (never asked of a killed one: that reaps it)."""
        return None if self.killed else self.popen.poll()

    def kill(self) -> None:
        """SIGKILL, not reaped (see the module's docstring)."""
        self.killed = True
        self._signal()

    def _signal(self) -> None:
        if self.popen.returncode is None:  # not reaped yet, so the pid is still this process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)

    def reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def tail(self, chars: int = 4000) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return text if len(text) <= chars else "…" + text[-chars:]


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    """Settings every imagine process gets."""
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], **env: str) -> Proc:
        log = self.folder / f"{name}.log"
        workdir = self.folder / name
        workdir.mkdir(parents=True, exist_ok=True)  # no .env of the developer's is read
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                argv, cwd=workdir, env={**_clean_environ(), **self.env, **env},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def imagine(self, name: str, *args: str, **env: str) -> Proc:
        return self.spawn(name, [sys.executable, "-m", "imagine", *args], **env)

    async def run(self, name: str, *args: str, timeout: float = 60.0) -> None:
        """``python -m imagine ARGS`` to its end; it must succeed."""
        proc = self.imagine(name, *args)
        proc.once = True
        deadline = time.monotonic() + timeout
        while (code := proc.exited()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} still runs after {timeout:.0f} s:\n{proc.tail()}")
            await asyncio.sleep(0.05)
        assert code == 0, f"{name} exited with {code}:\n{proc.tail()}"

    async def api(self, name: str, host: str, **env: str) -> Proc:
        """An API instance alone (no workers) on ``host``; returns once /health answers."""
        port = free_port(host)
        proc = self.imagine(
            name, "serve", "--workers", "0", IMAGINE_HOST=host, IMAGINE_PORT=str(port),
            IMAGINE_DATA_DIR=str(self.folder / name / "data"), **env,
        )  # fmt: skip
        proc.url = f"http://{host}:{port}"
        await self._until_up(proc, "/health")
        return proc

    def worker(self, name: str, **env: str) -> Proc:
        """A worker process (no HTTP) with a data folder of its own."""
        data = str(self.folder / name / "data")
        return self.imagine(name, "worker", IMAGINE_DATA_DIR=data, **env)

    async def s3(self, host: str) -> Proc:
        """moto's S3 server as a process of its own on ``host``."""
        port = free_port(host)
        argv = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
        proc = self.spawn("s3", argv)
        proc.url = f"http://{host}:{port}"
        await self._until_up(proc, "/")
        return proc

    async def _until_up(self, proc: Proc, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with asyncio.timeout(2):
                        async with session.get(proc.url + path) as response:
                            if response.status == 200:
                                return
                if (code := proc.exited()) is not None:
                    raise AssertionError(f"{proc.name} exited with {code}:\n{proc.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{proc.name} did not answer {path}:\n{proc.tail()}")
                await asyncio.sleep(0.05)

    def check_running(self) -> None:
        """Every process not killed on purpose still runs."""
        for proc in self.procs:
            if proc.once:
                continue
            if (code := proc.exited()) is not None:
                raise AssertionError(f"{proc.name} exited with {code}:\n{proc.tail()}")

    def report(self) -> str:
        return "\n".join(f"----- {p.name} (pid {p.pid}) -----\n{p.tail()}" for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            proc._signal()
        for proc in self.procs:
            proc.reap()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        if exc is not None:  # pytest shows a failed test's stdout
            print(f"\nThe processes' output:\n{self.report()}")


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_ENV["AWS_REGION"],
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def s3_object(endpoint: str, bucket: str, key: str) -> bytes:
    body: bytes = s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body
