"""A session's state reported with a call's result, so a caller that needs the
state after a call (a golden run checking that a write wrote, and the final diff)
gets it in the same exchange instead of asking again.

Input: a `ToolServer`, a session, a tool call and the `StateField`s wanted.
Output: the call's `ToolResult` and a `SessionState` holding the fields asked
for (nothing for a private session, which no call outlives). A server that can
answer both in one exchange (`StateReportingServer`: the sandboxed environment,
whose worker sends them in one reply) does; any other runs the call and then
reads its own state. Side effects: the call's, on its session.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol, runtime_checkable

from schemas.environment import SessionState, StateField, ToolResult
from tasks.runtime.environment import Environment, ToolServer


@runtime_checkable
class StateReportingServer(Protocol):
    """A tool server that runs a call and reports the state in one exchange."""

    def call_reporting(
        self,
        session_id: str | None,
        tool: str,
        arguments: dict[str, Any] | None,
        report: Collection[StateField],
        *,
        end: bool = False,
    ) -> tuple[ToolResult, SessionState]:
        """`ToolServer.call`, then the session's state as `report` asks, then
        (with `end`) the session is forgotten."""
        ...


def session_state(
    server: ToolServer, session_id: str | None, report: Collection[StateField]
) -> SessionState:
    """The session's current state, as far as `report` asks (nothing for a
    private session)."""
    if session_id is None:
        return SessionState()
    return SessionState(
        state_hash=server.state_hash(session_id) if "state_hash" in report else None,
        diff=server.diff(session_id) if "diff" in report else None,
    )


def call_reporting(
    server: ToolServer,
    session_id: str | None,
    tool: str,
    arguments: dict[str, Any] | None,
    report: Collection[StateField],
    *,
    end: bool = False,
) -> tuple[ToolResult, SessionState]:
    """Run one call in a session and report the session's state after it.

    Args:
        server: The environment (in-process or sandboxed).
        session_id: The session (None: a private one, which reports nothing).
        tool: The tool name.
        arguments: The call's arguments.
        report: The state wanted back (empty: none, and no state is read).
        end: Forget the session afterwards (its last call), so the server
            holds only sessions in use.

    Returns:
        The call's result and the state asked for.
    """
    if (report or end) and isinstance(server, StateReportingServer):
        if end:
            return server.call_reporting(session_id, tool, arguments, report, end=True)
        return server.call_reporting(session_id, tool, arguments, report)
    result = server.call(session_id, tool, arguments)
    state = session_state(server, session_id, report)
    if end and session_id is not None and isinstance(server, Environment):
        server.reset_session(session_id)
    return result, state
