"""Fixtures of the runtime tests: the DentalAppointments environment loaded from
the hand-written fixture directory, its spec, a scratch copy of the directory for
tests that alter files, the fixture server running over streamable HTTP on a
loopback port (a real `python -m tasks.runtime.serve` process), and a skip unless
the sandbox drops privileges."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.environment import EnvironmentSpec
from tasks.runtime.environment import Environment
from tasks.runtime.sandbox import sandbox_capabilities
from tasks.runtime.serve import load_environment
from tests.runtime import FIXTURE_DIR, REPO, SERVER, SIMULATION_TIME, serve_arguments

LOOPBACK = "127.0.0.1"
SERVER_START_TIMEOUT = 60.0
"""Seconds a server process may take to listen (a loaded 2-core machine is slow)."""


@pytest.fixture
def environment() -> Environment:
    """A fresh DentalAppointments environment (its own sessions, crashes, ...)."""
    return load_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME)


@pytest.fixture
def spec(environment: Environment) -> EnvironmentSpec:
    """The DentalAppointments spec."""
    return environment.spec


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture output directory."""
    target = tmp_path / "outputs"
    shutil.copytree(FIXTURE_DIR, target)
    return target


@pytest.fixture(scope="module")
def http_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MCP endpoint of the fixture server served over streamable HTTP by its
    own process, e.g. "http://127.0.0.1:PORT/mcp"; killed after the module."""
    port = _free_port()
    log = tmp_path_factory.mktemp("http-server") / "stderr.txt"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, *serve_arguments("http", "--port", str(port))],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait_until_listening(process, port, log)
        yield f"http://{LOOPBACK}:{port}/mcp"
    finally:
        process.kill()
        process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _wait_until_listening(
    process: subprocess.Popen[bytes], port: int, log: Path
) -> None:
    # Between connection attempts, wait on the process itself: a server that dies
    # ends the wait at once, and the deadline bounds a server that never listens.
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOOPBACK, port), timeout=5).close()
            return
        except ConnectionRefusedError:
            pass
        try:
            status = process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"the server exited with {status}: {log.read_text()}")
    raise TimeoutError(f"the server did not listen on port {port}: {log.read_text()}")


@pytest.fixture
def dropped_privileges() -> None:
    """Skip unless the program runs as an unprivileged uid (root with setpriv)."""
    if not sandbox_capabilities()["drop_privileges"]:
        pytest.skip("needs root with setpriv to run the program as another uid")
