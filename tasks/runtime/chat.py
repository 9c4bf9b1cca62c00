"""OpenAI-shaped chat data to and from the typed rollout messages.

Input: messages and tool calls as a trainer holds them (plain dicts in the
OpenAI chat format, the `openai` SDK's objects, or `schemas.rollout` models), and
the MCP tools a server lists. Output: `ChatMessage` / `ToolCall` values, OpenAI
function tools, tool-message contents (a tool's JSON text, or `{"error": ...}`
for a failed call), and the control tokens a simulated user ended with. Pure
functions, no side effects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mcp_types import CallToolResult, Tool

from schemas.rollout import CONTROL_TOKENS, ChatMessage, FunctionCall, ToolCall

_MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "reasoning_content")


def openai_tool(tool: Tool) -> dict[str, Any]:
    """An MCP tool as an OpenAI function tool (same name, its input schema)."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description or "",
            "parameters": dict(tool.input_schema),
        },
    }


def as_tool_call(call: ToolCall | Mapping[str, Any] | Any, index: int = 0) -> ToolCall:
    """A tool call from its OpenAI form (a dict or an SDK object); arguments
    given as an object are written as JSON text, a missing id is made up.

    Raises:
        pydantic.ValidationError: If it has no function name.
    """
    if isinstance(call, ToolCall):
        return call
    data = _plain(call)
    function = dict(data.get("function") or {})
    arguments = function.get("arguments")
    if arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(
        id=str(data.get("id") or f"call_{index}"),
        function=FunctionCall(name=function.get("name", ""), arguments=arguments),
    )


def as_chat_message(message: ChatMessage | Mapping[str, Any] | Any) -> ChatMessage:
    """A message from its OpenAI form; keys outside the rollout record (the
    SDK's `refusal`, `audio`, ...) are dropped and text parts are joined.

    Raises:
        pydantic.ValidationError: If the role is unknown.
    """
    if isinstance(message, ChatMessage):
        return message
    data = {k: v for k, v in _plain(message).items() if k in _MESSAGE_KEYS}
    content = data.get("content")
    if isinstance(content, list):
        data["content"] = "".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    calls = data.get("tool_calls")
    data["tool_calls"] = (
        tuple(as_tool_call(c, i) for i, c in enumerate(calls)) if calls else None
    )
    return ChatMessage.model_validate(data)


def parse_arguments(text: str) -> dict[str, Any] | None:
    """A tool call's arguments, or None when they are not a JSON object (a
    format error). Empty text means no arguments, as some servers send it."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def arguments_error(name: str, text: str) -> str:
    """Why a call's arguments were refused (`parse_arguments` gave None)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the arguments of {name} are not JSON ({exc.msg} at {exc.pos})"
    return f"the arguments of {name} are not a JSON object: {text[:200]!r}"


def count_format_errors(messages: Iterable[ChatMessage]) -> int:
    """Assistant tool calls whose arguments are not a JSON object."""
    return sum(
        parse_arguments(call.function.arguments) is None
        for message in messages
        if message.role == "assistant"
        for call in message.tool_calls or ()
    )


def error_content(message: str) -> str:
    """The tool-message content of a failed call: a JSON object with an
    `error` key (the convention the evaluators read)."""
    return json.dumps({"error": message}, ensure_ascii=False)


def result_content(result: CallToolResult) -> str:
    """The tool-message content of an MCP result: the tool's JSON text, or the
    error object of an error result."""
    text = "".join(getattr(part, "text", "") for part in result.content)
    return error_content(text) if result.is_error else text


def control_tokens(text: str) -> tuple[frozenset[str], str]:
    """The control tokens in a simulated user's reply and the reply without
    them (stripped), as the reference's user simulator reads them."""
    found = frozenset(token for token in CONTROL_TOKENS if token in text)
    for token in found:
        text = text.replace(token, "")
    return found, text.strip()


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json", exclude_none=False))
    raise TypeError(f"expected an OpenAI message or tool call, got {type(value)}")
