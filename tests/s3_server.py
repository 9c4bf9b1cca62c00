"""A real S3-compatible endpoint for tests: moto's standalone server on 127.0.0.1.

`moto_s3()` starts `python -m moto.server` on a free loopback port as a child
process, waits until it answers HTTP, yields its endpoint URL and at the end stops
it by process id (SIGTERM, then SIGKILL after a timeout). `s3_env()` is the
environment a client needs to reach it: the standard `AWS_*` variables, with the
user's own AWS configuration files hidden.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


@contextlib.contextmanager
def moto_s3(log_dir: Path) -> Iterator[str]:
    """Run moto's S3 server for the duration of the block.

    Args:
        log_dir: Where the server's output goes (`moto-server.log`).

    Yields:
        The endpoint, `http://127.0.0.1:<port>`.
    """
    port = free_port()
    log = (log_dir / "moto-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if server.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with {server.returncode}; see {log.name}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer on port {port}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=STOP_TIMEOUT_S)


def s3_env(endpoint: str, home: Path) -> dict[str, str]:
    """The variables that point S3 clients (s3fs, botocore, LanceDB) at `endpoint`."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
    }


def create_bucket(endpoint: str, name: str) -> None:
    """Create a bucket through the S3 API (a PUT on `/<name>`)."""
    host, _, port = endpoint.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("PUT", f"/{name}")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"creating bucket {name} gave HTTP {response.status}")
    finally:
        connection.close()
