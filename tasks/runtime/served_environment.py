"""One served environment process and the persistent MCP client to it.

Input: a validated task and where to serve it from (`Launch`: output directory,
scratch folder, stdio or streamable HTTP, bind host). Output: a
`ServedEnvironment`: started in an event loop that outlives single calls (an
anyio blocking portal's), it runs the task's environment as a separate process
(`served_task.serve_command`: the runtime's server, the generated tool modules
only in its sandboxed worker), connects one MCP client, lists the tools, and
then answers tool calls and state reads for any named session until stopped. A
process that dies or stops answering turns every later request into
`EnvironmentLost`; one that cannot start is an `EnvironmentStartError` carrying
the end of its log. Side effects: the child process (and its worker), its log
and the task's overlay file in the scratch folder; `stop` ends the process.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
from collections.abc import AsyncIterator
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal
from mcp import Client
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult, Tool

from schemas.environment import DatabaseDiff
from schemas.validated_task import AgentTask
from tasks.runtime.golden_run import session_meta
from tasks.runtime.harness import PROJECT_ROOT
from tasks.runtime.mcp_exposure import STATE_DIFF_URI, STATE_HASH_URI
from tasks.runtime.served_task import (
    LaunchKey,
    ServeTransport,
    serve_command,
    stdio_server,
)

START_TIMEOUT_S = 120.0
# Longer than the server's own per-call deadline (it kills a stuck worker after
# 30 s and answers with an error), so only a server that stopped answering trips it.
REQUEST_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
_LOG_TAIL_BYTES = 2000


class EnvironmentLost(RuntimeError):
    """The environment's process died or stopped answering; the episode's
    session is gone with it."""


class EnvironmentStartError(RuntimeError):
    """The environment's process could not be started (it exited or never
    answered); the message carries the end of its log."""


def is_connection_loss(exc: BaseException) -> bool:
    """Whether an MCP client's request failed because its connection is gone
    (the server process died or the link broke), not because of the request."""
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(
        exc, OSError | EOFError | anyio.ClosedResourceError | anyio.BrokenResourceError
    )


@dataclass
class ServedEnvironment:
    """One running process of one launch and the pool's client to it.

    Attributes:
        key: What it serves.
        url: The streamable-HTTP endpoint (None over stdio).
        port: Its HTTP port (None over stdio).
        tools: The tools as the live server lists them.
        episodes: Episodes holding a session on it now.
        sessions: Episodes it has served in all.
        lost: Why the connection ended, once it has.
    """

    key: LaunchKey
    url: str | None = None
    port: int | None = None
    tools: tuple[Tool, ...] = ()
    episodes: int = 0
    sessions: int = 0
    lost: str | None = None
    client: Client | None = field(default=None, repr=False)
    _stop: anyio.Event | None = field(default=None, repr=False)
    _done: Future[Any] | None = field(default=None, repr=False)

    def start(self, portal: BlockingPortal, launch: Launch, task: AgentTask) -> None:
        """Start the process and connect (blocks until ready).

        Raises:
            EnvironmentStartError: If it cannot be started.
        """
        self._done, _ = portal.start_task(self.run, launch, task)

    def stop(self, portal: BlockingPortal) -> None:
        """Close the connection and end the process (blocks until done)."""
        if self._done is None or self._done.done():
            return
        if self._stop is not None:
            portal.call(self._stop.set)
        # A process that does not stop in time is left to its parent-death
        # signal (it fires when the portal's thread ends).
        with contextlib.suppress(TimeoutError, CancelledError):
            self._done.result(timeout=STOP_TIMEOUT_S)

    @property
    def write_tools(self) -> frozenset[str]:
        """The tools the server marks as writes (not read-only)."""
        return frozenset(
            t.name
            for t in self.tools
            if not (t.annotations and t.annotations.read_only_hint)
        )

    async def call_tool(
        self, session: str, name: str, arguments: dict[str, Any]
    ) -> CallToolResult:
        """Call a tool in a session.

        Raises:
            EnvironmentLost: If the process is gone or does not answer.
            MCPError: For any other protocol error of this request.
        """
        async with self._request("the tool call"):
            client = self._client()
            return await client.call_tool(name, arguments, meta=session_meta(session))

    async def state(self, session: str) -> tuple[str, DatabaseDiff]:
        """A session's state hash and diff against the base data, read from the
        server's state resources as any MCP client could.

        Raises:
            EnvironmentLost: If the process is gone, does not answer, or cannot
                read the state.
        """
        async with self._request("reading the session state"):
            client = self._client()
            meta = session_meta(session)
            digest = await client.read_resource(STATE_HASH_URI, meta=meta)
            diff = await client.read_resource(STATE_DIFF_URI, meta=meta)
        return (
            digest.contents[0].text,
            DatabaseDiff.model_validate_json(diff.contents[0].text),
        )

    def _client(self) -> Client:
        if self.lost is not None or self.client is None:
            raise EnvironmentLost(self._lost_message())
        return self.client

    def _lost_message(self) -> str:
        return f"the {self.key.environment} environment process is gone: {self.lost}"

    @contextlib.asynccontextmanager
    async def _request(self, what: str) -> AsyncIterator[None]:
        try:
            with anyio.fail_after(REQUEST_TIMEOUT_S):
                yield
        except TimeoutError as exc:
            self.lost = self.lost or f"no answer in {REQUEST_TIMEOUT_S:.0f} s"
            raise EnvironmentLost(self._lost_message()) from exc
        except Exception as exc:
            if is_connection_loss(exc) or self.lost is not None:
                self.lost = self.lost or f"its connection closed ({exc!r})"
                raise EnvironmentLost(self._lost_message()) from exc
            if isinstance(exc, MCPError) and what.startswith("reading"):
                raise EnvironmentLost(f"{what} failed: {exc.message}") from exc
            raise

    async def run(
        self,
        launch: Launch,
        task: AgentTask,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run in the portal for the process's whole life: connect, list the
        tools, report started, then hold the connection until stopped; a
        connection that ends on its own is recorded in `self.lost`."""
        self._stop = anyio.Event()
        log_path = launch.scratch / f"{task.environment}-{secrets.token_hex(4)}.log"
        started = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                log = stack.enter_context(log_path.open("w", encoding="utf-8"))
                client = await self._connect(launch, task, stack, log)
                async with client:
                    with anyio.fail_after(START_TIMEOUT_S):
                        self.tools = tuple((await client.list_tools()).tools)
                    self.client = client
                    started = True
                    task_status.started()
                    await self._stop.wait()
        except Exception as exc:
            # The one place a connection's end is recorded: every later
            # request of an episode on it raises EnvironmentLost.
            if not started:
                raise EnvironmentStartError(
                    f"cannot start the {task.environment} environment "
                    f"({_describe(exc)}); its log ends: {_tail(log_path)}"
                ) from exc
            self.lost = _describe(exc)
        finally:
            self.client = None
            self.lost = self.lost or "the pool stopped it"

    async def _connect(
        self,
        launch: Launch,
        task: AgentTask,
        stack: contextlib.AsyncExitStack,
        log: TextIO,
    ) -> Client:
        """A client of a new process of the task's environment (over HTTP, the
        process is started and listening first)."""
        if launch.transport == "stdio":
            server = stdio_server(launch.output_dir, task, launch.scratch)
            return Client(stdio_client(server, errlog=log))
        self.port = await stack.enter_async_context(
            _http_process(launch.output_dir, task, launch.scratch, launch.host, log)
        )
        self.url = f"http://{_connect_host(launch.host)}:{self.port}/mcp"
        return Client(self.url)


@dataclass(frozen=True)
class Launch:
    """Where and how processes are served.

    Attributes:
        output_dir: The pipeline's output root.
        scratch: A folder that outlives the processes (overlays, logs).
        transport: "stdio", or "http" (reachable by other clients).
        host: Bind address of HTTP servers.
    """

    output_dir: Path
    scratch: Path
    transport: ServeTransport = "stdio"
    host: str = "127.0.0.1"


@contextlib.asynccontextmanager
async def _http_process(
    output_dir: Path, task: AgentTask, scratch: Path, host: str, log: TextIO
) -> AsyncIterator[int]:
    """A streamable-HTTP server process of the task's environment, ready for
    clients, its output in `log`; yields its port and stops it (and its worker)
    on exit.

    Raises:
        EnvironmentStartError: If it exits or does not listen in time.
    """
    port = _free_port(host)
    argv = serve_command(
        output_dir, task, scratch, transport="http", host=host, port=port
    )
    # Started on the portal's thread, which lives as long as the pool: the
    # server's parent-death signal fires only when the pool ends.
    process = subprocess.Popen(
        argv,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=get_default_environment(),
    )
    try:
        await _await_listening(process, _connect_host(host), port)
        yield port
    finally:
        await _end(process)


async def _await_listening(
    process: subprocess.Popen[bytes], host: str, port: int
) -> None:
    with anyio.move_on_after(START_TIMEOUT_S):
        while process.poll() is None:
            try:
                stream = await anyio.connect_tcp(host, port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            return
    state = "exited" if process.poll() is not None else "did not listen"
    raise EnvironmentStartError(f"the server on port {port} {state}")


async def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    with anyio.move_on_after(STOP_TIMEOUT_S / 2):
        while process.poll() is None:
            await anyio.sleep(0.05)
    if process.poll() is None:
        process.kill()
        await anyio.to_thread.run_sync(process.wait)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((_connect_host(host), 0))
        return int(probe.getsockname()[1])


def _connect_host(host: str) -> str:
    """Where this machine reaches a server bound to `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else host


def _tail(log: Path) -> str:
    text = log.read_bytes()[-_LOG_TAIL_BYTES:].decode(errors="replace").strip()
    return text or "(nothing)"


def _describe(exc: BaseException) -> str:
    """The innermost causes of a connection's end, for the error message."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
