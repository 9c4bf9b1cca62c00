"""Fixtures of the runtime tests: the DentalAppointments environment loaded from
the hand-written fixture directory, its spec, a scratch copy of the directory for
tests that alter files, the fixture server running over streamable HTTP on a
loopback port (a real `python -m tasks.runtime.serve` process), the demo world's
output through s09 (run once per session from its scripted cassette, offline),
the fused DentalAppointments_TreatmentBilling environment served from it by
`agentskiller serve-env` over streamable HTTP, a pool of the full demo world's
served environments for episodes, and a skip unless the sandbox drops
privileges."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from schemas.environment import EnvironmentSpec
from tasks.runtime.environment import Environment
from tasks.runtime.environment_pool import EnvironmentPool
from tasks.runtime.sandbox import sandbox_capabilities
from tasks.runtime.serve import load_environment
from tests.conftest import DEMO_CONFIG
from tests.runtime import (
    FIXTURE_DIR,
    FUSED,
    REPO,
    SERVER,
    SIMULATION_TIME,
    serve_arguments,
)

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
    log = tmp_path_factory.mktemp("http-server") / "stderr.txt"
    with _http_server(lambda port: serve_arguments("http", "--port", port), log) as url:
        yield url


@pytest.fixture(scope="session")
def demo_output(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo world's output directory after s09 (built servers:
    AccountServicing, CardServices, DentalAppointments, TreatmentBilling;
    FlightBooking has a blueprint and data but failed its build)."""
    from flows.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("demo-s09")
    report = run_pipeline(
        config_path=str(DEMO_CONFIG), output_dir=str(out), until="s09"
    )
    assert report.status == "ok"
    return out


@pytest.fixture(scope="module")
def fused_http_url(
    demo_output: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The MCP endpoint of `agentskiller serve-env DentalAppointments_TreatmentBilling
    --transport http` serving the demo output (a real process, sandboxed worker)."""
    log = tmp_path_factory.mktemp("fused-server") / "stderr.txt"

    def argv(port: str) -> list[str]:
        return [
            "-m",
            "flows.cli",
            "serve-env",
            FUSED,
            "--output-dir",
            str(demo_output),
            "--transport",
            "http",
            "--port",
            port,
        ]

    with _http_server(argv, log) as url:
        yield url


@contextmanager
def _http_server(argv, log: Path) -> Iterator[str]:
    """Run `python <argv(port)>` on a free loopback port until the block ends."""
    port = _free_port()
    arguments: Sequence[str] = argv(str(port))
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, *arguments],
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


@pytest.fixture(scope="session")
def episode_pool(demo_world: Path) -> Iterator[EnvironmentPool]:
    """Served environments of the demo world over stdio, shared by every episode
    test (one process per environment and overlay, a session per episode)."""
    with EnvironmentPool(demo_world) as pool:
        yield pool
