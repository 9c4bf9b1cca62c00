"""Environments served for rollouts, one per process and environment build.

Input: the artifacts an environment is made of (as a work item carries them),
its clock, seed and tool-call deadline (`EnvironmentBuild`). Output: `Served`, a
running `SandboxedEnvironment` (its tool modules in the sandboxed worker
process) and one MCP connection to it, materialised from those artifacts in a
private folder the first time a rollout of this process needs it and shared by
every later rollout of the same build; each rollout works in its own fresh
named session. Keyed by the content hashes of the artifacts and the settings,
so an edited server or table gets a new environment.

One long-lived launcher thread of this module launches every worker (a worker
dies with the thread that launched it, so never a short-lived one). A launch
returns as soon as the worker process exists; the worker boots while the
rollout's first model call is in flight (its tools are listed from the spec,
without it), and `SandboxedEnvironment.ready` waits for it before the first tool
call. A step names the builds its rollouts will need (`expect`, most urgent
first); the first rollout that really runs in this process has them all
launched, its own first, so later rollouts find theirs booted or booting
instead of each waiting for its environment's launch, while a re-run whose
rollouts all come from the cache launches nothing. Side effects: the launcher
thread, the worker processes and their folders, until `close_served` (called
when the step ends, and at exit).
"""

from __future__ import annotations

import atexit
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from schemas.artifact import Artifact
from schemas.base import stable_hash
from schemas.blueprint import ServerBlueprint
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.server import McpServer
from tasks.environment_build import materialize_environment
from tasks.runtime.mcp_exposure import build_mcp_server
from tasks.runtime.sandboxed_environment import SandboxedEnvironment
from tasks.runtime.serve import open_environment
from tasks.runtime.tool_session import McpLink


@dataclass(frozen=True)
class Served:
    """A running environment and the MCP connection its rollouts share (each
    rollout names its own session in its requests)."""

    environment: SandboxedEnvironment
    link: McpLink


@dataclass(frozen=True)
class EnvironmentBuild:
    """What one served environment is made of, and how it is run."""

    environment: str
    blueprints: Sequence[Artifact[ServerBlueprint]]
    catalogue: Artifact[EntityCatalogue]
    tables: Sequence[Artifact[DataTable]]
    servers: Sequence[Artifact[McpServer]]
    simulation_time: str
    seed: int
    call_timeout_s: float

    @property
    def key(self) -> str:
        parts = [
            a.content_hash
            for a in (*self.blueprints, self.catalogue, *self.tables, *self.servers)
        ]
        return stable_hash(
            [
                self.environment,
                parts,
                self.simulation_time,
                self.seed,
                self.call_timeout_s,
            ]
        )


_LOCK = threading.Lock()
_SERVED: dict[str, tuple[tempfile.TemporaryDirectory, Served]] = {}
_LAUNCHING: dict[str, Future[Served]] = {}
_EXPECTED: dict[str, EnvironmentBuild] = {}
_LAUNCHER: ThreadPoolExecutor | None = None


def expect(builds: Sequence[EnvironmentBuild]) -> None:
    """Name the builds this process's rollouts are about to need, most urgent
    first; all are launched when the first is needed."""
    with _LOCK:
        for build in builds:
            _EXPECTED.setdefault(build.key, build)


def served_environment(build: EnvironmentBuild) -> Served:
    """The running environment of this build, launched on first use.

    Raises:
        WorkerStartError: The sandbox could not launch the worker (the next
            call tries again).
    """
    key = build.key
    with _LOCK:
        found = _SERVED.get(key)
        if found is not None:
            return found[1]
        future = _launch(build)
        for other in _EXPECTED.values():
            _launch(other)
        _EXPECTED.clear()
    return future.result()


def _launch(build: EnvironmentBuild) -> Future[Served]:
    """The launch of `build`, submitted to the launcher unless it is already
    running or done (the caller holds `_LOCK`)."""
    global _LAUNCHER
    key = build.key
    if key in _SERVED:
        done: Future[Served] = Future()
        done.set_result(_SERVED[key][1])
        return done
    if key not in _LAUNCHING:
        if _LAUNCHER is None:
            _LAUNCHER = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="agentskiller-environments"
            )
            atexit.register(close_served)
        _LAUNCHING[key] = _LAUNCHER.submit(_start, build)
    return _LAUNCHING[key]


def _start(build: EnvironmentBuild) -> Served:
    """Materialise the build and launch its worker (on the launcher thread)."""
    scratch = tempfile.TemporaryDirectory(prefix="agentskiller-served-")
    try:
        folder = materialize_environment(
            Path(scratch.name),
            blueprints=build.blueprints,
            catalogue=build.catalogue,
            tables=build.tables,
            servers=build.servers,
        )
        environment = open_environment(
            folder,
            build.environment,
            simulation_time=build.simulation_time,
            seed=build.seed,
            call_timeout_s=build.call_timeout_s,
            wait=False,
        )
        try:
            served = Served(environment, McpLink(build_mcp_server(environment)))
        except BaseException:
            environment.close()
            raise
    except BaseException:
        scratch.cleanup()
        with _LOCK:
            _LAUNCHING.pop(build.key, None)
        raise
    with _LOCK:
        _SERVED[build.key] = (scratch, served)
        _LAUNCHING.pop(build.key, None)
    return served


def close_served() -> None:
    """Stop every environment this process started, remove its folder, and end
    the launcher thread."""
    global _LAUNCHER
    atexit.unregister(close_served)
    with _LOCK:
        launcher, _LAUNCHER = _LAUNCHER, None
        _EXPECTED.clear()
    if launcher is not None:
        launcher.shutdown(wait=True, cancel_futures=True)
    with _LOCK:
        running = list(_SERVED.values())
        _SERVED.clear()
        _LAUNCHING.clear()
    for scratch, served in running:
        try:
            served.link.close()
            served.environment.close()
        finally:
            scratch.cleanup()
