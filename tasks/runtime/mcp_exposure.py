"""MCP exposure of an environment: takes an `Environment` (or any `ToolServer`,
such as the sandboxed one `serve-env` uses) and returns an
`EnvironmentServer` (an mcp 2.x `MCPServer`) with one tool per `ToolSpec`, whose
input schema is exactly the spec's JSON schema, whose annotations carry the
read/write classification, and whose calls run through `Environment.call`. Tool
errors and crashes become MCP error results (`is_error` true) carrying the message;
successes carry the JSON as text and, as `structured_content`, the object (a
non-object value is wrapped as `{"result": value}`). Sessions: every client gets
its own runtime session and shares one only by naming it. A request names its
session by `_meta["agentskiller/session"]`, else (over HTTP) the
`agentskiller-session` header, else the `session` query parameter of the endpoint
URL (`.../mcp?session=NAME`). Unnamed, a streamable-HTTP request uses its client's
own session: the MCP session id of a handshake-era (2025-11-25) client, else the
`agentskiller-session` cookie that the HTTP app sets on its first response to a
client without one (the 2026-07-28 protocol carries no per-client identity; the
official client keeps cookies per `Client`); with neither, the call runs in a
private session that is dropped after it. stdio and in-memory connections carry no
identity, so they share the server's `local_session`, one per server object (stdio
serves one client per process). Side effects: none until the server runs; then
session state in memory, never on disk."""

from __future__ import annotations

import json
import secrets
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.environment import ToolResult, ToolSpec
from tasks.runtime.environment import ToolServer

SESSION_META_KEY = "agentskiller/session"
SESSION_HEADER = "agentskiller-session"
SESSION_QUERY_PARAMETER = "session"
SESSION_COOKIE = "agentskiller-session"
MCP_SESSION_HEADER = "mcp-session-id"


class EnvironmentServer(MCPServer):
    """The MCP server of one environment.

    Attributes:
        local_session: The runtime session of stdio and in-memory connections
            (they carry no identity of their own).
    """

    def __init__(self, name: str, *, local_session: str, **settings: Any) -> None:
        super().__init__(name, **settings)
        self.local_session = local_session

    def streamable_http_app(self, **options: Any) -> Starlette:
        """The SDK's streamable-HTTP app, handing out session cookies."""
        app = super().streamable_http_app(**options)
        app.add_middleware(_SessionCookieMiddleware)
        return app


class _SessionCookieMiddleware:
    """ASGI middleware: the response to an HTTP request without a session cookie
    sets a new one, so every cookie-keeping client gets a session of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or HTTPConnection(scope).cookies.get(SESSION_COOKIE):
            await self.app(scope, receive, send)
            return
        cookie = (
            f"{SESSION_COOKIE}={_new_session_id('http')}; Path=/; HttpOnly; "
            "SameSite=Strict"
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class _RawArguments(ArgModelBase):
    """Hands the arguments to the tool untouched: `Environment.call` validates
    them against the spec's schema (unknown ones included), so the SDK must not
    coerce or drop anything first."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def build_mcp_server(
    environment: ToolServer, *, name: str | None = None
) -> EnvironmentServer:
    """An MCP server exposing every tool of the environment.

    Args:
        environment: The environment to serve.
        name: The server name announced to clients (default: the spec's name).

    Returns:
        The server; run it with `serve` or connect `mcp.Client(server)` to it.
        Each call makes a server with a new `local_session`.
    """
    local_session = _new_session_id("local")
    tools = [_tool(environment, spec, local_session) for spec in environment.spec.tools]
    return EnvironmentServer(
        name or environment.spec.name,
        local_session=local_session,
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


def session_key(ctx: Context[Any, Any], local_session: str) -> str | None:
    """The runtime session a request belongs to (see the module docstring).

    Args:
        ctx: The request's context.
        local_session: The session of connections without HTTP.

    Returns:
        The session id, or None for a private session of this call alone.
    """
    meta = ctx.request_context.meta or {}
    named = meta.get(SESSION_META_KEY)
    if isinstance(named, str) and named:
        return named
    request = ctx.request_context.request
    if not isinstance(request, HTTPConnection):
        return local_session
    candidates = (
        request.headers.get(SESSION_HEADER),
        request.query_params.get(SESSION_QUERY_PARAMETER),
        request.headers.get(MCP_SESSION_HEADER),
        request.cookies.get(SESSION_COOKIE),
    )
    return next((key for key in candidates if key), None)


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


def _tool(environment: ToolServer, spec: ToolSpec, local_session: str) -> Tool:
    async def run(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
        result = environment.call(session_key(ctx, local_session), spec.name, arguments)
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


def _new_session_id(kind: str) -> str:
    # Unguessable: knowing a session id is what lets a client join that session.
    return f"{kind}-{secrets.token_hex(16)}"
