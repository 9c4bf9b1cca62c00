"""Served environments shared by episodes: one process per launch, one session
per episode.

Input: an output directory and validated tasks. `EnvironmentPool` starts each
task's environment as a separate process (`served_task.serve_command`: the
runtime's server, its generated tool modules only in the sandboxed worker) over
stdio or streamable HTTP, once per `LaunchKey` (environment, clock, seed,
overlay), and keeps one persistent MCP client to it in an event loop of its own
(an anyio blocking portal), so plain synchronous code can drive many episodes
concurrently; each episode names its own runtime session in every request's
`_meta`. Output: `ServedEnvironment` handles (tools, tool calls, a session's
state hash and diff). A process that dies or stops answering turns every
request on it into `EnvironmentLost`, and the next episode of that launch gets
a new process. Side effects: child processes, a scratch folder (overlay files,
HTTP servers' logs); `close()` stops every process it started and removes the
folder.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import anyio
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult, Tool

from schemas.environment import DatabaseDiff
from schemas.validated_task import AgentTask, UserQuery
from tasks.runtime.golden_run import session_meta
from tasks.runtime.harness import PROJECT_ROOT
from tasks.runtime.mcp_exposure import STATE_DIFF_URI, STATE_HASH_URI
from tasks.runtime.served_task import (
    LaunchKey,
    ServeTransport,
    iter_queries,
    load_task,
    missing_query,
    serve_command,
    stdio_server,
)

START_TIMEOUT_S = 120.0
# Longer than the server's own per-call deadline (it kills a stuck worker after
# 30 s and answers with an error), so only a server that stopped answering trips it.
REQUEST_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
MAX_PROCESSES = 32
MAX_SESSIONS_PER_PROCESS = 1000
_LOG_TAIL_BYTES = 2000


class EnvironmentLost(RuntimeError):
    """The environment's process died or stopped answering; the episode's
    session is gone with it."""


class EnvironmentStartError(RuntimeError):
    """The environment's process could not be started (it exited or never
    answered); the message carries the end of its log."""


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
            digest.contents[0].text,  # type: ignore[union-attr]
            DatabaseDiff.model_validate_json(diff.contents[0].text),  # type: ignore[union-attr]
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
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            self.lost = self.lost or "its connection closed"
            raise EnvironmentLost(self._lost_message()) from exc
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED or self.lost is not None:
                self.lost = self.lost or exc.message
                raise EnvironmentLost(self._lost_message()) from exc
            if what.startswith("reading"):
                raise EnvironmentLost(f"{what} failed: {exc.message}") from exc
            raise


@dataclass
class _Slot:
    """The one served process of a launch key; its lock serialises starts."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    served: ServedEnvironment | None = None


class EnvironmentPool:
    """Served environments of one output directory, shared by episodes.

    Use it as a context manager (or call `close`). Thread-safe: episodes on any
    thread share its processes.

    Args:
        output_dir: The pipeline's output root.
        transport: "stdio" (the pool's own processes) or "http" (streamable
            HTTP, reachable by other clients at `ServedEnvironment.url`).
        host: Bind address of HTTP servers.
        max_processes: Idle processes beyond this many are stopped, least
            recently used first.
        max_sessions_per_process: A process that served this many episodes is
            replaced once idle (sessions live in its memory until it stops).
    """

    def __init__(
        self,
        output_dir: Path,
        *,
        transport: ServeTransport = "stdio",
        host: str = "127.0.0.1",
        max_processes: int = MAX_PROCESSES,
        max_sessions_per_process: int = MAX_SESSIONS_PER_PROCESS,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.transport: ServeTransport = transport
        self.host = host
        self.max_processes = max_processes
        self.max_sessions_per_process = max_sessions_per_process
        self._slots: dict[LaunchKey, _Slot] = {}
        self._lock = threading.Lock()
        self._queries: dict[str, UserQuery] = {}
        self._tasks: dict[str, AgentTask] = {}
        self._stack = contextlib.ExitStack()
        self._scratch = Path(
            self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="agentskiller-episodes-")
            )
        )
        self.portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
        self._closed = False

    def __enter__(self) -> EnvironmentPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def lookup(self, query_id: str) -> tuple[UserQuery, AgentTask]:
        """A query and its validated task (the queries are indexed once, and
        again when an id is missing, so queries written since are found).

        Raises:
            QueryNotFound: If no query has this id.
            StoreError: If the query's task artifact is missing or corrupt.
        """
        with self._lock:
            query = self._queries.get(query_id)
        if query is None:
            index = {q.id: q for q in iter_queries(self.output_dir)}
            with self._lock:
                self._queries = index
            if query_id not in index:
                raise missing_query(self.output_dir, query_id)
            query = index[query_id]
        digest = query.lineage.content_hash
        with self._lock:
            task = self._tasks.get(digest)
        if task is None:
            task = load_task(self.output_dir, query)
            with self._lock:
                self._tasks[digest] = task
        return query, task

    def acquire(self, task: AgentTask) -> ServedEnvironment:
        """A running process of the task's launch, counted as used by one more
        episode until `release`.

        Raises:
            EnvironmentStartError: If the process cannot be started.
        """
        if self._closed:
            raise RuntimeError("the environment pool is closed")
        key = LaunchKey.of(task)
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            if slot.served is None or slot.served.lost is not None:
                if slot.served is not None:
                    self._stop(slot.served)
                self._trim()
                slot.served = self._launch(key, task)
            slot.served.episodes += 1
            slot.served.sessions += 1
            with self._lock:  # most recently used last
                self._slots[key] = self._slots.pop(key)
            return slot.served

    def release(self, served: ServedEnvironment) -> None:
        """One episode is done with `served`; a process past its session budget
        is stopped once no episode uses it."""
        with self._lock:
            slot = self._slots.get(served.key)
        if slot is None:
            return
        with slot.lock:
            served.episodes = max(0, served.episodes - 1)
            worn = served.sessions >= self.max_sessions_per_process
            if slot.served is served and served.episodes == 0 and worn:
                slot.served = None
                self._stop(served)

    def running(self) -> list[ServedEnvironment]:
        """The processes running now."""
        with self._lock:
            slots = list(self._slots.values())
        return [s.served for s in slots if s.served is not None]

    def close(self) -> None:
        """Stop every process the pool started and its event loop."""
        if self._closed:
            return
        self._closed = True
        for served in self.running():
            self._stop(served)
        self._stack.close()

    def _launch(self, key: LaunchKey, task: AgentTask) -> ServedEnvironment:
        served = ServedEnvironment(key=key)
        served._done, _ = self.portal.start_task(self._serve, served, task)
        return served

    def _stop(self, served: ServedEnvironment) -> None:
        if served._done is None or served._done.done():
            return
        if served._stop is not None:
            self.portal.call(served._stop.set)
        with contextlib.suppress(Exception):
            served._done.result(timeout=STOP_TIMEOUT_S)

    def _trim(self) -> None:
        with self._lock:
            slots = list(self._slots.values())
        idle = [s for s in slots if s.served is not None and s.served.episodes == 0]
        excess = len([s for s in slots if s.served is not None]) + 1
        excess -= self.max_processes
        for slot in idle[: max(0, excess)]:
            # Never wait for another slot's lock: its holder may be trimming too.
            if not slot.lock.acquire(blocking=False):
                continue
            try:
                if slot.served is not None and slot.served.episodes == 0:
                    self._stop(slot.served)
                    slot.served = None
            finally:
                slot.lock.release()

    async def _serve(
        self,
        served: ServedEnvironment,
        task: AgentTask,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run in the portal for the process's whole life: connect, list the
        tools, report started, then hold the connection until stopped; a
        connection that ends on its own is recorded in `served.lost`."""
        served._stop = anyio.Event()
        log_path = self._scratch / f"{task.environment}-{secrets.token_hex(4)}.log"
        started = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                log = stack.enter_context(log_path.open("w", encoding="utf-8"))
                client = await self._client(served, task, stack, log)
                async with client:
                    with anyio.fail_after(START_TIMEOUT_S):
                        served.tools = tuple((await client.list_tools()).tools)
                    served.client = client
                    started = True
                    task_status.started()
                    await served._stop.wait()
        except Exception as exc:
            # The one place a connection's end is recorded: every later
            # request of an episode on it raises EnvironmentLost.
            if not started:
                raise EnvironmentStartError(
                    f"cannot start the {task.environment} environment "
                    f"({_describe(exc)}); its log ends: {_tail(log_path)}"
                ) from exc
            served.lost = _describe(exc)
        finally:
            served.client = None
            served.lost = served.lost or "the pool stopped it"

    async def _client(
        self,
        served: ServedEnvironment,
        task: AgentTask,
        stack: contextlib.AsyncExitStack,
        log: TextIO,
    ) -> Client:
        """A client of a new process of the task's environment (over HTTP, the
        process is started and listening first)."""
        if self.transport == "stdio":
            server = stdio_server(self.output_dir, task, self._scratch)
            return Client(stdio_client(server, errlog=log))
        served.port = await stack.enter_async_context(
            _http_process(self.output_dir, task, self._scratch, self.host, log)
        )
        served.url = f"http://{_connect_host(self.host)}:{served.port}/mcp"
        return Client(served.url)


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
