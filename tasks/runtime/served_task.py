"""A query's task and the command that serves its environment.

Input: an output directory and a query id. `read_queries` is the one reader of
`queries/*.jsonl` (bad lines skipped with reasons); `find_query` finds a query
there; `load_task` follows its lineage to the s16 `AgentTask` in the
artifact store (hash-checked). `serve_command` is the one place that says how a
task's environment is started as a separate process (`python -m
tasks.runtime.serve`, its tool modules in the sandboxed worker) with the task's
clock, seed and overlay, over stdio or streamable HTTP; `check-task` and the
episode pool both use it. `policy_text` and `tool_routes` read what an agent is
told about the environment (its policy) and which member tool each agent-facing
name calls. Side effects: reads those files; `serve_command` writes the task's
overlay (if any) as a JSON file into the caller's scratch folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcp import StdioServerParameters

from schemas.fused_environment import FusedEnvironmentSummary
from schemas.fusion import is_fused
from schemas.rollout import ToolRoute
from schemas.validated_task import AgentTask, UserQuery
from tasks.core.rollout_records import Skipped, read_records
from tasks.runtime.harness import PROJECT_ROOT
from tasks.runtime.sandbox_host import parent_death_prefix
from tasks.store.artifacts import ArtifactStore
from tasks.store.paths import (
    QUERIES_DIR,
    QUERIES_GLOB,
    OutputLayout,
    fused_environment_relpath,
    policy_relpath,
)

ServeTransport = Literal["stdio", "http"]


class QueryNotFound(LookupError):
    """No query with this id in the output directory."""


@dataclass(frozen=True)
class LaunchKey:
    """What makes two served processes interchangeable: the environment, its
    clock and seed, and the records every new session starts with."""

    environment: str
    simulation_time: str
    seed: int
    overlay_digest: str

    @classmethod
    def of(cls, task: AgentTask) -> LaunchKey:
        return cls(
            environment=task.environment,
            simulation_time=task.simulation_time,
            seed=task.seed,
            overlay_digest=_overlay_digest(task),
        )


def read_queries(layout: OutputLayout) -> tuple[list[UserQuery], Skipped]:
    """The user queries of `queries/*.jsonl`, files in name order; lines that
    are not queries are skipped and reported (`tasks.core.rollout_records`). A
    missing folder reads as no queries."""
    folder = layout.export_path(QUERIES_DIR)
    items: list[UserQuery] = []
    skipped = Skipped()
    if not folder.is_dir():
        return items, skipped
    for path in sorted(folder.glob(QUERIES_GLOB), key=lambda p: p.name):
        found, cut = read_records(
            path.read_text(),
            source=layout.relpath(path),
            parse=UserQuery.model_validate,
            what="query",
        )
        items.extend(found)
        skipped.extend(cut)
    return items, skipped


def all_queries(output_dir: Path) -> list[UserQuery]:
    """Every readable query of the output directory, file by file."""
    return read_queries(OutputLayout(output_dir))[0]


def find_query(output_dir: Path, query_id: str) -> UserQuery:
    """The query with this id, from `queries/*.jsonl`.

    Raises:
        QueryNotFound: naming the folder searched.
    """
    for query in all_queries(output_dir):
        if query.id == query_id:
            return query
    raise missing_query(output_dir, query_id)


def missing_query(output_dir: Path, query_id: str) -> QueryNotFound:
    """The error for a query id that no query file holds."""
    folder = output_dir / QUERIES_DIR
    return QueryNotFound(f"no query {query_id!r} in {folder}/{QUERIES_GLOB}")


def load_task(output_dir: Path, query: UserQuery) -> AgentTask:
    """The validated task a query was written for (its lineage's artifact).

    Raises:
        StoreError: If the artifact is missing or does not match its hash.
    """
    store = ArtifactStore(OutputLayout(output_dir))
    return store.get(query.lineage.content_hash, AgentTask).payload


def serve_command(
    output_dir: Path,
    task: AgentTask,
    scratch: Path,
    *,
    transport: ServeTransport = "stdio",
    host: str = "127.0.0.1",
    port: int | None = None,
) -> list[str]:
    """The argv that serves the task's environment as its golden run saw it.

    Every new session of the process starts from the base data plus the task's
    overlay; the process dies with the thread that started it where `setpriv`
    exists, so a crashed caller leaves no server behind.

    Args:
        output_dir: The pipeline's output root.
        task: The validated task (environment, clock, seed, overlay).
        scratch: A folder the caller owns for as long as the process runs; the
            overlay file is written there.
        transport: "stdio", or "http" (streamable HTTP at `/mcp`).
        host: HTTP bind address.
        port: HTTP port (required for "http").

    Returns:
        The full argv, interpreter first.
    """
    argv = [*parent_death_prefix(), sys.executable, "-m", "tasks.runtime.serve"]
    # Absolute: the server runs in the project root, not the caller's directory.
    argv += [task.environment, "--output-dir", str(output_dir.resolve())]
    argv += ["--simulation-time", task.simulation_time, "--seed", str(task.seed)]
    argv += ["--transport", transport]
    if transport == "http":
        if port is None:
            raise ValueError("an HTTP server needs a port")
        argv += ["--host", host, "--port", str(port)]
    if task.overlay:
        path = scratch / f"overlay-{_overlay_digest(task)[:16]}.json"
        path.write_text(json.dumps(task.overlay), encoding="utf-8")
        argv += ["--overlay", str(path)]
    return argv


def stdio_server(
    output_dir: Path, task: AgentTask, scratch: Path
) -> StdioServerParameters:
    """`serve_command` over stdio, as the MCP client launches it."""
    command, *args = serve_command(output_dir, task, scratch)
    return StdioServerParameters(command=command, args=args, cwd=str(PROJECT_ROOT))


def policy_text(output_dir: Path, environment: str) -> str:
    """The environment's policy (s07 for a server, s13 for a fused one), the
    assistant's system prompt.

    Raises:
        FileNotFoundError: If the output has no policy for it.
    """
    path = output_dir / policy_relpath(environment)
    if not path.is_file():
        raise FileNotFoundError(f"no policy for {environment}: {path} is missing")
    return path.read_text(encoding="utf-8")


def tool_routes(
    output_dir: Path, environment: str, names: Iterable[str]
) -> dict[str, ToolRoute]:
    """Which member server and tool each agent-facing tool name calls: a
    server's own tools, or a fused environment's as its s12 summary maps them."""
    if not is_fused(environment):
        return {name: ToolRoute(server=environment, tool=name) for name in names}
    path = output_dir / fused_environment_relpath(environment)
    summary = FusedEnvironmentSummary.model_validate_json(path.read_bytes())
    return {
        name: ToolRoute(server=route.server, tool=route.tool)
        for name, route in summary.tools.items()
    }


def _overlay_digest(task: AgentTask) -> str:
    canonical = json.dumps(task.overlay, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
