"""The tool calls an agent made in a rollout, and the values evaluators compare.

Input: a rollout's chat messages. Output: one `AgentCall` per assistant tool call,
in message order, with its arguments parsed from the JSON text the model wrote and
whether it succeeded, read from the tool message that answered it. The one rule for
"this tool result is an error" lives here (`is_error_result`): the episode runtime
answers a tool error, and arguments that are not a JSON object, with a JSON object
carrying an `"error"` key. Also `value_key`, the form in which argument and
column values are compared. Pure functions, no side effects.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.rollout import ChatMessage

ERROR_KEY = "error"


def is_error_result(content: str | None) -> bool:
    """Whether a tool message's content reports a failed call.

    The episode runtime answers tool errors (bad ids, policy rejections, unknown
    tools) and malformed arguments with a JSON object that has an `"error"` key;
    any other content, JSON or not, is a successful result.

    Args:
        content: The tool message's content.

    Returns:
        True when the content is a JSON object with an `"error"` key.
    """
    if not content:
        return False
    text = content.lstrip()
    # Cheap pre-checks before parsing: most results are not error objects.
    if not text.startswith("{") or f'"{ERROR_KEY}"' not in text:
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and ERROR_KEY in value


@dataclass(frozen=True, slots=True)
class AgentCall:
    """One tool call of the agent.

    Attributes:
        index: Position among the rollout's tool calls (0-based, message order).
        tool: The tool name as the agent wrote it.
        arguments: The parsed arguments; None when the JSON text was not an object.
        raw_arguments: The arguments exactly as the model wrote them.
        ok: True when a tool message answered the call without an error.
        call_id: The tool call id.
        keys: Argument -> its `value_key`, for comparisons.
    """

    index: int
    tool: str
    arguments: dict[str, Any] | None
    raw_arguments: str
    ok: bool
    call_id: str
    keys: dict[str, Hashable]

    def describe(self) -> dict[str, Any]:
        """The call as evaluation details show it."""
        return {
            "call": self.index,
            "tool": self.tool,
            "arguments": self.arguments
            if self.arguments is not None
            else self.raw_arguments,
            "ok": self.ok,
        }


def agent_calls(messages: Sequence[ChatMessage]) -> list[AgentCall]:
    """Every tool call of the assistant, in message order.

    A call succeeded when its arguments are a JSON object and a tool message with
    its id answered it with a result that is not an error (`is_error_result`); a
    call nobody answered (the conversation was cut short) did not succeed.

    Args:
        messages: The rollout's messages.

    Returns:
        The calls, indexed in order.
    """
    results: dict[str, str | None] = {
        m.tool_call_id: m.content
        for m in messages
        if m.role == "tool" and m.tool_call_id is not None
    }
    calls: list[AgentCall] = []
    for message in messages:
        if message.role != "assistant" or not message.tool_calls:
            continue
        for tool_call in message.tool_calls:
            arguments = parse_arguments(tool_call.function.arguments)
            answered = tool_call.id in results
            calls.append(
                AgentCall(
                    index=len(calls),
                    tool=tool_call.function.name,
                    arguments=arguments,
                    raw_arguments=tool_call.function.arguments,
                    ok=arguments is not None
                    and answered
                    and not is_error_result(results[tool_call.id]),
                    call_id=tool_call.id,
                    keys={k: value_key(v) for k, v in (arguments or {}).items()},
                )
            )
    return calls


def parse_arguments(text: str) -> dict[str, Any] | None:
    """The arguments a model wrote, or None when they are not a JSON object
    (empty text counts as no arguments, `{}`)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def value_key(value: Any) -> Hashable:
    """The form in which argument and column values are compared: equal keys
    mean equal JSON values.

    JSON has one number type, so an integral float equals the integer (`50.0` ==
    `50`); booleans stay distinct from numbers (`true` != `1`), strings from
    numbers (`"5"` != `5`), and strings compare exactly (case included). Tuples
    and lists are the same array; objects compare regardless of key order.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("num", value)
    if isinstance(value, float):
        return ("num", int(value) if value.is_integer() else value)
    if isinstance(value, dict):
        return ("obj", frozenset((str(k), value_key(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("arr", tuple(value_key(v) for v in value))
    return ("other", repr(value))
