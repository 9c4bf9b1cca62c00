"""Running a golden trajectory against an environment over MCP.

Input: a connected MCP client of a served environment (single or fused), the
planned calls, the combination's entity instances, the names of the tools that
write, a fresh session id, and a way to read that session's state hash. Output: a
`GoldenRun`: each call bound declaratively (`tasks.core.bindings`), executed in
the session (named in the request's `_meta`, so concurrent runs on one
connection never share state), and checked: a call must succeed, and a write tool
must change the state. The first failing call ends the run. Side effects: only on
the environment's session.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from mcp import Client

from schemas.environment import DatabaseDiff
from schemas.golden import GoldenRun, GoldenStep, PlannedCall
from tasks.core.bindings import bind_call
from tasks.runtime.mcp_exposure import SESSION_META_KEY, STATE_DIFF_URI, STATE_HASH_URI

StateReader = Callable[[str], Awaitable[str]]
"""Reads a session's current state hash."""


async def run_golden(
    client: Client,
    calls: Sequence[PlannedCall],
    instances: Mapping[str, Mapping[str, Any]],
    *,
    session: str,
    write_tools: Collection[str],
    state_hash: StateReader,
) -> GoldenRun:
    """Execute `calls` in `session` and say whether the golden run passed."""
    meta = session_meta(session)
    results: list[Any] = []
    steps: list[GoldenStep] = []
    before = await state_hash(session)
    for index, planned in enumerate(calls):
        bound = bind_call(planned, index, instances, results)
        if isinstance(bound, list):
            steps.append(GoldenStep(tool=planned.tool, problems=tuple(bound), ok=False))
            first = bound[0]
            return _failed(session, steps, "binding", f"call {index}: {first.message}")
        answer = await client.call_tool(bound.tool, bound.arguments, meta=meta)
        content = _content(answer)
        if answer.is_error:
            steps.append(
                GoldenStep(tool=bound.tool, call=bound, ok=False, error=str(content))
            )
            return _failed(
                session, steps, "tool_error", f"call {index} ({bound.tool}): {content}"
            )
        # Only a write tool can change the state (a read tool that writes is a
        # contract violation the runtime turns into an error result), so the
        # state is read after writes only.
        wrote = False
        if bound.tool in write_tools:
            after = await state_hash(session)
            wrote, before = after != before, after
        steps.append(
            GoldenStep(
                tool=bound.tool, call=bound, ok=True, result=content, wrote=wrote
            )
        )
        results.append(content)
        if bound.tool in write_tools and not wrote:
            return _failed(
                session,
                steps,
                "no_write",
                f"call {index} ({bound.tool}) is a write but changed nothing",
            )
    return GoldenRun(session=session, steps=tuple(steps), final_state_hash=before)


def _content(answer: Any) -> Any:
    """A call's result as the tool returned it (the JSON text the runtime sends
    beside the structured form, which wraps non-objects); an error's message."""
    text = "".join(getattr(part, "text", "") for part in answer.content)
    if answer.is_error:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _failed(
    session: str, steps: list[GoldenStep], failure: str, message: str
) -> GoldenRun:
    return GoldenRun(
        session=session, steps=tuple(steps), failure=failure, message=message
    )


def session_meta(session: str) -> dict[str, str]:
    """The request `_meta` that names a runtime session."""
    return {SESSION_META_KEY: session}


def mcp_state_hash(client: Client) -> StateReader:
    """Reads a session's state hash from the environment's MCP resource, as any
    client can."""

    async def read(session: str) -> str:
        found = await client.read_resource(STATE_HASH_URI, meta=session_meta(session))
        return found.contents[0].text

    return read


async def session_diff(client: Client, session: str) -> DatabaseDiff:
    """A session's diff against the untouched base, from the MCP resource."""
    found = await client.read_resource(STATE_DIFF_URI, meta=session_meta(session))
    return DatabaseDiff.model_validate_json(found.contents[0].text)


async def write_tool_names(client: Client) -> frozenset[str]:
    """The tools the environment marks as writes (not read-only)."""
    listed = (await client.list_tools()).tools
    return frozenset(
        t.name for t in listed if not (t.annotations and t.annotations.read_only_hint)
    )


async def run_each(
    client: Client,
    plans: Sequence[tuple[str, Sequence[PlannedCall], Mapping[str, Mapping[str, Any]]]],
) -> list[tuple[GoldenRun, DatabaseDiff | None]]:
    """Run every (session, calls, instances) plan in its own fresh session of the
    environment `client` is connected to; the diff of each passing run."""
    writes = await write_tool_names(client)
    reader = mcp_state_hash(client)
    done: list[tuple[GoldenRun, DatabaseDiff | None]] = []
    for session, calls, instances in plans:
        run = await run_golden(
            client,
            calls,
            instances,
            session=session,
            write_tools=writes,
            state_hash=reader,
        )
        diff = await session_diff(client, session) if run.passed else None
        done.append((run, diff))
    return done
