"""Environments served for rollouts, one per process and environment build.

Input: the artifacts an environment is made of (as a work item carries them),
its clock, seed and tool-call deadline. Output: `Served`, a running
`SandboxedEnvironment` (its tool modules in the sandboxed worker process) and
one MCP connection to it, materialised from those artifacts in a private folder
the first time a rollout of this process needs it and shared by every later
rollout of the same build; each rollout works in its own fresh named session.
Different builds start side by side. The worker is tied to the thread that
starts it (it is killed when that thread ends), so only long-lived threads
(the step's item threads) start them. Keyed by the content hashes of
the artifacts and the settings, so an edited server or table gets a new
environment. Side effects:
the worker processes and their folders, until `close_served` (called when the
step ends, and at exit).
"""

from __future__ import annotations

import atexit
import tempfile
import threading
from collections.abc import Sequence
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

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Served:
    """A running environment and the MCP connection its rollouts share (each
    rollout names its own session in its requests)."""

    environment: SandboxedEnvironment
    link: McpLink


_SERVED: dict[str, tuple[tempfile.TemporaryDirectory, Served]] = {}
_STARTING: dict[str, threading.Lock] = {}


def served_environment(
    environment: str,
    *,
    blueprints: Sequence[Artifact[ServerBlueprint]],
    catalogue: Artifact[EntityCatalogue],
    tables: Sequence[Artifact[DataTable]],
    servers: Sequence[Artifact[McpServer]],
    simulation_time: str,
    seed: int,
    call_timeout_s: float,
) -> Served:
    """The running environment of this build, started on first use."""
    parts = [a.content_hash for a in (*blueprints, catalogue, *tables, *servers)]
    key = stable_hash([environment, parts, simulation_time, seed, call_timeout_s])
    with _LOCK:
        found = _SERVED.get(key)
        if found is not None:
            return found[1]
        starting = _STARTING.setdefault(key, threading.Lock())
    # Different environments start side by side; rollouts of the same one wait
    # for its first start.
    with starting:
        with _LOCK:
            found = _SERVED.get(key)
        if found is not None:
            return found[1]
        scratch = tempfile.TemporaryDirectory(prefix="agentskiller-served-")
        try:
            folder = materialize_environment(
                Path(scratch.name),
                blueprints=blueprints,
                catalogue=catalogue,
                tables=tables,
                servers=servers,
            )
            served = open_environment(
                folder,
                environment,
                simulation_time=simulation_time,
                seed=seed,
                call_timeout_s=call_timeout_s,
            )
            link = McpLink(build_mcp_server(served))
        except BaseException:
            scratch.cleanup()
            raise
        with _LOCK:
            if not _SERVED:
                atexit.register(close_served)
            _SERVED[key] = (scratch, Served(served, link))
        return _SERVED[key][1]


def close_served() -> None:
    """Stop every environment this process started, and remove its folder."""
    atexit.unregister(close_served)
    with _LOCK:
        running = list(_SERVED.values())
        _SERVED.clear()
        _STARTING.clear()
    for scratch, served in running:
        try:
            served.link.close()
            served.environment.close()
        finally:
            scratch.cleanup()
