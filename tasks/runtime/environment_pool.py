"""Served environments shared by episodes: one process per launch, one session
per episode.

Input: an output directory and validated tasks. `EnvironmentPool` keeps one
`ServedEnvironment` (a process of the environment and a persistent MCP client to
it) per `LaunchKey` (environment, clock, seed, overlay), all in one event loop of
its own (an anyio blocking portal), so plain synchronous code on any thread can
drive many episodes concurrently, each in its own named session. It also indexes
the queries and caches their validated tasks. A process that died is replaced
for the next episode; idle processes beyond `max_processes` are stopped, least
recently used first, and a process that served `max_sessions_per_process`
episodes is replaced once idle (sessions live in its memory). Side effects:
child processes and a scratch folder; `close()` stops every process it started
and removes the folder.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from anyio.from_thread import BlockingPortal, start_blocking_portal

from schemas.validated_task import AgentTask, UserQuery
from tasks.runtime.served_environment import Launch, ServedEnvironment
from tasks.runtime.served_task import (
    LaunchKey,
    ServeTransport,
    all_queries,
    load_task,
    missing_query,
)

MAX_PROCESSES = 32
MAX_SESSIONS_PER_PROCESS = 1000


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
            index = {q.id: q for q in all_queries(self.output_dir)}
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
                    slot.served.stop(self.portal)
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
                served.stop(self.portal)

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
            served.stop(self.portal)
        self._stack.close()

    def _launch(self, key: LaunchKey, task: AgentTask) -> ServedEnvironment:
        served = ServedEnvironment(key=key)
        launch = Launch(self.output_dir, self._scratch, self.transport, self.host)
        served.start(self.portal, launch, task)
        return served

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
                    slot.served.stop(self.portal)
                    slot.served = None
            finally:
                slot.lock.release()
