"""MCP exposure of an environment: takes an `Environment` (or any `ToolServer`,
such as the sandboxed one `serve-env` uses) and returns an `MCPServer`
(mcp 2.x) with one tool per `ToolSpec`, whose input schema is exactly the spec's
JSON schema, whose annotations carry the read/write classification, and whose
calls run through `Environment.call`. Tool errors and crashes become MCP error
results (`is_error` true) carrying the message; successes carry the JSON as text
and, as `structured_content`, the object (a non-object value is wrapped as
`{"result": value}`). Sessions: a request's `_meta["agentskiller/session"]` names
its runtime session explicitly; otherwise a streamable-HTTP request uses its MCP
session id (one runtime session per MCP session), and stdio or in-memory
connections share the session "default". No side effects until the server runs."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict

from schemas.environment import ToolResult, ToolSpec
from tasks.runtime.environment import DEFAULT_SESSION, ToolServer

SESSION_META_KEY = "agentskiller/session"
SESSION_HEADER = "mcp-session-id"


class _RawArguments(ArgModelBase):
    """Hands the arguments to the tool untouched: `Environment.call` validates
    them against the spec's schema (unknown ones included), so the SDK must not
    coerce or drop anything first."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def build_mcp_server(environment: ToolServer, *, name: str | None = None) -> MCPServer:
    """An MCP server exposing every tool of the environment.

    Args:
        environment: The environment to serve.
        name: The server name announced to clients (default: the spec's name).

    Returns:
        The server; run it with `serve` or connect `mcp.Client(server)` to it.
    """
    tools = [_tool(environment, spec) for spec in environment.spec.tools]
    return MCPServer(
        name or environment.spec.name,
        instructions=_instructions(environment),
        tools=tools,
        log_level="WARNING",
    )


def tool_annotations(spec: ToolSpec) -> ToolAnnotations:
    """MCP annotations of a tool: read tools are read-only and idempotent; the
    simulated world is closed."""
    read = spec.effect == "read"
    return ToolAnnotations(
        read_only_hint=read,
        idempotent_hint=True if read else None,
        open_world_hint=False,
    )


def session_key(ctx: Context[Any, Any]) -> str:
    """The runtime session a request belongs to (see the module docstring)."""
    meta = ctx.request_context.meta or {}
    explicit = meta.get(SESSION_META_KEY)
    if isinstance(explicit, str) and explicit:
        return explicit
    headers = ctx.headers
    mcp_session = headers.get(SESSION_HEADER) if headers is not None else None
    return mcp_session or DEFAULT_SESSION


def call_tool_result(result: ToolResult) -> CallToolResult:
    """The MCP form of a runtime tool result.

    Args:
        result: What `Environment.call` returned.

    Returns:
        An error result with the message, or the JSON as text plus structured
        content.
    """
    if result.is_error:
        return CallToolResult(
            content=[TextContent(type="text", text=result.error or "")], is_error=True
        )
    content = result.content
    structured = content if isinstance(content, dict) else {"result": content}
    return CallToolResult(
        content=[
            TextContent(type="text", text=json.dumps(content, ensure_ascii=False))
        ],
        structured_content=structured,
    )


def _tool(environment: ToolServer, spec: ToolSpec) -> Tool:
    async def run(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
        result = environment.call(session_key(ctx), spec.name, arguments)
        return call_tool_result(result)

    return Tool(
        fn=run,
        name=spec.name,
        description=spec.description,
        parameters=json.loads(json.dumps(spec.parameters)),
        fn_metadata=FuncMetadata(arg_model=_RawArguments),
        is_async=True,
        context_kwarg="ctx",
        annotations=tool_annotations(spec),
    )


def _instructions(environment: ToolServer) -> str:
    spec = environment.spec
    lines = [
        f"Simulated environment {spec.name}. The current time is "
        f"{spec.simulation_time}.",
    ]
    if spec.auth_tool:
        lines.append(f"Call {spec.auth_tool} before any other tool.")
    if any(tool.needs_confirmation for tool in spec.tools):
        lines.append(
            "Tools with a `confirm` parameter return a preview unless called with "
            "confirm=true after the user agreed."
        )
    return " ".join(lines)
