"""A real S3-compatible endpoint for tests: moto's standalone server on 127.0.0.1.

`moto_s3()` starts `python -m moto.server` on a free loopback port as a child
process, waits until it accepts connections, yields its endpoint URL and at the end
stops it by process id (SIGTERM, then SIGKILL after a timeout). `s3_env()` is the
environment a client needs to reach it: the standard `AWS_*` variables, with the
user's own AWS configuration files hidden. `read_only_user()` sets up a bucket and
credentials that may only read it, on a server that enforces IAM.
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


def _listening(port: int) -> bool:
    # A TCP connection, not an HTTP request: with auth enabled moto counts every
    # request against its unauthenticated allowance.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def moto_s3(log_dir: Path, *, auth_after: int | None = None) -> Iterator[str]:
    """Run moto's S3 server for the duration of the block.

    Args:
        log_dir: Where the server's output goes (`moto-server.log`).
        auth_after: Enforce IAM credentials and policies after this many
            unauthenticated requests (moto's `INITIAL_NO_AUTH_ACTION_COUNT`);
            None accepts every request.

    Yields:
        The endpoint, `http://127.0.0.1:<port>`.
    """
    port = free_port()
    env = dict(os.environ)
    if auth_after is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_after)
    log = (log_dir / "moto-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(port):
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


READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": "*",
        }
    ],
}
SETUP_REQUESTS = 4
"""Unauthenticated requests `read_only_user` makes (bucket, user, policy, key)."""


def read_only_user(endpoint: str, bucket: str) -> tuple[str, str]:
    """Create `bucket` and an IAM user that may only read it, on a server started
    with `auth_after=SETUP_REQUESTS`; returns the user's access key and secret."""
    import json

    import boto3

    settings = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
    }
    boto3.client("s3", **settings).create_bucket(Bucket=bucket)
    iam = boto3.client("iam", **settings)
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read-only",
        PolicyDocument=json.dumps(READ_ONLY_POLICY),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
