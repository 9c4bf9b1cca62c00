"""A real Prefect server, work pools and process workers for the work-pool tests.

`Cluster` starts `prefect server start` on 127.0.0.1 (own PREFECT_HOME) and any
process it is asked to (workers, runs), each in its own process group with its
output in a log file; `stop()` ends them all by process group, SIGTERM then SIGKILL
after a timeout (process workers ignore SIGTERM for a long time). `deploy_items`
deploys prefect.yaml's item-batch deployment onto a pool under another name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop a child and its process group: SIGTERM, then SIGKILL after grace_s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(root / "prefect-home"),
            "PREFECT_API_URL": self.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "AGENTSKILLER_HOME": str(REPO),
        }
        self.port = port
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        self.logs.append(log)
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def prefect(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(BIN / "prefect"), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"prefect {' '.join(args)}: {done.stdout}{done.stderr}"
            )
        return done

    def await_health(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            time.sleep(0.5)
        raise AssertionError(f"prefect server did not answer at {self.url}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_group(process)

    def start_server(self) -> None:
        """Start the Prefect server and wait until it answers."""
        self.start(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
            + ["--port", str(self.port)],
        )
        self.await_health()

    def start_worker(self, pool: str, name: str, **env: str) -> subprocess.Popen:
        """A process worker of `pool` named `name` (also its agentskiller name)."""
        return self.start(
            name,
            [str(BIN / "prefect"), "worker", "start", "--pool", pool]
            + ["--type", "process", "--name", name],
            **{"AGENTSKILLER_WORKER_NAME": name, **env},
        )

    def deploy_items(self, pool: str, name: str, folder: Path) -> None:
        """Create process pool `pool` and deploy the item-batch deployment of
        prefect.yaml onto it as `agentskiller-items/<name>`."""
        self.prefect("work-pool", "create", pool, "--type", "process")
        spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
        [items] = [d for d in spec["deployments"] if d["name"] == "items"]
        items |= {"name": name, "work_pool": {"name": pool}}
        path = folder / f"prefect-{name}.yaml"
        path.write_text(yaml.safe_dump({**spec, "deployments": [items]}))
        self.prefect("deploy", "--prefect-file", str(path), "--name", name)
