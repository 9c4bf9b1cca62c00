"""A synchronous MCP client on one named session of a served environment.

Input: what to connect to (an `EnvironmentServer` object, served in memory, or
`StdioServerParameters` of a `serve-env` process) and the session's name.
Output: `ToolSession`, usable from plain threads: the environment's tools in
OpenAI function format, one call per assistant tool call turned into the tool
message the assistant reads next, and the session's state hash and diff, read
from the environment's MCP resources as any client could. A tool error or
arguments that are not a JSON object come back as the tool message
`{"error": "..."}` (the convention the evaluators read; malformed arguments are
counted as format errors), never as an exception. A lost connection raises
`EnvironmentLost`. Side effects: a portal thread running the MCP client, and
the server process for stdio; both end with `close()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer

from schemas.environment import DatabaseDiff
from schemas.rollout import ChatMessage, ToolCall
from tasks.runtime.chat import (
    arguments_error,
    error_content,
    openai_tool,
    parse_arguments,
    result_content,
)
from tasks.runtime.mcp_exposure import SESSION_META_KEY, STATE_DIFF_URI, STATE_HASH_URI
from tasks.runtime.served_environment import EnvironmentLost, is_connection_loss

__all__ = ["EnvironmentLost", "McpLink", "ToolSession"]


class McpLink:
    """One MCP client connection, driven from plain threads through a portal;
    many sessions (and threads) can share it, each request naming its session."""

    def __init__(self, target: MCPServer | StdioServerParameters) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] = (
            start_blocking_portal()
        )
        self._portal = self._portal_cm.__enter__()
        self._client_cm = self._portal.wrap_async_context_manager(Client(target))
        try:
            self.client: Client = self._client_cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._listed: list[Any] | None = None

    def listed(self) -> list[Any]:
        """The server's MCP tools (listed once)."""
        if self._listed is None:
            self._listed = list(self.do(self.client.list_tools).tools)
        return self._listed

    def do(self, request: Any) -> Any:
        """Run an async client call from this thread; a broken link raises
        `EnvironmentLost`."""
        try:
            return self._portal.call(request)
        except Exception as exc:
            if is_connection_loss(exc):
                raise EnvironmentLost(
                    f"the environment stopped answering: {exc!r}"
                ) from exc
            raise

    def close(self) -> None:
        try:
            self._client_cm.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - a dead server cannot be closed politely
            pass
        finally:
            self._portal_cm.__exit__(None, None, None)


class ToolSession:
    """One environment session reached over MCP, driven synchronously: over its
    own connection, or over a shared `McpLink` (left open on close)."""

    def __init__(
        self, target: MCPServer | StdioServerParameters | McpLink, session: str
    ) -> None:
        self.session = session
        self.format_errors = 0
        self._meta = {SESSION_META_KEY: session}
        self._owned = not isinstance(target, McpLink)
        self._link = target if isinstance(target, McpLink) else McpLink(target)
        self._client = self._link.client

    def tools(self) -> list[dict[str, Any]]:
        """The environment's tools in OpenAI function format."""
        return [openai_tool(t) for t in self._link.listed()]

    def write_tools(self) -> frozenset[str]:
        """The tools the environment marks as writes (not read-only)."""
        return frozenset(
            t.name
            for t in self._link.listed()
            if not (t.annotations and t.annotations.read_only_hint)
        )

    def call(self, call: ToolCall) -> ChatMessage:
        """Run one assistant tool call in this session; its tool message."""
        name, text = call.function.name, call.function.arguments
        arguments = parse_arguments(text)
        if arguments is None:
            self.format_errors += 1
            content = error_content(arguments_error(name, text))
            return self._tool_message(call, content)
        answer = self._link.do(
            lambda: self._client.call_tool(name, arguments, meta=self._meta)
        )
        return self._tool_message(call, result_content(answer))

    def call_all(self, calls: Sequence[ToolCall]) -> list[ChatMessage]:
        """Every call of one assistant message, results in call order."""
        return [self.call(c) for c in calls]

    def state_hash(self) -> str:
        found = self._link.do(
            lambda: self._client.read_resource(STATE_HASH_URI, meta=self._meta)
        )
        return found.contents[0].text

    def diff(self) -> DatabaseDiff:
        found = self._link.do(
            lambda: self._client.read_resource(STATE_DIFF_URI, meta=self._meta)
        )
        return DatabaseDiff.model_validate_json(found.contents[0].text)

    def close(self) -> None:
        if self._owned:
            self._link.close()

    def __enter__(self) -> ToolSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _tool_message(call: ToolCall, content: str) -> ChatMessage:
        return ChatMessage(role="tool", content=content, tool_call_id=call.id)
