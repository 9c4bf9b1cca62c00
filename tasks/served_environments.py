"""Environments served for rollouts, one per process and environment build.

Input: the artifacts an environment is made of (as a work item carries them),
its clock, seed and tool-call deadline. Output: a running `SandboxedEnvironment`
(its tool modules in the sandboxed worker process), materialised from those
artifacts in a private folder the first time a rollout of this process needs it
and shared by every later rollout of the same build; each rollout works in its
own fresh named session. Keyed by the content hashes of the artifacts and the
settings, so an edited server or table gets a new environment. Side effects:
the worker processes and their folders, until `close_served` (called when the
step ends, and at exit).
"""

from __future__ import annotations

import atexit
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from schemas.artifact import Artifact
from schemas.base import stable_hash
from schemas.blueprint import ServerBlueprint
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.server import McpServer
from tasks.environment_build import materialize_environment
from tasks.runtime.sandboxed_environment import SandboxedEnvironment
from tasks.runtime.serve import open_environment

_LOCK = threading.Lock()
_SERVED: dict[str, tuple[tempfile.TemporaryDirectory, SandboxedEnvironment]] = {}


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
) -> SandboxedEnvironment:
    """The running environment of this build, started on first use."""
    parts = [a.content_hash for a in (*blueprints, catalogue, *tables, *servers)]
    key = stable_hash([environment, parts, simulation_time, seed, call_timeout_s])
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
        except BaseException:
            scratch.cleanup()
            raise
        if not _SERVED:
            atexit.register(close_served)
        _SERVED[key] = (scratch, served)
        return served


def close_served() -> None:
    """Stop every environment this process started, and remove its folder."""
    atexit.unregister(close_served)
    with _LOCK:
        running = list(_SERVED.values())
        _SERVED.clear()
    for scratch, served in running:
        try:
            served.close()
        finally:
            scratch.cleanup()

