"""Shared fixtures: an offline guard, a session-scoped Prefect harness and paths.

The guard makes any connection to a non-loopback address fail, so no test can reach
a real model endpoint or the web by accident (live tests are marked `live` and
deselected by default).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("LANCEDB_LOG", "error")

# Import Prefect now, while stderr is the session's stream: its console log handler
# keeps the stream it first sees, and a test's capsys stream is closed afterwards.
from prefect.logging.configuration import setup_logging  # noqa: E402

setup_logging()

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
DEMO_CASSETTE = REPO / "configs" / "demo" / "cassette"

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    if isinstance(address, tuple) and address:
        host = str(address[0])
        return host in _LOOPBACK or host.startswith("127.")
    return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _allowed(address):
        raise ConnectionRefusedError(
            f"tests are offline: refused connection to {address!r}"
        )
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _allowed(address):
        raise ConnectionRefusedError(
            f"tests are offline: refused connection to {address!r}"
        )
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _offline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but loopback, except in live tests."""
    if request.node.get_closest_marker("live"):
        return
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs started by tests record their output dir here, not in the user's home."""
    monkeypatch.setenv(
        "AGENTSKILLER_STATE_DIR", str(tmp_path_factory.mktemp("user-state"))
    )


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for the whole session (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite golden files (rendered prompts) instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def ancestor_kinds(store, target: str) -> set[str]:
    """Artifact kinds in the ancestry of an output file, asserting no gap."""
    from tasks.store import lineage

    [ref] = lineage.resolve(store, target)
    kinds: set[str] = set()
    stack = [lineage.ancestry(store, ref)]
    while stack:
        node = stack.pop()
        assert not node.missing, f"broken lineage at {node.ref}"
        kinds.add(node.ref.kind)
        stack.extend(node.children)
    return kinds


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3-compatible server (moto's) on 127.0.0.1 for the whole session."""
    from tests.s3_server import moto_s3

    with moto_s3(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint, tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's S3 server, with the `AWS_*` variables of
    this test pointing at it; returns the bucket name."""
    from tests.s3_server import create_bucket, s3_env

    for name, value in s3_env(s3_endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{tmp_path.name.lower().replace('_', '-')[-40:].strip('-')}"
    create_bucket(s3_endpoint, bucket)
    return bucket


@pytest.fixture(scope="session")
def demo_world(prefect_harness, tmp_path_factory) -> Path:
    """The demo world run once (s01-s17, `both` mode) for the whole session: its
    output folder, with queries, validated tasks, servers and policies. Shared by
    every test that asks for it, so treat it as read-only (copy it to change it)."""
    from flows.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("demo-world")
    report = run_pipeline(config_path=str(DEMO_CONFIG), output_dir=str(out))
    assert report.status == "ok", report
    return out
