"""`agentskiller check-task`: replay a query's golden calls against its served
environment over a real MCP transport and compare the final state.

Input: an output directory and a query id. The query is looked up in
`queries/*.jsonl`; its lineage names the s16 `agent_task` (read from the store,
hash-checked), which holds the golden calls with concrete arguments, the expected
final state hash and diff, and the environment's clock and seed. The environment
is started as `python -m tasks.runtime.serve` (the same server `serve-env` runs,
its tool modules in the sandbox) over stdio, with the task's overlay (a
cross-domain task's records) passed as `--overlay FILE`, so every session starts
from base + overlay exactly as s16's golden run did; the calls run in one fresh
named session; the session's hash and diff are read from the environment's MCP
resources, as any client could. Output: a `TaskCheck`. The command is
`tasks.runtime.served_task.serve_command`, shared with episodes. Side effects: the
server process and the overlay's temporary file, gone afterwards.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from schemas.environment import DatabaseDiff
from schemas.validated_task import AgentTask, UserQuery
from tasks.runtime.golden_run import mcp_state_hash, session_diff, session_meta
from tasks.runtime.served_task import (
    QueryNotFound,
    find_query,
    load_task,
    stdio_server,
)

__all__ = ["QueryNotFound", "TaskCheck", "check_task", "find_query"]


@dataclass(frozen=True)
class TaskCheck:
    """The outcome of replaying one task."""

    query_id: str
    environment: str
    expected_hash: str
    final_hash: str
    errors: tuple[str, ...]
    diff: DatabaseDiff
    expected_diff: DatabaseDiff

    @property
    def ok(self) -> bool:
        return not self.errors and self.final_hash == self.expected_hash


def check_task(output_dir: Path, query_id: str) -> TaskCheck:
    """Replay the query's golden calls in a fresh session of its environment.

    Raises:
        QueryNotFound: If no query has this id.
        StoreError: If the query's task artifact is missing or corrupt.
    """
    query = find_query(output_dir, query_id)
    task = load_task(output_dir, query)
    with tempfile.TemporaryDirectory(prefix="agentskiller-check-") as scratch:
        return _replay(query, task, stdio_server(output_dir, task, Path(scratch)))


def _replay(
    query: UserQuery, task: AgentTask, server: StdioServerParameters
) -> TaskCheck:
    session = f"check-{uuid.uuid4().hex}"

    async def replay() -> tuple[str, DatabaseDiff, list[str]]:
        errors: list[str] = []
        async with Client(server) as client:
            for i, call in enumerate(task.golden_calls):
                answer = await client.call_tool(
                    call.tool, call.arguments, meta=session_meta(session)
                )
                if answer.is_error:
                    text = "".join(getattr(c, "text", "") for c in answer.content)
                    errors.append(f"call {i} ({call.tool}) failed: {text}")
            final = await mcp_state_hash(client)(session)
            return final, await session_diff(client, session), errors

    final, diff, errors = anyio.run(replay)
    return TaskCheck(
        query_id=query.id,
        environment=task.environment,
        expected_hash=task.expected_state_hash,
        final_hash=final,
        errors=tuple(errors),
        diff=diff,
        expected_diff=task.expected_diff,
    )
