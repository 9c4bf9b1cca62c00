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
serves one client per process). Session state as resources: reading
`state://session/hash` gives the caller's session's state hash (sha256 hex, text),
and `state://session/diff` its `DatabaseDiff` against the untouched base data as
JSON (`{"tables": {<table>: {"inserted": [ids], "updated": {id: {column: [old,
new]}}, "deleted": [ids]}}}`, only changed tables; a fused environment's tables
carry their namespace, `DentalAppointments.Appointment`). A read resolves its
session exactly as a tool call does, so a client sees only its own session (or
one it names); a read without session identity sees the base state. A tool call
can also bring its session's state back with its result: a request whose
`_meta["agentskiller/state"]` lists `"state_hash"` and/or `"diff"` (anything
else there is ignored) gets a result whose `_meta["agentskiller/state"]` holds
them as the resources give them (`{"state_hash": "<hex>", "diff": {...}}`), read
right after the call in the same exchange with the environment
(`tasks.runtime.session_state`); a call in a private session reports nothing.
A request whose `_meta["agentskiller/end"]` is `true` ends its session after
the call and that report: the environment forgets it (its next use starts
from the base state), which a client sends with a session's last call.
Side effects: none until the server runs; then session state in memory, never on
disk."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.resources import FunctionResource
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import (
    CallToolResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from pydantic import AnyUrl, ConfigDict
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.environment import SessionState, StateField, ToolResult, ToolSpec
from tasks.runtime.environment import ToolServer
from tasks.runtime.session_state import call_reporting

SESSION_META_KEY = "agentskiller/session"
SESSION_HEADER = "agentskiller-session"
SESSION_QUERY_PARAMETER = "session"
SESSION_COOKIE = "agentskiller-session"
MCP_SESSION_HEADER = "mcp-session-id"
STATE_META_KEY = "agentskiller/state"
END_META_KEY = "agentskiller/end"
STATE_FIELDS: tuple[StateField, ...] = ("state_hash", "diff")
STATE_HASH_URI = "state://session/hash"
STATE_DIFF_URI = "state://session/diff"
JSON_MIME = "application/json"


class EnvironmentServer(MCPServer):
    """The MCP server of one environment.

    Attributes:
        local_session: The runtime session of stdio and in-memory connections
            (they carry no identity of their own).
    """

    def __init__(
        self,
        name: str,
        *,
        local_session: str,
        state: ToolServer | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(name, **settings)
        self.local_session = local_session
        self._state_readers: dict[str, tuple[Callable[[str | None], str], str]] = {}
        if state is not None:
            self._add_state_resources(state)

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        """Read a resource; the session-state ones in the caller's session."""
        found = self._state_readers.get(str(uri))
        if found is None:
            return await super().read_resource(uri, context)
        read, mime_type = found
        session = self.local_session
        if context is not None and _in_request(context):
            session = session_key(context, self.local_session)
        return [
            ReadResourceContents(
                content=_read_state(read, session), mime_type=mime_type
            )
        ]

    def _add_state_resources(self, environment: ToolServer) -> None:
        readers: Iterable[tuple[str, str, str, Callable[[str | None], str]]] = (
            (
                STATE_HASH_URI,
                "text/plain",
                "sha256 of your session's database state (canonical JSON).",
                environment.state_hash,
            ),
            (
                STATE_DIFF_URI,
                JSON_MIME,
                "What your session changed against the untouched base data: per "
                "changed table, inserted, updated (column: [old, new]) and "
                "deleted row ids.",
                lambda session: environment.diff(session).model_dump_json(),
            ),
        )
        for uri, mime_type, description, read in readers:
            self._state_readers[uri] = (read, mime_type)

            async def read_local(read: Callable[[str | None], str] = read) -> str:
                return _read_state(read, self.local_session)

            self.add_resource(
                FunctionResource(
                    uri=uri,
                    name=uri.rsplit("/", 1)[-1],
                    description=description,
                    mime_type=mime_type,
                    fn=read_local,
                )
            )

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
        state=environment,
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


def call_tool_result(
    result: ToolResult, state: SessionState | None = None
) -> CallToolResult:
    """The MCP form of a runtime tool result.

    Args:
        result: What `Environment.call` returned.
        state: The session's state the request asked for, if any.

    Returns:
        An error result with the message, or the JSON as text plus structured
        content; the state, when there is any, in `_meta`.
    """
    reported = state.model_dump(mode="json", exclude_none=True) if state else {}
    meta = {STATE_META_KEY: reported} if reported else None
    if result.is_error:
        return CallToolResult(
            content=[TextContent(type="text", text=result.error or "")],
            is_error=True,
            meta=meta,
        )
    content = result.content
    structured = content if isinstance(content, dict) else {"result": content}
    return CallToolResult(
        content=[
            TextContent(type="text", text=json.dumps(content, ensure_ascii=False))
        ],
        structured_content=structured,
        meta=meta,
    )


def requested_state(ctx: Context[Any, Any]) -> tuple[StateField, ...]:
    """The session state a tool call asks to get back (see the module docstring)."""
    asked = (ctx.request_context.meta or {}).get(STATE_META_KEY)
    if not isinstance(asked, list):
        return ()
    return tuple(field for field in STATE_FIELDS if field in asked)


def ends_session(ctx: Context[Any, Any]) -> bool:
    """True when a tool call asks to end its session after it."""
    return (ctx.request_context.meta or {}).get(END_META_KEY) is True


def _tool(environment: ToolServer, spec: ToolSpec, local_session: str) -> Tool:
    async def run(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
        session = session_key(ctx, local_session)
        result, state = call_reporting(
            environment,
            session,
            spec.name,
            arguments,
            requested_state(ctx),
            end=ends_session(ctx),
        )
        return call_tool_result(result, state)

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
    if len(spec.auth_tools) > 1:
        lines.append(
            f"Call one of {', '.join(spec.auth_tools)} before any other tool: "
            "the user it binds is the user of every service here."
        )
    elif spec.auth_tool:
        lines.append(f"Call {spec.auth_tool} before any other tool.")
    if any(tool.needs_confirmation for tool in spec.tools):
        lines.append(
            "Tools with a `confirm` parameter return a preview unless called with "
            "confirm=true after the user agreed."
        )
    return " ".join(lines)


def _in_request(context: Context[Any, Any]) -> bool:
    try:
        context.request_context  # noqa: B018 - raises outside a request
    except ValueError:
        return False
    return True


def _read_state(read: Callable[[str | None], str], session: str | None) -> str:
    try:
        return read(session)
    except RuntimeError as exc:  # the sandboxed worker could not answer
        raise ResourceError(f"cannot read the session state: {exc}") from exc


def _new_session_id(kind: str) -> str:
    # Unguessable: knowing a session id is what lets a client join that session.
    return f"{kind}-{secrets.token_hex(16)}"
