"""Throwaway PostgreSQL clusters on 127.0.0.1: trust auth, fsync off, a fresh temp folder and port each.

initdb and postgres refuse to run as root, so under root they run as the ``postgres`` user (else
``nobody``), otherwise as the current user. One initdb per test process serves as a template that
each cluster copies. Every folder records the test process's pid, and the next run stops the
servers and removes the folders that a killed test process left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, postgres) were not found: run `make system-deps` "
    "(or install PostgreSQL 13 or newer) to run the tests that need a database."
)
PREFIX = "imagine-pg-"
# synchronous_commit stays on: with fsync off it costs a write() per commit (no measurable time),
# and off would lose the last commits when a test SIGKILLs the server.
SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "300"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def find_bindir() -> Path:
    """Where initdb, postgres and psql are: Debian's highest version, else pg_config's, else PATH's."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        return Path(max(found, key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0))).parent
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        if (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return Path(initdb).parent


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as; None: this process's own (it is not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(
        "running as root, but there is no `postgres` or `nobody` user for PostgreSQL"
    )


def _as_user() -> dict[str, Any]:
    user = _server_user()
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _cluster_pids(data: Path) -> list[int]:
    """Processes working in the data folder: postgres and its children chdir there ([] without /proc)."""
    pids = []
    for entry in glob.glob("/proc/[0-9]*/cwd"):
        with contextlib.suppress(OSError):
            if os.readlink(entry) == str(data):
                pids.append(int(entry.split("/")[2]))
    return pids


def _ident(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _reap_stale() -> None:
    """Stop and remove the clusters of test processes that are gone (killed before their cleanup)."""
    for owner in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*", "owner.pid")):
        try:
            os.kill(int(Path(owner).read_text()), 0)
            continue  # that test process still runs
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        for pid in _cluster_pids(Path(owner).parent / "data"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(Path(owner).parent, ignore_errors=True)


def _new_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix=PREFIX)).resolve()
    (folder / "owner.pid").write_text(str(os.getpid()))
    if (user := _server_user()) is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    return folder


_template: Path | None = None
_template_lock = threading.Lock()


def _initdb_template(bindir: Path) -> Path:
    """initdb once per test process (about 1.5 s); a cluster copies the result in a fraction of that."""
    global _template
    with _template_lock:
        if _template is None:
            _reap_stale()
            folder = _new_folder()
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            argv = [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres"]
            argv += ["--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions"]
            done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, **_as_user())
            if done.returncode != 0:
                raise RuntimeError(
                    f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                )
            _template = folder / "data"
        return _template


class PgCluster:
    """A PostgreSQL server on 127.0.0.1 with a data folder of its own; superuser ``postgres``, no password."""

    host = "127.0.0.1"

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self.bindir = find_bindir()
        self.settings = {**SETTINGS, **(settings or {})}
        self.folder: Path | None = None
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._pauses: list[threading.Thread] = []

    @property
    def data(self) -> Path:
        assert self.folder is not None, "the cluster is not started"
        return self.folder / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def start(self, timeout: float = 30.0) -> None:
        """Make a fresh cluster on a free port and wait until it accepts connections."""
        template = _initdb_template(self.bindir)
        self.folder = _new_folder()
        shutil.copytree(template, self.data, symlinks=True)
        (self.folder / "sock").mkdir()
        if (user := _server_user()) is not None:
            for path in [self.folder / "sock", self.data, *self.data.rglob("*")]:
                os.lchown(path, user.pw_uid, user.pw_gid)
        for attempt in range(3):  # another process may take the port between the probe and the bind
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
            try:
                self.restart(timeout)
                break
            except RuntimeError:
                if attempt == 2:
                    raise

    def restart(self, timeout: float = 30.0) -> None:
        """Start the server (again) on the same port and data folder; returns once it takes connections."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
            argv += ["-h", self.host, "-k", str(self.data.parent / "sock")]
            for name, value in self.settings.items():
                argv += ["-c", f"{name}={value}"]
            with open(self.data.parent / "server.log", "ab") as log:
                self._proc = proc = subprocess.Popen(
                    argv, cwd=self.data, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, **_as_user(),
                )  # fmt: skip
            deadline = time.monotonic() + timeout
            while not self._ready(proc.pid):
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.kill(wait_for_port=False)  # it may be someone else's port
                    log_tail = (self.data.parent / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"PostgreSQL did not start on port {self.port}:\n{log_tail}")
                time.sleep(0.02)

    def _ready(self, pid: int) -> bool:
        # pg_ctl's test: line 8 of postmaster.pid says "ready" once the server accepts connections
        with contextlib.suppress(OSError):
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            return len(lines) >= 8 and lines[0] == str(pid) and lines[7].strip() == "ready"
        return False

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown: sessions are ended, the server checkpoints. SIGKILL if it takes too long."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout)
            self.kill()

    def kill(self, timeout: float = 30.0, *, wait_for_port: bool = True) -> None:
        """Crash it: SIGKILL the postmaster and its children; return once they and the port are gone."""
        with self._lock:
            if self._proc is None:
                return
            self._proc.kill()  # a no-op once it has exited
            self._proc.wait(timeout)
            deadline = time.monotonic() + timeout
            while (pids := _cluster_pids(self.data)) or (
                wait_for_port and not _port_free(self.port)
            ):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL processes {pids} or port {self.port} still busy"
                    )
                time.sleep(0.02)
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            for lock in (self.data.parent / "sock").glob(".s.PGSQL.*"):
                lock.unlink(missing_ok=True)
            self._proc = None

    def pause_for(self, seconds: float, *, crash: bool = False) -> threading.Thread:
        """Stop the server now (SIGKILL it with crash=True) and restart it from a thread after ``seconds``.

        Join the thread to wait for the restart; close() does so too."""
        if crash:
            self.kill()
        else:
            self.stop()

        def later() -> None:
            time.sleep(seconds)
            self.restart()

        thread = threading.Thread(target=later, name=f"pg-restart-{self.port}", daemon=True)
        self._pauses.append(thread)
        thread.start()
        return thread

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with psql (no event loop needed) and return its unaligned, tuples-only output."""
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-d", self.url(dbname), "-c", sql]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """Create the database and return its URL."""
        self.psql(f"CREATE DATABASE {_ident(name)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database, ending the sessions still connected to it."""
        self.psql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    def close(self) -> None:
        """Stop the server and remove its folder."""
        for thread in self._pauses:
            thread.join()
        self.stop()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> PgCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One cluster for the whole run, started when a test first asks for it. Do not stop it."""
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a fresh database ``t_<random>`` on the session's cluster, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture
def pg_own_cluster() -> Iterator[PgCluster]:
    """A cluster of the test's own, for tests that kill, stop, pause or restart the server."""
    with PgCluster() as cluster:
        yield cluster
