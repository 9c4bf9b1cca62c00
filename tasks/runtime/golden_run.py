"""Running a golden trajectory against an environment over MCP.

Input: a connected MCP client of a served environment (single or fused), the
planned calls, the combination's entity instances, the names of the tools that
write, a session id, and a way to read that session's state hash. Output: a
`GoldenRun`: each call bound declaratively (`tasks.core.bindings`), executed in
the session (named in the request's `_meta`, so concurrent runs on one
connection never share state), and checked: a call must succeed, and a write tool
must change the state. The first failing call ends the run. The state comes back
with the calls' results (`tasks.runtime.mcp_exposure`: each write brings the
state hash, the last call the hash and the diff against the base), so a run makes
no state read of its own beyond its starting hash, and `run_each` reads that once
for all the new sessions of an environment, since every new session starts from
the same state; a server that sends no state with a result is read through its
resources instead. Side effects: only on the environment's session.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from mcp import Client

from schemas.environment import DatabaseDiff, SessionState, StateField
from schemas.golden import GoldenRun, GoldenStep, PlannedCall
from tasks.core.bindings import bind_call
from tasks.runtime.mcp_exposure import (
    END_META_KEY,
    SESSION_META_KEY,
    STATE_DIFF_URI,
    STATE_HASH_URI,
    STATE_META_KEY,
)

StateReader = Callable[[str], Awaitable[str]]
"""Reads a session's current state hash."""
GoldenOutcome = tuple[GoldenRun, DatabaseDiff | None]
"""A run, and for a passing run its session's diff against the base data."""


async def run_golden(
    client: Client,
    calls: Sequence[PlannedCall],
    instances: Mapping[str, Mapping[str, Any]],
    *,
    session: str,
    write_tools: Collection[str],
    state_hash: StateReader,
    initial_hash: str | None = None,
    end_session: bool = False,
) -> GoldenOutcome:
    """Execute `calls` in `session` and say whether the golden run passed.

    Args:
        client: A client connected to the environment.
        calls: The planned calls.
        instances: The combination's entity instances, for binding.
        session: The session the calls run in.
        write_tools: The tools that must change the state.
        state_hash: Reads the session's state hash when a result brings none
            (and the starting hash when `initial_hash` is None).
        initial_hash: The session's state hash before the first call, when
            the caller knows it.
        end_session: End the session with the last call (`_meta` flag), once
            that call has brought back the state the run needs; a run that
            stops before its last call leaves the session to its caller.

    Returns:
        The run, and for a passing run the session's diff against the base.
    """
    results: list[Any] = []
    steps: list[GoldenStep] = []
    before = initial_hash if initial_hash is not None else await state_hash(session)
    diff: DatabaseDiff | None = None
    for index, planned in enumerate(calls):
        bound = bind_call(planned, index, instances, results)
        if isinstance(bound, list):
            steps.append(GoldenStep(tool=planned.tool, problems=tuple(bound), ok=False))
            first = bound[0]
            return _failed(session, steps, "binding", f"call {index}: {first.message}")
        # Only a write tool can change the state (a read tool that writes is a
        # contract violation the runtime turns into an error result), so the
        # state hash is asked for after writes only; the diff after the last call.
        writes = bound.tool in write_tools
        last = index == len(calls) - 1
        report: list[StateField] = ["state_hash"] if writes else []
        report += ["diff"] if last else []
        answer = await client.call_tool(
            bound.tool,
            bound.arguments,
            meta=session_meta(session, report, end=last and end_session),
        )
        content = _content(answer)
        if answer.is_error:
            steps.append(
                GoldenStep(tool=bound.tool, call=bound, ok=False, error=str(content))
            )
            return _failed(
                session, steps, "tool_error", f"call {index} ({bound.tool}): {content}"
            )
        state = reported_state(answer)
        wrote = False
        if writes:
            after = state.state_hash or await state_hash(session)
            wrote, before = after != before, after
        steps.append(
            GoldenStep(
                tool=bound.tool, call=bound, ok=True, result=content, wrote=wrote
            )
        )
        results.append(content)
        if writes and not wrote:
            return _failed(
                session,
                steps,
                "no_write",
                f"call {index} ({bound.tool}) is a write but changed nothing",
            )
        diff = state.diff
    run = GoldenRun(session=session, steps=tuple(steps), final_state_hash=before)
    return run, diff if diff is not None else await session_diff(client, session)


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


def reported_state(answer: Any) -> SessionState:
    """The session state a call's result brought (empty if none)."""
    found = (answer.meta or {}).get(STATE_META_KEY)
    return SessionState() if found is None else SessionState.model_validate(found)


def sent_last_call(run: GoldenRun, calls: Sequence[PlannedCall]) -> bool:
    """True when the run reached and sent its last planned call (with
    `end_session`, its session then ended with it)."""
    return len(run.steps) == len(calls) > 0 and run.steps[-1].call is not None


def _failed(
    session: str, steps: list[GoldenStep], failure: str, message: str
) -> GoldenOutcome:
    run = GoldenRun(
        session=session, steps=tuple(steps), failure=failure, message=message
    )
    return run, None


def session_meta(
    session: str, report: Sequence[StateField] = (), *, end: bool = False
) -> dict[str, str | list[str] | bool]:
    """The request `_meta` that names a runtime session, and for a tool call
    the session state to send back with the result and whether the session
    ends after it."""
    meta: dict[str, str | list[str] | bool] = {SESSION_META_KEY: session}
    if report:
        meta[STATE_META_KEY] = list(report)
    if end:
        meta[END_META_KEY] = True
    return meta


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
    *,
    started: Collection[str] = (),
    end: bool = False,
) -> list[GoldenOutcome]:
    """Run every (session, calls, instances) plan in its own session of the
    environment `client` is connected to; the diff of each passing run.

    Every session neither in `started` (begun from an overlay) nor used by an
    earlier plan is new, and every new session starts from the environment's
    own starting state: its hash is read once, from the first new session, and
    given to the later ones; any other session's starting hash is read from it.
    With `end`, each session ends with the last call of its last plan (see
    `run_golden`).
    """
    writes = await write_tool_names(client)
    reader = mcp_state_hash(client)
    new_hash: str | None = None
    used = set(started)
    done: list[GoldenOutcome] = []
    last_use = {session: i for i, (session, _, _) in enumerate(plans)}
    for index, (session, calls, instances) in enumerate(plans):
        fresh = session not in used
        if fresh and new_hash is None:
            new_hash = await reader(session)
        initial = new_hash if fresh else None
        used.add(session)
        outcome = await run_golden(
            client,
            calls,
            instances,
            session=session,
            write_tools=writes,
            state_hash=reader,
            initial_hash=initial,
            end_session=end and last_use[session] == index,
        )
        done.append(outcome)
    return done
