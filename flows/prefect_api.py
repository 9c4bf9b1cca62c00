"""The Prefect API a run reports to: the user's server, or a temporary one we own.

Input: the process environment and Prefect's settings (`PREFECT_API_URL`,
`PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`). Output: `prefect_api()`, a
context manager that yields the API URL the run should use, and
`PrefectUnavailable`, whose message is one paragraph saying what to do. Side
effects: when no API is configured, a temporary Prefect API server is started as a
child process on 127.0.0.1 and stopped when the context exits.

Why not Prefect's own temporary server: it waits only 20 s by default (a busy
2-core machine needs up to 85 s), it counts only its sleeps towards that limit,
and it runs in the terminal's process group, so Ctrl-C kills it while the run still
needs it to record the interruption (the client then retries for minutes). Ours
gets a generous start-up window, lives in its own session (terminal signals reach
only the run, which stops it in order), and dies with its parent if the run is
killed outright (a parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import httpx

DEFAULT_STARTUP_TIMEOUT_S = 180.0
TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
_PREFECT_DEFAULT_TIMEOUT_S = 20
_HEALTH_TIMEOUT_S = 5.0
_STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1


class PrefectUnavailable(RuntimeError):
    """No Prefect API could be started or reached; the message says what to do."""


def _advice(timeout_s: float) -> str:
    return (
        "The pipeline records its runs in a Prefect API. Either start one yourself "
        "and point the pipeline at it (`prefect server start --host 127.0.0.1 "
        "--port 4200 &` then `export PREFECT_API_URL=http://127.0.0.1:4200/api`), "
        "or give the temporary server more time on a busy machine (`export "
        f"{TIMEOUT_VARIABLE}={int(max(timeout_s, 60) * 2)}`). Nothing was run; "
        "items finished by earlier runs are kept."
    )


def configured_api_url() -> str | None:
    """The API URL from the environment or the active Prefect profile, if any."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def startup_timeout_s(env: Mapping[str, str]) -> float:
    """The start-up window: the user's setting when given, else a generous one."""
    raw = env.get(TIMEOUT_VARIABLE)
    if raw:
        try:
            return float(raw)
        except ValueError:
            raise PrefectUnavailable(
                f"{TIMEOUT_VARIABLE}={raw!r} is not a number of seconds."
            ) from None
    from prefect.settings import get_current_settings

    profile = get_current_settings().server.ephemeral.startup_timeout_seconds
    if profile != _PREFECT_DEFAULT_TIMEOUT_S:
        return float(profile)
    return DEFAULT_STARTUP_TIMEOUT_S


def check_reachable(url: str) -> None:
    """Raise `PrefectUnavailable` unless the API at `url` answers its health check."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=_HEALTH_TIMEOUT_S)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise PrefectUnavailable(
            f"PREFECT_API_URL is {url}, but no Prefect API answers there "
            f"({type(exc).__name__}: {exc}). Start it with `prefect server start`, "
            "correct PREFECT_API_URL, or unset it so that agentskiller starts a "
            "temporary server for the run. Nothing was run; items finished by "
            "earlier runs are kept."
        ) from exc


@contextlib.contextmanager
def prefect_api(
    env: Mapping[str, str] | None = None,
    *,
    on_force: Callable[[Callable[[], None]], None] | None = None,
) -> Iterator[str]:
    """Yield the URL of a Prefect API for one run, starting one if none is set.

    Args:
        env: The environment to read the timeout from (default: the process's).
        on_force: Registers a callback for a forced exit (`InterruptGuard.on_force`),
            which then stops the temporary server too.

    Yields:
        The API URL; for the duration of the context Prefect uses it.

    Raises:
        PrefectUnavailable: The configured API does not answer, or a temporary
            server did not come up within the start-up window.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = os.environ if env is None else env
    configured = configured_api_url()
    if configured:
        check_reachable(configured)
        yield configured
        return
    timeout_s = startup_timeout_s(env)
    with _temporary_server(timeout_s, on_force) as url:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url


@contextlib.contextmanager
def _temporary_server(
    timeout_s: float, on_force: Callable[[Callable[[], None]], None] | None
) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    with tempfile.TemporaryFile(mode="w+b") as log:
        process = subprocess.Popen(
            _server_argv(port),
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        if on_force is not None:
            on_force(lambda: _stop(process))
        try:
            _await_health(process, url, timeout_s, log)
            yield url
            _drain_prefect_clients()
        finally:
            _stop(process)


def _drain_prefect_clients() -> None:
    """Send Prefect's queued logs and events while the server still listens;
    otherwise they are retried against a stopped server for minutes at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=_STOP_GRACE_S * 2)


def _server_argv(port: int) -> list[str]:
    import prefect

    # The same application Prefect's own temporary server runs (API only, no UI).
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(Path(prefect.__file__).resolve().parent.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update(
        {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    return env


def _await_health(
    process: subprocess.Popen[bytes], url: str, timeout_s: float, log: IO[bytes]
) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=_HEALTH_TIMEOUT_S) as client:
        while True:
            code = process.poll()
            if code is not None:
                raise PrefectUnavailable(
                    f"The temporary Prefect API server exited with code {code} "
                    f"before it answered ({_tail(log)}). {_advice(timeout_s)}"
                )
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise PrefectUnavailable(
                    f"The temporary Prefect API server did not answer within "
                    f"{timeout_s:g} s ({TIMEOUT_VARIABLE}). {_advice(timeout_s)}"
                )
            time.sleep(0.2)


def _tail(log: IO[bytes], chars: int = 400) -> str:
    log.seek(0)
    text = log.read().decode("utf-8", errors="replace").strip()
    return text[-chars:] if text else "it printed nothing"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:
        # the server may have left children in its group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
